"""What anyone sees: published resources' details, listings, creators' pages and search.
Storage keys never leave; covers and previews are short-lived presigned URLs. Also what the
payments context reads of resources, as plain values: offers to price, the file to deliver
and cards for a buyer's library (their keys as a `db.Read` of its own BatchGetItem)."""
from __future__ import annotations

from typing import NamedTuple, cast

from chalicelib import cursor, db
from chalicelib.analytics import events as analytics
from chalicelib.catalog import listings, store
from chalicelib.catalog.schemas import (
    CardList,
    CreatorProfile,
    CreatorRef,
    Currency,
    Money,
    PublicFile,
    PublicResource,
    ResourceCard,
    stored_price,
)
from chalicelib.catalog.states import ResourceStatus
from chalicelib.catalog.store import ResourceRecord
from chalicelib.config import settings
from chalicelib.errors import NotFound
from chalicelib.search import index as search_index

MEDIA_URL_SECONDS = 3600


def media_url(key: str | None) -> str | None:
    if not key:
        return None
    from chalicelib.uploads import presign

    return presign.get_url(settings().uploads_bucket, key, MEDIA_URL_SECONDS)


def detail(resource_id: str, viewer: str | None = None) -> PublicResource:
    """A published resource, and a view of it by `viewer`. One GetItem."""
    r = store.get_resource(resource_id, consistent=False)
    if r is None or r.status != ResourceStatus.PUBLISHED:
        raise NotFound("No such resource.", code="resource_not_found")
    analytics.track("resource.viewed", resource_id=r.resource_id, creator_id=r.creator_id,
                    category=r.category, viewer=viewer)
    live = r.live_file
    return PublicResource(
        id=r.resource_id, title=r.title, description=r.description, kind=r.kind,
        price=stored_price(r.price_amount, r.price_currency),
        category=r.category, tags=list(r.tags or []), members_only=r.members_only,
        member_level=int(r.member_level or 1),
        creator=CreatorRef(id=r.creator_id, display_name=r.creator_name), counts=listings.counts(r),
        file=PublicFile(filename=live.filename, content_type=live.content_type,
                        size=int(live.size), version=int(live.version)) if live else None,
        cover_url=media_url(r.cover_key), preview_url=media_url(r.preview_key),
        published_at=r.published_at, updated_at=r.updated_at)


class Preview(NamedTuple):
    """A published resource as a link preview shows it."""

    title: str
    description: str  # plain text, at most 200 characters
    image: str | None
    price: Money


PREVIEW_CHARS = 200


def preview(resource_id: str) -> Preview:
    """A published resource's link preview (no view is counted). One GetItem."""
    r = store.get_resource(resource_id, consistent=False)
    if r is None or r.status != ResourceStatus.PUBLISHED:
        raise NotFound("No such resource.", code="resource_not_found")
    text = " ".join((r.description or "").split())
    if len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS - 1].rstrip() + "…"
    return Preview(title=r.title, description=text, image=media_url(r.cover_key),
                   price=stored_price(r.price_amount, r.price_currency))


def catalog(category: str | None, tag: str | None, sort: str, limit: int,
            cursor_text: str | None) -> CardList:
    """Published resources, in a category (with its subcategories) or with a tag, or all.
    One Query."""
    if tag:
        return listings.page(listings.tag_key(tag), sort, limit, cursor_text, media_url,
                             category=category)
    listing = listings.category_listing(category) if category else listings.ALL
    return listings.page(listing, sort, limit, cursor_text, media_url)


def members_catalog(limit: int, cursor_text: str | None) -> CardList:
    """The published members-only resources, newest first. One Query."""
    return listings.page(listings.MEMBERS, "newest", limit, cursor_text, media_url)


def creator_page(creator_id: str, limit: int, cursor_text: str | None) -> CreatorProfile:
    """A creator's public page: name and published resources, newest first."""
    from chalicelib.accounts import profiles as accounts

    try:
        user = accounts.get_user(creator_id)
    except NotFound:
        user = None
    if user is None or "creator" not in user.roles:
        raise NotFound("No such creator.", code="creator_not_found")
    page = listings.page(listings.creator_listing(creator_id), "newest", limit, cursor_text,
                         media_url)
    return CreatorProfile(id=creator_id, display_name=user.display_name, resources=page.items,
                          next_cursor=page.next_cursor)


def card(r: ResourceRecord) -> ResourceCard:
    return listings.card_out(r, media_url)


def search(query: str, limit: int, cursor_text: str | None) -> CardList:
    """Full-text search: k Queries for k terms, then one BatchGetItem for the page."""
    scope = "search:" + " ".join(query.split()).casefold()
    position = cursor.decode(cursor_text, scope)
    offset = int(position.get("offset", 0)) if position else 0
    ranked = search_index.rank(query)
    if offset == 0:
        analytics.track("search.made")
    ids = ranked[offset:offset + limit]
    found = store.get_resources(ids)
    items = [card(found[i]) for i in ids
             if i in found and found[i].status == ResourceStatus.PUBLISHED]
    more = offset + limit < len(ranked)
    return CardList(items=items, next_cursor=cursor.encode(
        {"offset": offset + limit} if more else None, scope))


# ---------------------------------------------------------------- for payments

class Offer(NamedTuple):
    """A resource as checkout prices and records it."""

    id: str
    title: str
    status: str
    price_amount: int  # minor units
    currency: Currency
    creator_id: str
    creator_name: str
    members_only: bool
    member_level: int
    category_path: tuple[str, ...]  # the category and its ancestors, for coupon scopes


class FileRef(NamedTuple):
    """The approved file version buyers download: its object in the uploads bucket."""

    key: str
    filename: str
    version: int
    version_id: str | None


class Delivery(NamedTuple):
    """What a download needs of a resource: its live file (None before one is approved) and
    the downloads each buyer is allowed (None or 0: no cap)."""

    file: FileRef | None
    download_cap: int | None
    members_only: bool
    member_level: int
    creator_id: str | None = None
    category: str | None = None


def resources_read(resource_ids: list[str]) -> db.Read:
    """The part of a `db.batch_read` that reads these resources (any status)."""
    return db.Read(settings().catalog_table, store.resource_keys(resource_ids))


def offers_in(items: list[dict]) -> dict[str, Offer]:
    """The offers, by resource id, of the resources a `resources_read` part found."""
    return {r.resource_id: Offer(
        id=r.resource_id, title=r.title, status=r.status, price_amount=int(r.price_amount),
        currency=cast(Currency, r.price_currency), creator_id=r.creator_id,
        creator_name=r.creator_name, members_only=bool(r.members_only),
        member_level=int(r.member_level or 1),
        category_path=tuple(r.category_path or ()))
        for r in store.resources_from_raw(items)}


def delivery_in(items: list[dict]) -> Delivery | None:
    """The delivery of the one resource a `resources_read` part found, or None when it found
    none."""
    if not items:
        return None
    [r] = store.resources_from_raw(items[:1])
    live = r.live_file
    file = FileRef(key=live.key, filename=live.filename, version=int(live.version),
                   version_id=live.version_id) if live is not None else None
    cap = r.download_cap
    return Delivery(file=file, download_cap=int(cap) if cap is not None else None,
                    members_only=bool(r.members_only) and r.status == "published",
                    member_level=int(r.member_level or 1), creator_id=r.creator_id,
                    category=r.category)


def cards(resource_ids: list[str]) -> dict[str, ResourceCard]:
    """The cards of these resources (any status: what a buyer owns stays in their library),
    by id; the missing ones absent. One BatchGetItem."""
    return {rid: card(r) for rid, r in store.get_resources(resource_ids).items()}


# ---------------------------------------------------------------- for recommendations

class Traits(NamedTuple):
    """What a recommender scores a resource by, with its status (filter on it)."""

    status: str
    category: str
    tags: tuple[str, ...]


# What a card needs of a resource's META item (never its description or file records).
_CARD_ATTRIBUTES = ("resource_id", "creator_id", "creator_name", "title", "kind",
                    "price_amount", "price_currency", "category", "category_path", "tags",
                    "members_only", "member_level", "status", "cover_key", "sales",
                    "rating_sum", "rating_count", "created_at", "updated_at", "published_at")


def cards_read(resource_ids: list[str]) -> db.Read:
    """The part of a `db.batch_read` that reads what these resources' cards need."""
    names = {f"#a{i}": a for i, a in enumerate(_CARD_ATTRIBUTES)}
    return db.Read(settings().catalog_table, store.resource_keys(resource_ids),
                   projection=", ".join(names), names=names)


def traits_in(items: list[dict]) -> dict[str, Traits]:
    """The traits, by id, of the resources a `cards_read` (or `resources_read`) part found."""
    return {r.resource_id: Traits(status=r.status, category=r.category,
                                  tags=tuple(r.tags or ()))
            for r in store.resources_from_raw(items)}


def published_cards_in(items: list[dict]) -> dict[str, ResourceCard]:
    """The cards, by id, of the published resources a `cards_read` part found: a resource
    unpublished since it was counted is left out."""
    return {r.resource_id: card(r) for r in store.resources_from_raw(items)
            if r.status == ResourceStatus.PUBLISHED}


def traits(resource_ids: list[str]) -> dict[str, Traits]:
    """The traits of these resources (any status), by id. One BatchGetItem."""
    if not resource_ids:
        return {}
    [items] = db.batch_read(cards_read(resource_ids))
    return traits_in(items)


def popular(category: str | None, limit: int) -> list[ResourceCard]:
    """The best-selling published resources, of a category (with its subcategories) or of
    all. One Query."""
    return catalog(category, None, "popular", limit, None).items


# ---------------------------------------------------------------- for reviews

def add_rating_change(tx, resource_id: str, sum_delta: int, count_delta: int) -> None:
    """In an open `db.transaction()`: the resource's rating sum and count moved by a review
    posted, changed, hidden or removed (atomic ADDs, so concurrent ratings stay exact);
    condition: the resource exists."""
    tx.update(ResourceRecord(pk=ResourceRecord.key(resource_id), sk="META"),
              actions=[ResourceRecord.rating_sum.add(sum_delta),
                       ResourceRecord.rating_count.add(count_delta)],
              condition=ResourceRecord.pk.exists(), add_version_condition=False)


def rating_changed(resource_id: str) -> None:
    """After a rating change committed: the resource's listing cards re-ranked (their
    `rating` order). Best effort; the next change or re-index rewrites them anyway."""
    from chalicelib.catalog import indexing

    indexing.rerank(resource_id)
