"""Storage of the catalog (PynamoDB). The catalog table holds resources with their uploads
(one item collection per resource), categories and the moderation audit log; the listings
table holds one card per (listing, published resource); the search table the postings.
`docs/data-model.md` lists the access patterns."""
from __future__ import annotations

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

from chalicelib.db import global_index, table_meta


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
    category_path = ListAttribute(of=UnicodeAttribute, default=list)
    tags = ListAttribute(of=UnicodeAttribute, default=list)
    members_only = BooleanAttribute(default=False)
    download_cap = NumberAttribute(null=True)
    status = UnicodeAttribute(default="draft")
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
    listed_in = ListAttribute(of=UnicodeAttribute, default=list)
    indexed_terms = ListAttribute(of=UnicodeAttribute, default=list)
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
    status = UnicodeAttribute(default="awaiting_upload")
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
    details = MapAttribute(default=dict)
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
    category_path = ListAttribute(of=UnicodeAttribute, default=list)
    tags = ListAttribute(of=UnicodeAttribute, default=list)
    members_only = BooleanAttribute(default=False)
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


class Posting(Model):
    """T#<term> / <tier>#<resource id>: the resource contains the term (search.index);
    `pop`, its sales when indexed, ranks candidates."""

    Meta = table_meta("search_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    pop = NumberAttribute(default=0)
