"""Creators' resources: create, edit, list, delete drafts, upload files straight to S3, and
submit for review. Functions take primitives or request models and never see HTTP."""
from __future__ import annotations

import math
import unicodedata
import uuid
from collections.abc import Callable
from typing import Any, cast

from msgspec import UNSET
from pynamodb.exceptions import TransactWriteError

from chalicelib import cursor, db
from chalicelib.catalog import categories, indexing, store
from chalicelib.catalog.schemas import (
    UPLOAD_RULES,
    FileOut,
    ResourceIn,
    ResourceList,
    ResourceOut,
    ResourcePatch,
    UploadForm,
    UploadState,
    stored_price,
)
from chalicelib.catalog.states import (
    LIVE,
    RESOURCE_TRANSITIONS,
    Concurrent,
    ResourceStatus,
    Transition,
    UnderReview,
    UploadStatus,
    WrongState,
)
from chalicelib.catalog.store import ResourceRecord, UploadRecord
from chalicelib.config import settings
from chalicelib.errors import Invalid, NotFound, TooLarge, ValidationFailed
from chalicelib.uploads import objects, presign

PART_SIZE = 64 * 1024 * 1024
ATTEMPTS = 4  # reads of fresh state after losing a race, before answering 409


# ---------------------------------------------------------------- reading

def collection(resource_id: str) -> tuple[ResourceRecord | None, dict[str, UploadRecord]]:
    """The resource and its uploads: one Query on its item collection."""
    return store.resource_collection(resource_id)


def load(resource_id: str) -> ResourceRecord:
    resource = store.get_resource(resource_id)
    if resource is None:
        raise NotFound("No such resource.", code="resource_not_found")
    return resource


def owned(creator_id: str, resource_id: str) -> ResourceRecord:
    """The creator's resource; someone else's is as absent as a missing one."""
    resource = load(resource_id)
    if resource.creator_id != creator_id:
        raise NotFound("No such resource.", code="resource_not_found")
    return resource


def _file_out(upload: UploadRecord | None, version: int | None = None) -> FileOut | None:
    if upload is None:
        return None
    return FileOut(upload_id=upload.upload_id, status=cast(UploadState, upload.status),
                   filename=upload.filename, content_type=upload.content_type,
                   size=int(upload.size) if upload.size is not None else None,
                   sha256=upload.sha256, reason=upload.reason, version=version)


def resource_out(r: ResourceRecord, uploads: dict[str, UploadRecord]) -> ResourceOut:
    live_version = int(r.live_file.version) if r.live_file else None
    file_version = live_version if r.live_file and r.live_file.upload_id == r.file_upload_id \
        else None
    return ResourceOut(
        id=r.resource_id, creator_id=r.creator_id, title=r.title, description=r.description,
        kind=r.kind, price=stored_price(r.price_amount, r.price_currency),
        category=r.category, tags=list(r.tags or []), members_only=r.members_only,
        member_level=int(r.member_level or 1),
        download_cap=int(r.download_cap) if r.download_cap else None,
        status=r.status, file=_file_out(uploads.get(r.file_upload_id or ""), file_version),
        pending_file=_file_out(uploads.get(r.pending_upload_id or "")),
        cover=_file_out(uploads.get(r.cover_upload_id or "")),
        preview=_file_out(uploads.get(r.preview_upload_id or "")),
        review_pending=r.status == ResourceStatus.PENDING_REVIEW or r.review_pending,
        rejection_reason=r.rejection_reason, created_at=r.created_at, updated_at=r.updated_at,
        published_at=r.published_at)


def view(resource_id: str, creator_id: str | None = None) -> ResourceOut:
    """The full resource (for its creator, or for an admin when `creator_id` is None)."""
    resource, uploads = collection(resource_id)
    if resource is None or (creator_id is not None and resource.creator_id != creator_id):
        raise NotFound("No such resource.", code="resource_not_found")
    return resource_out(resource, uploads)


def list_own(creator_id: str, status: str | None, limit: int,
             cursor_text: str | None) -> ResourceList:
    """The creator's resources, newest first, optionally of one status. One Query."""
    scope = f"creator-resources:{creator_id}:{status or '*'}"
    start = cursor.decode(cursor_text, scope)
    items, position = db.page(store.resources_by_creator(creator_id, limit, start, status))
    return ResourceList(items=[resource_out(r, {}) for r in items],
                        next_cursor=cursor.encode(position, scope))


# ---------------------------------------------------------------- writing

def clean_tags(tags: list[str]) -> list[str]:
    """Trimmed, NFKC, without duplicates (case-insensitive), order kept."""
    out, seen = [], set()
    for raw in tags:
        tag = " ".join(unicodedata.normalize("NFKC", raw).split())
        if not tag:
            raise ValidationFailed("A tag is empty.", details={"fields": {"tags": "empty tag"}})
        if tag.casefold() not in seen:
            seen.add(tag.casefold())
            out.append(tag)
    return out


def _clean_title(raw: str) -> str:
    title = " ".join(unicodedata.normalize("NFKC", raw).split())
    if not title:
        raise ValidationFailed("The title is empty.", details={"fields": {"title": "empty"}})
    return title


def create(creator_id: str, creator_name: str, body: ResourceIn) -> ResourceOut:
    """A new draft owned by the creator."""
    now = db.now_iso()
    resource_id = uuid.uuid4().hex
    record = store.new_resource(
        resource_id, creator_id, now,
        creator_name=creator_name, title=_clean_title(body.title), description=body.description,
        kind=body.kind, price_amount=body.price.amount, price_currency=body.price.currency,
        category=body.category, category_path=categories.path(body.category),
        tags=clean_tags(body.tags), members_only=body.members_only,
        member_level=body.member_level,
        download_cap=body.download_cap, status=ResourceStatus.DRAFT.value)
    record.save(condition=ResourceRecord.pk.does_not_exist())
    return resource_out(record, {})


def _transition(name: str, r: ResourceRecord) -> Transition:
    """The transition `name`, refused as a conflict when the resource's state is not one it is
    allowed from (UnderReview while a review is pending, else WrongState)."""
    transition = RESOURCE_TRANSITIONS[name]
    review_ok = transition.review is None or bool(r.review_pending) == transition.review[0]
    if r.status in transition.source and review_ok:
        return transition
    if r.status == ResourceStatus.PENDING_REVIEW:
        raise UnderReview()
    raise WrongState(f"A {r.status.replace('_', ' ')} resource cannot {name.split('_')[0]}.")


def update(creator_id: str, resource_id: str, patch: ResourcePatch) -> ResourceOut:
    """Edit a resource. A published one changes at once (and is re-listed); one under review
    cannot change. Existing orders keep the price they were sold at."""
    def change(r: ResourceRecord) -> list[Any]:
        actions: list[Any] = []
        fields: dict[str, Callable[[Any], Any]] = {
            "title": _clean_title, "description": str, "kind": str, "members_only": bool,
            "member_level": int,
            "tags": clean_tags}
        for name, convert in fields.items():
            value = getattr(patch, name)
            if value is not UNSET:
                actions.append(getattr(ResourceRecord, name).set(convert(value)))
        if patch.download_cap is not UNSET:
            actions.append(ResourceRecord.download_cap.set(patch.download_cap)
                           if patch.download_cap else ResourceRecord.download_cap.remove())
        if patch.price is not UNSET:
            actions += [ResourceRecord.price_amount.set(patch.price.amount),
                        ResourceRecord.price_currency.set(patch.price.currency)]
        if patch.category is not UNSET:
            actions += [ResourceRecord.category.set(patch.category),
                        ResourceRecord.category_path.set(categories.path(patch.category))]
        return actions

    for _ in range(ATTEMPTS):
        r = owned(creator_id, resource_id)
        name = "edit_rejected" if r.status == ResourceStatus.REJECTED else "edit"
        transition = _transition(name, r)
        actions = change(r)
        if not actions:
            break
        # An edit rewrites fields it read, so it also holds on to the version it read.
        guard = ResourceRecord.version == r.version
        if store.apply_transition(r, transition, [*actions, ResourceRecord.updated_at.set(
                db.now_iso())], guard=guard):
            break
    else:
        raise Concurrent()
    if r.status == ResourceStatus.PUBLISHED:
        indexing.reindex(resource_id)
    return view(resource_id, creator_id)


def delete_draft(creator_id: str, resource_id: str) -> None:
    """Delete a draft (never published, not under review) with its uploads."""
    for _ in range(ATTEMPTS):
        resource, uploads = collection(resource_id)
        if resource is None or resource.creator_id != creator_id:
            raise NotFound("No such resource.", code="resource_not_found")
        if resource.status != ResourceStatus.DRAFT:
            raise WrongState("Only drafts can be deleted; unpublish instead.")
        if store.delete_in_state(resource, RESOURCE_TRANSITIONS["delete_draft"],
                                 guard=ResourceRecord.creator_id == creator_id):
            break
    else:
        raise Concurrent()
    store.delete_uploads(list(uploads.values()))
    for upload in uploads.values():
        objects.delete(settings().uploads_bucket, upload.key)


# ---------------------------------------------------------------- uploads

def _check_upload(purpose: str, content_type: str, size: int) -> None:
    """The rules of UPLOAD_RULES, which the document states on the request."""
    allowed, limit = UPLOAD_RULES[purpose]
    if content_type not in allowed:
        raise ValidationFailed(f"A {purpose} cannot be of type {content_type}.",
                               code="unsupported_type",
                               details={"fields": {"content_type": sorted(allowed)}})
    limit = min(limit, settings().max_upload_bytes)
    if size > limit:
        raise TooLarge(f"The file is larger than {limit} bytes.", code="file_too_large",
                       details={"fields": {"size": f"at most {limit}"}, "max_bytes": limit})


def create_upload(creator_id: str, resource_id: str, filename: str, content_type: str,
                  size: int, purpose: str) -> UploadForm:
    """Reserve an upload and return how to send it straight to S3: a presigned POST, or
    presigned multipart part URLs above the multipart threshold."""
    content_type = content_type.split(";")[0].strip().lower()
    _check_upload(purpose, content_type, size)
    cfg = settings()
    resource = owned(creator_id, resource_id)
    if resource.status == ResourceStatus.PENDING_REVIEW or (purpose == "file"
                                                           and resource.review_pending):
        raise UnderReview()
    upload_id = uuid.uuid4().hex
    key = store.object_key(creator_id, resource_id, upload_id, filename)
    multipart = size > cfg.multipart_threshold_bytes
    multipart_id = presign.start_multipart(cfg.uploads_bucket, key, content_type) \
        if multipart else None
    upload = store.new_upload(resource_id, upload_id, creator_id=creator_id,
                              purpose=purpose, filename=filename, content_type=content_type,
                              declared_size=size, key=key, multipart_id=multipart_id,
                              created_at=db.now_iso())
    pointer = {"cover": ResourceRecord.cover_upload_id, "preview": ResourceRecord.preview_upload_id,
               "file": ResourceRecord.pending_upload_id if resource.status in LIVE
               else ResourceRecord.file_upload_id}[purpose]
    try:
        with db.transaction() as tx:
            tx.save(upload, condition=UploadRecord.sk.does_not_exist())
            tx.update(resource, actions=[pointer.set(upload_id),
                                         ResourceRecord.updated_at.set(db.now_iso())])
    except TransactWriteError as exc:
        if "ConditionalCheckFailed" in db.cancellation_codes(exc):
            raise Concurrent() from None
        raise
    seconds = cfg.upload_url_seconds
    if multipart_id is not None:
        part_size = max(PART_SIZE, math.ceil(size / 10_000))
        parts = math.ceil(size / part_size)
        return UploadForm(upload_id=upload_id, method="multipart",
                          expires_at=presign.expiry(seconds), part_size=part_size,
                          parts=presign.part_urls(cfg.uploads_bucket, key, multipart_id, parts,
                                                  seconds))
    form = presign.post_form(cfg.uploads_bucket, key, content_type, size, seconds)
    return UploadForm(upload_id=upload_id, method="post", expires_at=presign.expiry(seconds),
                      url=form["url"], fields=form["fields"])


def _own_upload(creator_id: str, resource_id: str, upload_id: str) -> UploadRecord:
    owned(creator_id, resource_id)
    upload = store.get_upload(resource_id, upload_id)
    if upload is None:
        raise NotFound("No such upload.", code="upload_not_found")
    return upload


def complete_upload(creator_id: str, resource_id: str, upload_id: str,
                    parts: list[tuple[int, str]]) -> None:
    """Assemble a multipart upload; S3 then announces the object and it is checked."""
    upload = _own_upload(creator_id, resource_id, upload_id)
    if not upload.multipart_id or upload.status != UploadStatus.AWAITING_UPLOAD:
        raise WrongState("This upload is not an open multipart upload.")
    try:
        presign.complete_multipart(settings().uploads_bucket, upload.key, upload.multipart_id,
                                   sorted(parts))
    except Exception as exc:  # botocore ClientError: the parts do not match what S3 holds
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code in {"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "NoSuchUpload"}:
            raise Invalid(f"S3 refused the parts: {code}.", code="invalid_parts") from None
        raise


def abort_upload(creator_id: str, resource_id: str, upload_id: str) -> None:
    upload = _own_upload(creator_id, resource_id, upload_id)
    if upload.multipart_id and upload.status == UploadStatus.AWAITING_UPLOAD:
        presign.abort_multipart(settings().uploads_bucket, upload.key, upload.multipart_id)
    upload.update(actions=[UploadRecord.status.set(UploadStatus.REJECTED.value),
                           UploadRecord.reason.set("aborted by the creator")],
                  condition=UploadRecord.status == UploadStatus.AWAITING_UPLOAD.value)


# ---------------------------------------------------------------- submitting

def submit(creator_id: str, resource_id: str) -> ResourceOut:
    """Send a draft (or a new file version of a live resource) to the review queue; it needs a
    verified file (409 otherwise)."""
    for _ in range(ATTEMPTS):
        r = owned(creator_id, resource_id)
        if r.status == ResourceStatus.PENDING_REVIEW or r.review_pending:
            raise WrongState("Already submitted.", code="already_submitted")
        new_version = r.status in LIVE
        transition = _transition("submit_version" if new_version else "submit", r)
        pointer = ResourceRecord.pending_upload_id if new_version \
            else ResourceRecord.file_upload_id
        candidate = r.pending_upload_id if new_version else r.file_upload_id
        if not candidate:
            raise WrongState("Upload a file first.", code="file_required")
        upload = store.get_upload(r.resource_id, candidate)
        if upload is None:
            raise WrongState("Upload a file first.", code="file_required")
        if upload.status != UploadStatus.VERIFIED:
            raise WrongState(f"The file is {upload.status.replace('_', ' ')}, not verified.",
                             code="file_not_verified")
        now = db.now_iso()
        actions = [ResourceRecord.submitted_at.set(now),
                   *store.join_review_queue(now, r.resource_id),
                   ResourceRecord.rejection_reason.remove(), ResourceRecord.updated_at.set(now)]
        # A verified upload stays verified; the file submitted must still be the one checked.
        if store.apply_transition(r, transition, actions, guard=pointer == candidate):
            return view(resource_id, creator_id)
    raise Concurrent()
