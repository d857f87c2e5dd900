"""Moderation: the review queue, approve and reject, publish and unpublish. Every decision is
written to the audit log in the same transaction as the change it records; listings and the
search index follow right after (catalog.indexing, idempotently, so a retry converges)."""
from __future__ import annotations

from pynamodb.exceptions import TransactWriteError

from chalicelib import cursor, db
from chalicelib.catalog import audit, indexing, store
from chalicelib.catalog.indexing import reindex
from chalicelib.catalog.resources import LIVE, load, resource_out, view
from chalicelib.catalog.schemas import ResourceList, ResourceOut
from chalicelib.catalog.states import Concurrent, NotUnderReview, WrongState
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
    """Apply a moderation change and its audit entry in one transaction (retried on a
    concurrent write, recomputed from fresh state)."""
    for _ in range(4):
        resource = load(resource_id)
        actions, details = change(resource)
        actions.append(ResourceRecord.updated_at.set(db.now_iso()))
        try:
            with db.transaction() as tx:
                tx.update(resource, actions=actions)
                tx.save(audit.entry(actor_id, action, resource_id, reason, details))
        except TransactWriteError as exc:
            if db.cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
                continue
            raise
        reindex(resource_id)
        return load(resource_id)
    raise Concurrent()


def approve(admin_id: str, resource_id: str) -> ResourceOut:
    """Publish a resource under review, or put its new file version live."""
    def change(r: ResourceRecord):
        if r.status != "pending_review" and not r.review_pending:
            raise NotUnderReview()
        candidate = r.pending_upload_id if r.review_pending else r.file_upload_id
        upload = store.get_upload(r.resource_id, candidate)
        version = int(r.live_file.version) + 1 if r.live_file else 1
        live = LiveFile(upload_id=upload.upload_id, key=upload.key, version_id=upload.version_id,
                        filename=upload.filename, content_type=upload.content_type,
                        size=int(upload.size), sha256=upload.sha256, version=version)
        actions = [ResourceRecord.live_file.set(live),
                   ResourceRecord.file_upload_id.set(upload.upload_id),
                   ResourceRecord.pending_upload_id.remove(),
                   ResourceRecord.review_pending.set(False),
                   ResourceRecord.rejection_reason.remove(),
                   *store.leave_review_queue()]
        if r.status == "pending_review":
            actions += [ResourceRecord.status.set("published")]
            if not r.published_at:
                actions.append(ResourceRecord.published_at.set(db.now_iso()))
        return actions, {"file_version": version, "upload_id": upload.upload_id}

    _decide(admin_id, resource_id, "approve", None, change)
    return view(resource_id)


def reject(admin_id: str, resource_id: str, reason: str) -> ResourceOut:
    """Refuse a resource under review (or its new file version) with a reason the creator
    sees."""
    def change(r: ResourceRecord):
        if r.status != "pending_review" and not r.review_pending:
            raise NotUnderReview()
        actions = [ResourceRecord.rejection_reason.set(reason), *store.leave_review_queue(),
                   ResourceRecord.review_pending.set(False)]
        if r.status == "pending_review":
            actions.append(ResourceRecord.status.set("rejected"))
        return actions, {"new_version": r.status != "pending_review"}

    _decide(admin_id, resource_id, "reject", reason.strip(), change)
    return view(resource_id)


def set_visibility(actor_id: str, resource_id: str, publish: bool, as_admin: bool,
                   reason: str | None = None) -> ResourceOut:
    """Unpublish a published resource, or publish again one that was approved before."""
    def change(r: ResourceRecord):
        if not as_admin and r.creator_id != actor_id:
            raise NotFound("No such resource.", code="resource_not_found")
        wanted, current = ("published", "unpublished") if publish else ("unpublished",
                                                                         "published")
        if r.status != current or r.status not in LIVE:
            raise WrongState(f"Only a {current} resource can be {wanted}.")
        return [ResourceRecord.status.set(wanted)], {"by": "admin" if as_admin else "creator"}

    action = "publish" if publish else "unpublish"
    _decide(actor_id, resource_id, action, reason, change)
    return view(resource_id, None if as_admin else actor_id)
