"""Request and response models of the catalog: resources, uploads, review, categories."""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, cast

from msgspec import UNSET, Meta, Struct, UnsetType

from chalicelib.accounts.schemas import VISIBLE, Cursor, Input, Limit
from chalicelib.uploads import sniff

Kind = Literal["file", "ebook", "audio", "video", "course", "article"]
Status = Literal["draft", "pending_review", "published", "rejected", "unpublished"]
Currency = Literal["cny", "usd", "eur", "gbp"]
UploadState = Literal["awaiting_upload", "verifying", "verified", "rejected"]
Title = Annotated[str, Meta(min_length=1, max_length=120, pattern=VISIBLE)]
Description = Annotated[str, Meta(max_length=20_000)]
Tag = Annotated[str, Meta(min_length=1, max_length=30, pattern=VISIBLE)]
Tags = Annotated[list[Tag], Meta(max_length=20)]
Slug = Annotated[str, Meta(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]*$")]
# 1,000,000.00 in minor units: above that a price is a typo, not a product.
Amount = Annotated[int, Meta(ge=0, le=100_000_000)]
Filename = Annotated[str, Meta(min_length=1, max_length=200)]
# The types whose bytes the upload check recognises (parameters and letter case are ignored);
# which of them a purpose takes is UPLOAD_RULES'.
ContentType = Annotated[str, Meta(min_length=3, max_length=100, extra_json_schema={
    "enum": sorted(sniff.ACCEPTS),
    "description": "A type the upload check recognises; covers are images, previews samples"})]
# MAX_UPLOAD_BYTES' default (chalicelib.config); a deployment may set it lower.
MAX_FILE_BYTES = 2 * 1024**3
COVER_MAX_BYTES = 10 * 1024**2
Reason = Annotated[str, Meta(min_length=1, max_length=1000)]
UploadPurpose = Literal["file", "cover", "preview"]
Sort = Literal["newest", "popular", "rating"]
# Downloads allowed per buyer (None: unlimited), against link sharing.
DownloadCap = Annotated[int, Meta(ge=1, le=10_000)]


class Money(Struct, forbid_unknown_fields=True):
    amount: Amount
    currency: Currency


def stored_price(amount: Any, currency: str) -> Money:
    """A price read back from storage as the API's Money: it was validated as Money when it
    was written, so its currency is one of `Currency`'s."""
    return Money(amount=int(amount), currency=cast(Currency, currency))


MemberLevel = Annotated[int, Meta(ge=1, le=100)]


class ResourceIn(Input):
    title: Title
    description: Description
    price: Money
    category: Slug
    kind: Kind
    tags: Tags = []
    members_only: bool = False
    # The membership level that opens a members-only resource (plans at or above it do).
    member_level: MemberLevel = 1
    download_cap: DownloadCap | None = None


class ResourcePatch(Input):
    title: Title | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    price: Money | UnsetType = UNSET
    category: Slug | UnsetType = UNSET
    kind: Kind | UnsetType = UNSET
    tags: Tags | UnsetType = UNSET
    members_only: bool | UnsetType = UNSET
    member_level: MemberLevel | UnsetType = UNSET
    download_cap: DownloadCap | None | UnsetType = UNSET


# purpose → (content types it takes, largest size). A type outside them is 400
# unsupported_type, a size above 413 file_too_large (chalicelib.catalog.resources).
UPLOAD_RULES: dict[str, tuple[frozenset[str], int]] = {
    "file": (frozenset(sniff.ACCEPTS), MAX_FILE_BYTES),
    "cover": (sniff.IMAGES, COVER_MAX_BYTES),
    "preview": (sniff.SAMPLES, MAX_FILE_BYTES),
}


def _upload_rules_schema() -> dict[str, Any]:
    """UPLOAD_RULES as JSON Schema conditions on `purpose`, for the purposes narrower than
    the fields' own schemas (`file`, also when absent, takes every type and size)."""
    return {"allOf": [
        {"if": {"properties": {"purpose": {"const": purpose}}, "required": ["purpose"]},
         "then": {"properties": {"content_type": {"enum": sorted(types)},
                                 "size": {"maximum": limit}}}}
        for purpose, (types, limit) in UPLOAD_RULES.items()
        if (types, limit) != UPLOAD_RULES["file"]]}


class UploadIn(Input):
    filename: Filename
    content_type: ContentType
    size: Annotated[int, Meta(ge=1, extra_json_schema={"maximum": MAX_FILE_BYTES})]
    purpose: UploadPurpose = "file"

    # Merged into the document's schema of this model (chalicelib.apispec).
    json_schema_extra: ClassVar[dict[str, Any]] = _upload_rules_schema()


class MultipartPart(Input):
    part_number: Annotated[int, Meta(ge=1, le=10_000)]
    etag: Annotated[str, Meta(min_length=1, max_length=200)]


class MultipartCompleteIn(Input):
    parts: Annotated[list[MultipartPart], Meta(min_length=1, max_length=10_000)]


class RejectIn(Input):
    reason: Reason


class CategoryIn(Input):
    slug: Slug
    name: Annotated[str, Meta(min_length=1, max_length=40)]
    parent: Slug | None = None
    position: Annotated[int, Meta(ge=0, le=10_000)] = 0


class CategoryPatch(Input):
    name: Annotated[str, Meta(min_length=1, max_length=40)] | UnsetType = UNSET
    position: Annotated[int, Meta(ge=0, le=10_000)] | UnsetType = UNSET


class CreatorListQuery(Struct):
    status: Status | None = None
    limit: Limit = 20
    cursor: Cursor | None = None


class PageQuery(Struct):
    limit: Limit = 20
    cursor: Cursor | None = None


class CatalogQuery(Struct):
    category: str | None = None
    tag: str | None = None
    sort: Sort = "newest"
    limit: Limit = 20
    cursor: Cursor | None = None


class SearchQuery(Struct):
    q: Annotated[str, Meta(min_length=1, max_length=100)]
    limit: Limit = 20
    cursor: Cursor | None = None


class AuditQuery(Struct):
    resource_id: str | None = None
    limit: Limit = 20
    cursor: Cursor | None = None


class FileOut(Struct):
    upload_id: str
    status: UploadState
    filename: str
    content_type: str
    size: int | None
    sha256: str | None
    reason: str | None = None
    version: int | None = None


class ResourceOut(Struct):
    """A resource as its creator and admins see it."""

    id: str
    creator_id: str
    title: str
    description: str
    kind: str
    price: Money
    category: str
    tags: list[str]
    members_only: bool
    member_level: int
    download_cap: int | None
    status: str
    file: FileOut | None
    pending_file: FileOut | None
    cover: FileOut | None
    preview: FileOut | None
    review_pending: bool
    rejection_reason: str | None
    created_at: str
    updated_at: str
    published_at: str | None


class ResourceEnvelope(Struct):
    resource: ResourceOut


class ResourceList(Struct):
    items: list[ResourceOut]
    next_cursor: str | None


class CreatorRef(Struct):
    id: str
    display_name: str


class Counts(Struct):
    sales: int
    rating_avg: float | None
    rating_count: int


class PublicFile(Struct):
    filename: str
    content_type: str
    size: int
    version: int


class PublicResource(Struct):
    """A published resource as anyone sees it: never a storage key."""

    id: str
    title: str
    description: str
    kind: str
    price: Money
    category: str
    tags: list[str]
    members_only: bool
    member_level: int
    creator: CreatorRef
    counts: Counts
    file: PublicFile | None
    cover_url: str | None
    preview_url: str | None
    published_at: str | None
    updated_at: str


class ResourceCard(Struct):
    """A resource in a listing or search result."""

    id: str
    title: str
    kind: str
    price: Money
    category: str
    tags: list[str]
    members_only: bool
    member_level: int
    creator: CreatorRef
    counts: Counts
    cover_url: str | None
    published_at: str


class PublicResourceEnvelope(Struct):
    resource: PublicResource


class CardList(Struct):
    items: list[ResourceCard]
    next_cursor: str | None


class CreatorProfile(Struct):
    id: str
    display_name: str
    resources: list[ResourceCard]
    next_cursor: str | None


class UploadForm(Struct):
    """How to send the file: `post` → POST `fields` then the file to `url`; `multipart` →
    PUT each part to its URL, then call complete with the ETags."""

    upload_id: str
    method: Literal["post", "multipart"]
    expires_at: str
    url: str | None = None
    fields: dict[str, str] | None = None
    part_size: int | None = None
    parts: list[dict] | None = None


class Category(Struct):
    slug: str
    name: str
    parent: str | None
    position: int
    children: list["Category"] = []


class CategoryTree(Struct):
    items: list[Category]


class CategoryEnvelope(Struct):
    category: Category


class AuditEntry(Struct):
    id: str
    at: str
    actor_id: str
    action: str
    target_type: str
    target_id: str
    reason: str | None
    details: dict


class AuditList(Struct):
    items: list[AuditEntry]
    next_cursor: str | None
