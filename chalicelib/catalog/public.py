"""What anyone sees: published resources' details, listings, creators' pages and search.
Storage keys never leave; covers and previews are short-lived presigned URLs."""
from __future__ import annotations

from chalicelib import cursor
from chalicelib.catalog import listings, store
from chalicelib.catalog.schemas import (
    CardList,
    CreatorProfile,
    CreatorRef,
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


def detail(resource_id: str) -> PublicResource:
    """A published resource. One GetItem."""
    r = store.get_resource(resource_id, consistent=False)
    if r is None or r.status != ResourceStatus.PUBLISHED:
        raise NotFound("No such resource.", code="resource_not_found")
    live = r.live_file
    return PublicResource(
        id=r.resource_id, title=r.title, description=r.description, kind=r.kind,
        price=stored_price(r.price_amount, r.price_currency),
        category=r.category, tags=list(r.tags or []), members_only=r.members_only,
        creator=CreatorRef(id=r.creator_id, display_name=r.creator_name), counts=listings.counts(r),
        file=PublicFile(filename=live.filename, content_type=live.content_type,
                        size=int(live.size), version=int(live.version)) if live else None,
        cover_url=media_url(r.cover_key), preview_url=media_url(r.preview_key),
        published_at=r.published_at, updated_at=r.updated_at)


def catalog(category: str | None, tag: str | None, sort: str, limit: int,
            cursor_text: str | None) -> CardList:
    """Published resources, in a category (with its subcategories) or with a tag, or all.
    One Query."""
    if tag:
        return listings.page(listings.tag_key(tag), sort, limit, cursor_text, media_url,
                             category=category)
    listing = listings.category_listing(category) if category else listings.ALL
    return listings.page(listing, sort, limit, cursor_text, media_url)


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
    ids = ranked[offset:offset + limit]
    found = store.get_resources(ids)
    items = [card(found[i]) for i in ids
             if i in found and found[i].status == ResourceStatus.PUBLISHED]
    more = offset + limit < len(ranked)
    return CardList(items=items, next_cursor=cursor.encode(
        {"offset": offset + limit} if more else None, scope))
