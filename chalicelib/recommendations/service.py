"""Recommendations: what a request reads and how it ranks (`ranking`), and how the order
events keep the counts. Reads per request (DynamoDB calls, the session check aside):

- `for_user`: 1 BatchGetItem (profile + the week's trending items); with a library, 1
  BatchGetItem (its seeds' co-purchases + its top tags' counts) and 1 BatchGetItem (the
  candidates' cards + the buyer's entitlements of them: owned and unpublished ones dropped);
  with an empty library, trending's two below instead.
- `trending`: 1 BatchGetItem (the week's trending items), 1 BatchGetItem (the cards), and
  1 Query (the catalog's best sellers) only when recent purchases fill less than a page.
- `related`: 1 BatchGetItem (the resource + its co-purchases), 1 Query (its category's best
  sellers), 1 BatchGetItem (cards of co-purchased ones outside that page) when there are any.
"""
from __future__ import annotations

from datetime import UTC, date, datetime

from chalicelib import db, outbox
from chalicelib.catalog import public
from chalicelib.catalog.schemas import ResourceCard
from chalicelib.errors import NotFound
from chalicelib.payments import library
from chalicelib.recommendations import ranking, store
from chalicelib.recommendations.ranking import Facet, Owned
from chalicelib.recommendations.schemas import Recommendations

SUBSCRIBER = "recommendations"
ATTEMPTS = 5
# The count rows this process counted since it last refreshed their summaries, {pk: ids}:
# refreshed once per key after the SQS batch (`refresh_summaries`), not once per purchase.
_behind: dict[str, set[str]] = {}


def _today() -> date:
    return datetime.now(UTC).date()


def _facet(card: ResourceCard) -> Facet:
    return Facet(category=card.category, tags=list(card.tags))


def _cards(ids: list[str], user_id: str | None) -> tuple[dict[str, ResourceCard], set[str]]:
    """The published cards of `ids` and which of them the user owns: one BatchGetItem."""
    if not ids:
        return {}, set()
    if user_id is None:
        [items] = db.batch_read(public.cards_read(ids))
        return public.published_cards_in(items), set()
    items, held = db.batch_read(public.cards_read(ids), library.owned_read(user_id, ids))
    return public.published_cards_in(items), library.owned_in(held)


def _trending(trend: dict[str, float], limit: int, user_id: str | None,
              owned: set[str]) -> Recommendations:
    ids = ranking.ranked(trend, exclude=owned, limit=ranking.CANDIDATES)
    cards, held = _cards(ids, user_id)
    skip = owned | held
    picks = [cards[rid] for rid in ids if rid in cards and rid not in skip][:limit]
    if len(picks) < limit:  # a quiet week: the catalog's best sellers make up the page
        taken = {card.id for card in picks} | skip
        extra = public.popular(None, min(limit + len(taken), 100))
        picks += [card for card in extra if card.id not in taken][:limit - len(picks)]
    return Recommendations(items=picks, basis="trending")


def trending(limit: int) -> Recommendations:
    """Recent purchases, recency-weighted, for anyone."""
    today = _today()
    [items] = db.batch_read(store.read(store.trend_keys(today)))
    trend = ranking.trending(store.trend_in(store.by_key(items), today))
    return _trending(trend, limit, None, set())


def for_user(user_id: str, limit: int) -> Recommendations:
    """The buyer's recommendations: from their library's co-purchases and tags, never what
    they own or what is not published; trending while their library is empty."""
    today = _today()
    [items] = db.batch_read(store.read([store.profile_key(user_id), *store.trend_keys(today)]))
    found = store.by_key(items)
    profile, _ = store.profile_in(found, user_id)
    trend = ranking.trending(store.trend_in(found, today))
    owned = {o.resource_id for o in profile.owned}
    if not profile.owned:
        return _trending(trend, limit, user_id, owned)
    seeds, tags = ranking.seeds(profile), ranking.top_tags(profile)
    [items] = db.batch_read(store.read([*map(store.co_key, seeds), *map(store.tag_key, tags)]))
    found = store.by_key(items)
    cards: dict[str, ResourceCard] = {}

    def facets_of(ids: list[str]) -> dict[str, Facet]:
        shown, held = _cards(ids, user_id)
        cards.update(shown)
        return {rid: _facet(card) for rid, card in shown.items() if rid not in held}

    order = ranking.recommend(
        profile, {s: store.counts_in(found, store.co_key(s)) for s in seeds},
        {t: store.counts_in(found, store.tag_key(t)) for t in tags}, trend, facets_of, limit)
    return Recommendations(items=[cards[rid] for rid in order], basis="personal")


def related(resource_id: str, limit: int) -> Recommendations:
    """Published resources like this one (category, tags, bought together); 404 for an
    unknown or unpublished one."""
    found, counted = db.batch_read(public.cards_read([resource_id]),
                                   store.read([store.co_key(resource_id)]))
    traits = public.traits_in(found).get(resource_id)
    if traits is None or traits.status != "published":
        raise NotFound("No such resource.", code="resource_not_found")
    co = store.counts_in(store.by_key(counted), store.co_key(resource_id))
    pool = {card.id: card for card in public.popular(traits.category, ranking.CANDIDATES)}
    missing = ranking.ranked({k: float(v) for k, v in co.items()},
                             exclude={resource_id, *pool}, limit=ranking.CANDIDATES)
    if missing:
        cards, _ = _cards(missing, None)
        pool.update(cards)
    seed = Facet(category=traits.category, tags=list(traits.tags))
    scores = ranking.related(resource_id, seed, {rid: _facet(c) for rid, c in pool.items()}, co)
    return Recommendations(items=[pool[rid] for rid in ranking.ranked(scores, limit=limit)],
                           basis="related")


# ------------------------------------------------------------------------------ events

def order_paid(event: outbox.DomainEvent, order_id: str, user_id: str,
               resource_ids: list[str], at: str) -> None:
    """Each bought resource, once (its own marker): into the buyer's profile, paired with
    their newest owned resources, counted under its tags and on the day it was paid."""
    ids = list(dict.fromkeys(resource_ids))
    traits = public.traits(ids)
    day = at[:10]
    for rid in ids:
        t = traits.get(rid)
        owned = Owned(resource_id=rid, order_id=order_id, category=t.category if t else "",
                      tags=list(t.tags) if t else [])
        marker = outbox.applied_marker("recommendations_table", f"{SUBSCRIBER}#{rid}", event)
        for _ in range(ATTEMPTS):
            profile, version = store.load_profile(user_id)
            change = ranking.add_purchase(profile, owned)
            try:
                if change is None:  # owned already (another order): nothing to count
                    store.record_applied(marker, user_id, None, version)
                else:
                    new, partners = change
                    counted = store.record_purchase(marker, user_id, new, version, rid,
                                                    partners, ranking.counted_tags(owned), day)
                    for pk, rows in counted.items():
                        _behind.setdefault(pk, set()).update(rows)
                break
            except store.Applied:
                break
            except store.Conflict:
                continue
        else:
            raise RuntimeError(f"the profile of {user_id} kept changing")


def refresh_summaries() -> None:
    """Bring the summaries of the keys counted since the last call up to their rows (after
    each SQS batch). Kept for the next call when it fails: the counts are already exact in
    their rows; only what requests read waits."""
    behind = dict(_behind)
    store.refresh(behind)
    for pk in behind:
        _behind.pop(pk, None)


def order_refunded(event: outbox.DomainEvent, order_id: str, user_id: str) -> None:
    """A full refund: the order's resources leave the buyer's profile (co-purchase, tag and
    trending counts stay: they record interest, not ownership). Once, by its marker."""
    marker = outbox.applied_marker("recommendations_table", SUBSCRIBER, event)
    for _ in range(ATTEMPTS):
        profile, version = store.load_profile(user_id)
        new = ranking.drop_order(profile, order_id)
        try:
            store.record_applied(marker, user_id, new if new != profile else None, version)
            return
        except store.Applied:
            return
        except store.Conflict:
            continue
    raise RuntimeError(f"the profile of {user_id} kept changing")
