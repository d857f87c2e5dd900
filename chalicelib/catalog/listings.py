"""Public listings: one card per (listing, published resource), kept in step with the
resource on publish, edit and unpublish. A listing page is one Query on a local index."""
from __future__ import annotations

from chalicelib import cursor
from chalicelib.catalog.schemas import CardList, Counts, CreatorRef, Money, ResourceCard
from chalicelib.catalog.store import ListingCard, ResourceRecord
from chalicelib.search.text import normalise

ALL = "all"
_INDEX = {"newest": "newest", "popular": "popular", "rating": "rating"}


def tag_key(tag: str) -> str:
    return "tag#" + " ".join(normalise(tag).split())


def listing_keys(resource: ResourceRecord) -> list[str]:
    """Every listing a published resource appears in."""
    keys = [ALL, f"creator#{resource.creator_id}"]
    keys += [f"cat#{slug}" for slug in resource.category_path]
    keys += sorted({tag_key(t) for t in resource.tags if normalise(t).strip()})
    return keys


def rating_avg(rating_sum: float, count: int) -> float | None:
    return round(rating_sum / count, 2) if count else None


def _card(listing: str, r: ResourceRecord) -> ListingCard:
    published = r.published_at or r.updated_at
    avg = rating_avg(float(r.rating_sum), int(r.rating_count)) or 0.0
    return ListingCard(
        pk=listing, sk=r.resource_id, new_sk=f"{published}#{r.resource_id}",
        pop_sk=f"{int(r.sales):012d}#{published}#{r.resource_id}",
        rate_sk=f"{int(avg * 100):04d}#{int(r.rating_count):010d}#{r.resource_id}",
        title=r.title, kind=r.kind, price_amount=int(r.price_amount),
        price_currency=r.price_currency, category=r.category, category_path=r.category_path,
        tags=r.tags, members_only=r.members_only, creator_id=r.creator_id,
        creator_name=r.creator_name, sales=int(r.sales), rating_sum=r.rating_sum,
        rating_count=int(r.rating_count), cover_key=r.cover_key, published_at=published)


def sync(resource: ResourceRecord) -> list[str]:
    """Write the resource's cards where it should be listed and remove the others; returns the
    listings it is now in. Idempotent: a retry after a partial failure converges."""
    wanted = listing_keys(resource) if resource.status == "published" else []
    with ListingCard.batch_write() as batch:
        for stale in set(resource.listed_in or []) - set(wanted):
            batch.delete(ListingCard(pk=stale, sk=resource.resource_id))
        for listing in wanted:
            batch.save(_card(listing, resource))
    return wanted


def refresh_popularity(resource: ResourceRecord) -> None:
    """Rewrite a resource's cards after its sales changed (their `popular` order)."""
    with ListingCard.batch_write() as batch:
        for listing in resource.listed_in or []:
            batch.save(_card(listing, resource))


def counts(item: ListingCard | ResourceRecord) -> Counts:
    return Counts(sales=int(item.sales),
                  rating_avg=rating_avg(float(item.rating_sum), int(item.rating_count)),
                  rating_count=int(item.rating_count))


def card_out(item: ListingCard | ResourceRecord, cover_url) -> ResourceCard:
    """The public card of a listing item or of the resource itself (same attributes)."""
    is_card = isinstance(item, ListingCard)
    return ResourceCard(
        id=item.sk if is_card else item.resource_id, title=item.title, kind=item.kind,
        price=Money(amount=int(item.price_amount), currency=item.price_currency),
        category=item.category, tags=list(item.tags or []), members_only=item.members_only,
        creator=CreatorRef(id=item.creator_id, display_name=item.creator_name),
        counts=counts(item), cover_url=cover_url(item.cover_key),
        # A card is written only for a published resource; a resource may predate publishing.
        published_at=item.published_at if is_card else item.published_at or item.updated_at)


def page(listing: str, sort: str, limit: int, cursor_text: str | None,
         cover_url, category: str | None = None) -> CardList:
    """One page of a listing in `sort` order (newest, popular or rating; best first)."""
    scope = f"listing:{listing}:{sort}:{category or ''}"
    start = cursor.decode(cursor_text, scope)
    index = getattr(ListingCard, _INDEX[sort])
    condition = ListingCard.category_path.contains(category) if category else None
    results = index.query(listing, scan_index_forward=False, limit=limit,
                          last_evaluated_key=start, filter_condition=condition)
    items = [card_out(c, cover_url) for c in results]
    return CardList(items=items, next_cursor=cursor.encode(results.last_evaluated_key, scope))
