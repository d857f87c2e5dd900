"""Public listings: one card per (listing, published resource), kept in step with the
resource on publish, edit and unpublish. A listing page is one Query on a local index."""
from __future__ import annotations

from chalicelib import cursor
from chalicelib.catalog import store
from chalicelib.catalog.schemas import CardList, Counts, CreatorRef, ResourceCard, stored_price
from chalicelib.catalog.states import ResourceStatus
from chalicelib.catalog.store import ListingCard, ResourceRecord
from chalicelib.search.text import normalise

ALL = store.ALL_LISTING
# The members-only resources: what a membership opens (a member's library lists them).
MEMBERS = store.listing_key("members", "all")
_INDEX = {"newest": "newest", "popular": "popular", "rating": "rating"}


def tag_key(tag: str) -> str:
    return store.listing_key("tag", " ".join(normalise(tag).split()))


def listing_keys(resource: ResourceRecord) -> list[str]:
    """Every listing a published resource appears in."""
    keys = [ALL, creator_listing(resource.creator_id)]
    keys += [category_listing(slug) for slug in resource.category_path]
    keys += sorted({tag_key(t) for t in resource.tags if normalise(t).strip()})
    if resource.members_only:
        keys.append(MEMBERS)
    return keys


def creator_listing(creator_id: str) -> str:
    return store.listing_key("creator", creator_id)


def category_listing(slug: str) -> str:
    return store.listing_key("cat", slug)


def rating_avg(rating_sum: float, count: int) -> float | None:
    return round(rating_sum / count, 2) if count else None


def _card(listing: str, r: ResourceRecord) -> ListingCard:
    avg = rating_avg(float(r.rating_sum), int(r.rating_count)) or 0.0
    return store.listing_card(listing, r, avg)


def sync(resource: ResourceRecord) -> list[str]:
    """Write the resource's cards where it should be listed and remove the others; returns the
    listings it is now in. Idempotent: a retry after a partial failure converges."""
    wanted = listing_keys(resource) if resource.status == ResourceStatus.PUBLISHED else []
    stale = set(resource.listed_in or []) - set(wanted)
    store.write_cards([(listing, resource.resource_id) for listing in stale],
                      [_card(listing, resource) for listing in wanted])
    return wanted


def refresh_popularity(resource: ResourceRecord) -> None:
    """Rewrite a resource's cards after its sales changed (their `popular` order)."""
    store.write_cards([], [_card(listing, resource) for listing in resource.listed_in or []])


def counts(item: ListingCard | ResourceRecord) -> Counts:
    return Counts(sales=int(item.sales),
                  rating_avg=rating_avg(float(item.rating_sum), int(item.rating_count)),
                  rating_count=int(item.rating_count))


def card_out(item: ListingCard | ResourceRecord, cover_url) -> ResourceCard:
    """The public card of a listing item or of the resource itself (same attributes)."""
    if isinstance(item, ListingCard):
        resource_id, published_at = item.sk, item.published_at
    else:  # a resource may predate publishing; a card is written only for a published one
        resource_id, published_at = item.resource_id, item.published_at or item.updated_at
    return ResourceCard(
        id=resource_id, title=item.title, kind=item.kind,
        price=stored_price(item.price_amount, item.price_currency),
        category=item.category, tags=list(item.tags or []), members_only=item.members_only,
        member_level=int(item.member_level or 1),
        creator=CreatorRef(id=item.creator_id, display_name=item.creator_name),
        counts=counts(item), cover_url=cover_url(item.cover_key), published_at=published_at)


def page(listing: str, sort: str, limit: int, cursor_text: str | None,
         cover_url, category: str | None = None) -> CardList:
    """One page of a listing in `sort` order (newest, popular or rating; best first)."""
    scope = f"listing:{listing}:{sort}:{category or ''}"
    start = cursor.decode(cursor_text, scope)
    results = store.listing_page(listing, _INDEX[sort], limit, start, category)
    items = [card_out(c, cover_url) for c in results]
    return CardList(items=items, next_cursor=cursor.encode(results.last_evaluated_key, scope))
