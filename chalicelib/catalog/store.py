"""Storage of the catalog (PynamoDB). The catalog table holds resources with their uploads
(one item collection per resource), categories and the moderation audit log; the listings
table holds one card per (listing, published resource). (The search table is the search
context's: chalicelib.search.store.)
`docs/data-model.md` lists the access patterns."""
from __future__ import annotations

import re
import unicodedata
from typing import Any, cast

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, LocalSecondaryIndex
from pynamodb.models import Model

from chalicelib import db
from chalicelib.catalog.states import ResourceStatus, Transition, UploadStatus
from chalicelib.db import global_index, table_meta


def _strings() -> ListAttribute[str]:
    """A list of strings. PynamoDB types `ListAttribute(of=UnicodeAttribute)` as a list of
    attributes; what it reads and writes is a list of str."""
    return cast("ListAttribute[str]", ListAttribute(of=UnicodeAttribute, default=list))


class LiveFile(MapAttribute):
    """The approved file version buyers get."""

    upload_id = UnicodeAttribute()
    key = UnicodeAttribute()
    version_id = UnicodeAttribute(null=True)
    filename = UnicodeAttribute()
    content_type = UnicodeAttribute()
    size = NumberAttribute()
    sha256 = UnicodeAttribute()
    version = NumberAttribute()


class ResourceRecord(Model):
    """RES#<id> / META. gsi1: CREATOR#<creator> by creation; gsi2 (sparse): REVIEW queue."""

    Meta = table_meta("catalog_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="META")
    resource_id = UnicodeAttribute()
    creator_id = UnicodeAttribute()
    creator_name = UnicodeAttribute()
    title = UnicodeAttribute()
    description = UnicodeAttribute(default="")
    kind = UnicodeAttribute()
    price_amount = NumberAttribute()
    price_currency = UnicodeAttribute()
    category = UnicodeAttribute()
    category_path = _strings()
    tags = _strings()
    members_only = BooleanAttribute(default=False)
    member_level = NumberAttribute(default=1)
    download_cap = NumberAttribute(null=True)
    status = UnicodeAttribute(default=ResourceStatus.DRAFT.value)
    file_upload_id = UnicodeAttribute(null=True)
    pending_upload_id = UnicodeAttribute(null=True)
    cover_upload_id = UnicodeAttribute(null=True)
    preview_upload_id = UnicodeAttribute(null=True)
    cover_key = UnicodeAttribute(null=True)
    preview_key = UnicodeAttribute(null=True)
    live_file = LiveFile(null=True)
    review_pending = BooleanAttribute(default=False)
    rejection_reason = UnicodeAttribute(null=True)
    sales = NumberAttribute(default=0)
    rating_sum = NumberAttribute(default=0)
    rating_count = NumberAttribute(default=0)
    listed_in = _strings()
    indexed_terms = _strings()
    indexed_tier = NumberAttribute(null=True)  # search.index.tier of its postings
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    submitted_at = UnicodeAttribute(null=True)
    published_at = UnicodeAttribute(null=True)
    version = VersionAttribute()
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    by_creator = global_index("gsi1")
    by_review = global_index("gsi2")

    @staticmethod
    def key(resource_id: str) -> str:
        return f"RES#{resource_id}"


class UploadRecord(Model):
    """RES#<id> / FILE#<upload id>: one upload (file, cover or preview) and its checks."""

    Meta = table_meta("catalog_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    upload_id = UnicodeAttribute()
    resource_id = UnicodeAttribute()
    creator_id = UnicodeAttribute()
    purpose = UnicodeAttribute()
    filename = UnicodeAttribute()
    content_type = UnicodeAttribute()
    declared_size = NumberAttribute()
    key = UnicodeAttribute()
    status = UnicodeAttribute(default=UploadStatus.AWAITING_UPLOAD.value)
    size = NumberAttribute(null=True)
    sha256 = UnicodeAttribute(null=True)
    sniffed_type = UnicodeAttribute(null=True)
    version_id = UnicodeAttribute(null=True)
    multipart_id = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    checked_at = UnicodeAttribute(null=True)

    @staticmethod
    def sort_key(upload_id: str) -> str:
        return f"FILE#{upload_id}"


class CategoryRecord(Model):
    """CATEGORY / <slug>: the whole tree is one Query."""

    Meta = table_meta("catalog_table")
    pk = UnicodeAttribute(hash_key=True, default="CATEGORY")
    sk = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    parent = UnicodeAttribute(null=True)
    position = NumberAttribute(default=0)


class AuditRecord(Model):
    """AUDIT / <at>#<id>, newest last; gsi1: AUDIT#<target id> for one resource's history."""

    Meta = table_meta("catalog_table")
    pk = UnicodeAttribute(hash_key=True, default="AUDIT")
    sk = UnicodeAttribute(range_key=True)
    entry_id = UnicodeAttribute()
    at = UnicodeAttribute()
    actor_id = UnicodeAttribute()
    action = UnicodeAttribute()
    target_type = UnicodeAttribute()
    target_id = UnicodeAttribute()
    reason = UnicodeAttribute(null=True)
    details: MapAttribute[str, Any] = MapAttribute(default=dict)
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    by_target = global_index("gsi1")


class _ListingIndex(LocalSecondaryIndex):
    class Meta:
        projection = AllProjection()


class _Newest(_ListingIndex):
    class Meta(_ListingIndex.Meta):
        index_name = "newest"

    pk = UnicodeAttribute(hash_key=True)
    new_sk = UnicodeAttribute(range_key=True)


class _Popular(_ListingIndex):
    class Meta(_ListingIndex.Meta):
        index_name = "popular"

    pk = UnicodeAttribute(hash_key=True)
    pop_sk = UnicodeAttribute(range_key=True)


class _Rating(_ListingIndex):
    class Meta(_ListingIndex.Meta):
        index_name = "rating"

    pk = UnicodeAttribute(hash_key=True)
    rate_sk = UnicodeAttribute(range_key=True)


class ListingCard(Model):
    """<listing> / <resource id>: a published resource's card in one listing (`all`,
    `cat#<slug>`, `tag#<tag>`, `creator#<id>`), sorted by the three local indexes."""

    Meta = table_meta("listings_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    new_sk = UnicodeAttribute()
    pop_sk = UnicodeAttribute()
    rate_sk = UnicodeAttribute()
    title = UnicodeAttribute()
    kind = UnicodeAttribute()
    price_amount = NumberAttribute()
    price_currency = UnicodeAttribute()
    category = UnicodeAttribute()
    category_path = _strings()
    tags = _strings()
    members_only = BooleanAttribute(default=False)
    member_level = NumberAttribute(default=1)
    creator_id = UnicodeAttribute()
    creator_name = UnicodeAttribute()
    sales = NumberAttribute(default=0)
    rating_sum = NumberAttribute(default=0)
    rating_count = NumberAttribute(default=0)
    cover_key = UnicodeAttribute(null=True)
    published_at = UnicodeAttribute()
    newest = _Newest()
    popular = _Popular()
    rating = _Rating()


# ---------------------------------------------------------------- keys and access
# The services above never build a key or reach a connection: they ask for these.

META = "META"
REVIEW_QUEUE = "REVIEW"
ALL_LISTING = "all"


def get_resource(resource_id: str, consistent: bool = True) -> ResourceRecord | None:
    try:
        return ResourceRecord.get(ResourceRecord.key(resource_id), META,
                                  consistent_read=consistent)
    except ResourceRecord.DoesNotExist:
        return None


def get_resources(resource_ids: list[str]) -> dict[str, ResourceRecord]:
    """Resources by id (the missing ones absent): one BatchGetItem."""
    if not resource_ids:
        return {}
    found = ResourceRecord.batch_get([(ResourceRecord.key(i), META) for i in resource_ids])
    return {r.resource_id: r for r in found}


def resource_keys(resource_ids: list[str]) -> list[dict]:
    """The raw keys of resources' META items, for another context's `db.batch_read`."""
    return [{"pk": {"S": ResourceRecord.key(i)}, "sk": {"S": META}} for i in resource_ids]


def resources_from_raw(items: list[dict]) -> list[ResourceRecord]:
    """The resources of raw META items (what `resource_keys` found)."""
    return [ResourceRecord.from_raw_data(item) for item in items]


def resource_collection(resource_id: str) -> tuple[ResourceRecord | None,
                                                    dict[str, UploadRecord]]:
    """The resource and its uploads: one Query on its item collection."""
    resource, uploads = None, {}
    # The collection mixes two models, so it is read raw and each item typed by its sort key.
    raw = ResourceRecord._get_connection().query(ResourceRecord.key(resource_id),
                                                 consistent_read=True)
    for item in raw.get("Items", []):
        if item["sk"]["S"] == META:
            resource = ResourceRecord.from_raw_data(item)
        else:
            upload = UploadRecord.from_raw_data(item)
            uploads[upload.upload_id] = upload
    return resource, uploads


def new_resource(resource_id: str, creator_id: str, now: str, **fields) -> ResourceRecord:
    """A resource item with its keys (gsi1: the creator's resources by creation)."""
    return ResourceRecord(pk=ResourceRecord.key(resource_id), sk=META,
                          resource_id=resource_id, creator_id=creator_id, created_at=now,
                          updated_at=now, gsi1pk=f"CREATOR#{creator_id}",
                          gsi1sk=f"{now}#{resource_id}", **fields)


def resources_by_creator(creator_id: str, limit: int, start: dict | None,
                         status: str | None = None):
    """The creator's resources newest first (a PynamoDB result iterator): one Query."""
    condition = ResourceRecord.status == status if status else None
    return ResourceRecord.by_creator.query(f"CREATOR#{creator_id}", scan_index_forward=False,
                                           limit=limit, last_evaluated_key=start,
                                           filter_condition=condition)


def join_review_queue(now: str, resource_id: str) -> list:
    """Update actions filing the resource in the review queue (gsi2), by submission time."""
    return [ResourceRecord.gsi2pk.set(REVIEW_QUEUE),
            ResourceRecord.gsi2sk.set(f"{now}#{resource_id}")]


def leave_review_queue() -> list:
    return [ResourceRecord.gsi2pk.remove(), ResourceRecord.gsi2sk.remove()]


def review_queue(limit: int, start: dict | None):
    """Resources waiting for review, oldest submission first: one Query."""
    return ResourceRecord.by_review.query(REVIEW_QUEUE, limit=limit, last_evaluated_key=start)


def get_upload(resource_id: str, upload_id: str) -> UploadRecord | None:
    try:
        return UploadRecord.get(ResourceRecord.key(resource_id),
                                UploadRecord.sort_key(upload_id), consistent_read=True)
    except UploadRecord.DoesNotExist:
        return None


def new_upload(resource_id: str, upload_id: str, **fields) -> UploadRecord:
    return UploadRecord(pk=ResourceRecord.key(resource_id), sk=UploadRecord.sort_key(upload_id),
                        upload_id=upload_id, resource_id=resource_id, **fields)


def delete_uploads(uploads: list[UploadRecord]) -> None:
    with UploadRecord.batch_write() as batch:
        for upload in uploads:
            batch.delete(upload)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def object_key(creator_id: str, resource_id: str, upload_id: str, filename: str) -> str:
    """The S3 key an upload is sent to: creators/<creator>/<resource>/<upload>/<safe name>."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", unicodedata.normalize("NFKC", base)).strip("._") or "file"
    return f"creators/{creator_id}/{resource_id}/{upload_id}/{name[-100:]}"


def parse_object_key(key: str) -> tuple[str, str] | None:
    """(resource id, upload id) of an upload's S3 key; None for a key not made by object_key."""
    parts = key.split("/")
    if len(parts) < 5 or parts[0] != "creators":
        return None
    return parts[2], parts[3]


def new_audit_entry(entry_id: str, at: str, target_id: str, **fields) -> AuditRecord:
    """An audit item: AUDIT / <at>#<id>, and in gsi1 under its target."""
    sort = f"{at}#{entry_id}"
    return AuditRecord(sk=sort, entry_id=entry_id, at=at, target_id=target_id,
                       gsi1pk=f"AUDIT#{target_id}", gsi1sk=sort, **fields)


def audit_entries(target_id: str | None, limit: int, start: dict | None):
    """Audit entries newest first, all or one target's: one Query."""
    if target_id:
        return AuditRecord.by_target.query(f"AUDIT#{target_id}", scan_index_forward=False,
                                           limit=limit, last_evaluated_key=start)
    return AuditRecord.query("AUDIT", scan_index_forward=False, limit=limit,
                             last_evaluated_key=start)


def all_categories() -> list[CategoryRecord]:
    return list(CategoryRecord.query("CATEGORY"))


def get_category(slug: str) -> CategoryRecord | None:
    try:
        return CategoryRecord.get("CATEGORY", slug)
    except CategoryRecord.DoesNotExist:
        return None


def listing_key(kind: str, value: str) -> str:
    """A listing's partition: `creator#<id>`, `cat#<slug>` or `tag#<normal form>`."""
    return f"{kind}#{value}"


def listing_card(listing: str, r: ResourceRecord, rating_avg: float) -> ListingCard:
    """The resource's card in `listing`, with the sort keys of the three local indexes."""
    published = r.published_at or r.updated_at
    return ListingCard(
        pk=listing, sk=r.resource_id, new_sk=f"{published}#{r.resource_id}",
        pop_sk=f"{int(r.sales):012d}#{published}#{r.resource_id}",
        rate_sk=f"{int(rating_avg * 100):04d}#{int(r.rating_count):010d}#{r.resource_id}",
        title=r.title, kind=r.kind, price_amount=int(r.price_amount),
        price_currency=r.price_currency, category=r.category, category_path=r.category_path,
        tags=r.tags, members_only=r.members_only, member_level=int(r.member_level or 1),
        creator_id=r.creator_id,
        creator_name=r.creator_name, sales=int(r.sales), rating_sum=r.rating_sum,
        rating_count=int(r.rating_count), cover_key=r.cover_key, published_at=published)


def write_cards(stale: list[tuple[str, str]], fresh: list[ListingCard]) -> None:
    """Delete the (listing, resource id) cards in `stale` and write `fresh`, in batches."""
    with ListingCard.batch_write() as batch:
        for listing, resource_id in stale:
            batch.delete(ListingCard(pk=listing, sk=resource_id))
        for card in fresh:
            batch.save(card)


def listing_page(listing: str, index_name: str, limit: int, start: dict | None,
                 category: str | None = None):
    """One page of a listing by one of its local indexes, best first: one Query."""
    condition = ListingCard.category_path.contains(category) if category else None
    return getattr(ListingCard, index_name).query(listing, scan_index_forward=False,
                                                  limit=limit, last_evaluated_key=start,
                                                  filter_condition=condition)


# ---------------------------------------------------------------- transitions

def _allowed_from(transition: Transition) -> Any:
    condition = ResourceRecord.status.is_in(*(s.value for s in transition.source))
    if transition.review is not None:
        flag = ResourceRecord.review_pending
        condition &= (flag == True) if transition.review[0] else (  # noqa: E712
            (flag == False) | flag.does_not_exist())  # noqa: E712
    return condition


def apply_transition(resource: ResourceRecord, transition: Transition, actions: list,
                     guard: Any = None, audit: AuditRecord | None = None,
                     events: list | None = None) -> bool:
    """Write `transition` of `resource` with `actions` as ONE conditional write: the status
    must be one the transition is allowed from (and `guard`, what else the actions were
    computed from, must still hold), whatever version was read; with `audit`, the entry is
    saved in the same transaction, as are the outbox items of `events`. False when the
    condition failed: another transition won.

    The version is still incremented, so an edit computed from the state before fails."""
    from pynamodb.exceptions import TransactWriteError, UpdateError

    condition = _allowed_from(transition)
    if guard is not None:
        condition &= guard
    writes = list(actions)
    if transition.target is not None:
        writes.append(ResourceRecord.status.set(transition.target.value))
    if transition.review is not None:
        writes.append(ResourceRecord.review_pending.set(transition.review[1]))
    try:
        if audit is None:
            resource.update(actions=writes, condition=condition, add_version_condition=False)
        else:
            with db.transaction() as tx:
                tx.update(resource, actions=writes, condition=condition,
                          add_version_condition=False)
                tx.save(audit)
                for event in events or ():
                    tx.save(event)
    except UpdateError as exc:
        if db.is_condition_failure(exc):
            return False
        raise
    except TransactWriteError as exc:
        if db.cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
            return False
        raise
    return True


def delete_in_state(resource: ResourceRecord, transition: Transition, guard: Any = None) -> bool:
    """Delete the resource if its status is one `transition` is allowed from, and it is still
    the version read (its uploads, deleted with it, are those that version knew: a new upload
    changes the version). False when the condition failed."""
    from pynamodb.exceptions import DeleteError

    condition = _allowed_from(transition)
    if guard is not None:
        condition &= guard
    try:
        resource.delete(condition=condition)
    except DeleteError as exc:
        if db.is_condition_failure(exc):
            return False
        raise
    return True
