"""Moderation: the review queue, approve and reject, publish and unpublish. Every decision is
written to the audit log in the same transaction as the change it records; listings and the
search index follow right after (catalog.indexing, idempotently, so a retry converges)."""
from __future__ import annotations

from chalicelib import cursor, db, outbox
from chalicelib.catalog import audit, indexing, store
from chalicelib.catalog.indexing import reindex
from chalicelib.catalog.resources import ATTEMPTS, load, resource_out, view
from chalicelib.catalog.schemas import ResourceList, ResourceOut
from chalicelib.catalog.states import (
    RESOURCE_TRANSITIONS,
    Concurrent,
    NotUnderReview,
    ResourceStatus,
    WrongState,
)
from chalicelib.catalog.store import LiveFile, ResourceRecord
from chalicelib.errors import NotFound

# The 15-minute schedule of payments re-ranks sold resources through this name.
rerank = indexing.rerank


def queue(limit: int, cursor_text: str | None) -> ResourceList:
    """Resources waiting for review, oldest submission first. One Query."""
    start = cursor.decode(cursor_text, "reviews")
    items, position = db.page(store.review_queue(limit, start))
    return ResourceList(items=[resource_out(r, {}) for r in items],
                        next_cursor=cursor.encode(position, "reviews"))


def _decide(actor_id: str, resource_id: str, action: str, reason: str | None,
            change) -> ResourceRecord:
    """Apply a moderation decision and its audit entry in one transaction, conditional on the
    resource being in a state the decision's transition is allowed from. `change(resource)`
    gives (transition name, actions, audit details, guard). Losing a race re-reads and
    decides again, so the loser gets the conflict the winner's state calls for."""
    for _ in range(ATTEMPTS):
        resource = load(resource_id)
        name, actions, details, guard = change(resource)
        transition = RESOURCE_TRANSITIONS[name]
        if resource.status not in transition.source:
            raise WrongState(f"A {resource.status.replace('_', ' ')} resource cannot {action}.")
        now = db.now_iso()
        actions.append(ResourceRecord.updated_at.set(now))
        entry = audit.entry(actor_id, action, resource_id, reason, details)
        events = _reviewed_event(resource, name, reason, now)
        if store.apply_transition(resource, transition, actions, guard=guard, audit=entry,
                                  events=events):
            outbox.publish(events)
            reindex(resource_id)
            return load(resource_id)
    raise Concurrent()


def _reviewed_event(r: ResourceRecord, transition: str, reason: str | None,
                    now: str) -> list:
    """`resource.reviewed` {resource_id, creator_id, title, outcome: approved | rejected,
    new_version, reason}: a review decision, for the creator's notification."""
    if not transition.startswith(("approve", "reject")):
        return []
    return [outbox.record("catalog_table", "resource.reviewed", {
        "resource_id": r.resource_id, "creator_id": r.creator_id, "title": r.title,
        "outcome": "approved" if transition.startswith("approve") else "rejected",
        "new_version": transition.endswith("_version"), "reason": reason}, now)]


def approve(admin_id: str, resource_id: str) -> ResourceOut:
    """Publish a resource under review, or put its new file version live."""
    def change(r: ResourceRecord):
        if r.status != ResourceStatus.PENDING_REVIEW and not r.review_pending:
            raise NotUnderReview()
        pointer = ResourceRecord.pending_upload_id if r.review_pending \
            else ResourceRecord.file_upload_id
        candidate = r.pending_upload_id if r.review_pending else r.file_upload_id
        upload = store.get_upload(r.resource_id, candidate) if candidate else None
        if upload is None:
            raise WrongState("The file under review is gone.", code="file_required")
        version = int(r.live_file.version) + 1 if r.live_file else 1
        live = LiveFile(upload_id=upload.upload_id, key=upload.key, version_id=upload.version_id,
                        filename=upload.filename, content_type=upload.content_type,
                        size=int(upload.size), sha256=upload.sha256, version=version)
        actions = [ResourceRecord.live_file.set(live),
                   ResourceRecord.file_upload_id.set(upload.upload_id),
                   ResourceRecord.pending_upload_id.remove(),
                   ResourceRecord.rejection_reason.remove(),
                   *store.leave_review_queue()]
        if r.status == ResourceStatus.PENDING_REVIEW:
            name = "approve"
            actions.append(ResourceRecord.review_pending.set(False))
            if not r.published_at:
                actions.append(ResourceRecord.published_at.set(db.now_iso()))
        else:
            name = "approve_version"  # the transition clears review_pending
        return name, actions, {"file_version": version, "upload_id": upload.upload_id}, \
            pointer == candidate

    _decide(admin_id, resource_id, "approve", None, change)
    return view(resource_id)


def reject(admin_id: str, resource_id: str, reason: str) -> ResourceOut:
    """Refuse a resource under review (or its new file version) with a reason the creator
    sees."""
    def change(r: ResourceRecord):
        if r.status != ResourceStatus.PENDING_REVIEW and not r.review_pending:
            raise NotUnderReview()
        actions = [ResourceRecord.rejection_reason.set(reason), *store.leave_review_queue()]
        first = r.status == ResourceStatus.PENDING_REVIEW
        if first:
            # A first version under review has no new version to refuse either.
            actions.append(ResourceRecord.review_pending.set(False))
        return ("reject" if first else "reject_version"), actions, {"new_version": not first}, \
            None

    _decide(admin_id, resource_id, "reject", reason.strip(), change)
    return view(resource_id)


def set_visibility(actor_id: str, resource_id: str, publish: bool, as_admin: bool,
                   reason: str | None = None) -> ResourceOut:
    """Unpublish a published resource, or publish again one that was approved before."""
    action = "publish" if publish else "unpublish"

    def change(r: ResourceRecord):
        if not as_admin and r.creator_id != actor_id:
            raise NotFound("No such resource.", code="resource_not_found")
        wanted, current = ("published", "unpublished") if publish else ("unpublished",
                                                                         "published")
        if r.status not in RESOURCE_TRANSITIONS[action].source:
            raise WrongState(f"Only a {current} resource can be {wanted}.")
        return action, [], {"by": "admin" if as_admin else "creator"}, None

    _decide(actor_id, resource_id, action, reason, change)
    return view(resource_id, None if as_admin else actor_id)
