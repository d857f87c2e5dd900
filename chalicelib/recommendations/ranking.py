"""The recommender's scoring: pure functions over the stored structures, no I/O. The service
(`service.py`) reads the structures and calls these; the offline evaluation
(`bench/recommend_eval.py`) builds the same structures in memory with the same functions
(`add_purchase`, `counts_added`) and ranks with the same calls.

Structures (what `store.py` keeps):
- a buyer's `Profile`: the resources they own (newest last, at most OWNED_CAP), each with the
  category and tags it had when bought; their taste (tag and category weights) is derived from
  it (`taste`);
- co-purchase counts: for a resource, how many buyers also own each other resource;
- tag counts: for a tag, how many purchases each resource carrying it had;
- trending: for each of the last TREND_DAYS days, each resource's purchases that day.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

import msgspec

OWNED_CAP = 200  # resources kept in a profile (the newest); exclusion is checked at read time
PARTNERS = 40  # a new purchase is paired with the buyer's newest PARTNERS owned resources
SEEDS = 20  # the newest owned resources whose co-purchases a request reads
TOP_TAGS = 5  # the buyer's strongest tags whose counts a request reads
TAGS_PER_RESOURCE = 5  # tags of a purchase counted (the first ones, as the creator ordered)
TREND_DAYS = 7
TREND_DECAY = 0.7  # a day's weight against the day after it
CANDIDATES = 50  # candidates whose cards (and the buyer's entitlements) one BatchGet reads

# Weights of the personal score's parts, each normalised to 0..1 first.
W_CO, W_TAG, W_TREND = 1.0, 0.6, 0.15
W_CARD_TAGS, W_CARD_CATEGORY = 0.5, 0.3
# Weights of the related score's parts.
R_CATEGORY, R_TAGS, R_CO = 1.0, 1.0, 1.5


class Owned(msgspec.Struct, forbid_unknown_fields=True):
    resource_id: str
    order_id: str
    category: str = ""
    tags: list[str] = []


class Profile(msgspec.Struct, forbid_unknown_fields=True):
    owned: list[Owned] = []


class Facet(msgspec.Struct, forbid_unknown_fields=True):
    """What scoring needs of a resource: its category and tags."""

    category: str = ""
    tags: list[str] = []


def tag_key(tag: str) -> str:
    return " ".join(tag.casefold().split())


# ------------------------------------------------------------------------------ writes

def add_purchase(profile: Profile, owned: Owned) -> tuple[Profile, list[str]] | None:
    """The profile once `owned` is bought, and the owned resources to pair it with (the
    newest PARTNERS); None when the buyer owns it already (nothing to count)."""
    if any(o.resource_id == owned.resource_id for o in profile.owned):
        return None
    partners = [o.resource_id for o in profile.owned[-PARTNERS:]]
    clean = Owned(resource_id=owned.resource_id, order_id=owned.order_id,
                  category=owned.category,
                  tags=list(dict.fromkeys(tag_key(t) for t in owned.tags if tag_key(t))))
    return Profile(owned=[*profile.owned, clean][-OWNED_CAP:]), partners


def counted_tags(owned: Owned) -> list[str]:
    """The tags a purchase adds to the tag counts."""
    return list(dict.fromkeys(tag_key(t) for t in owned.tags if tag_key(t)))[:TAGS_PER_RESOURCE]


def drop_order(profile: Profile, order_id: str) -> Profile:
    """The profile once an order is refunded in full: what it bought is no longer owned."""
    return Profile(owned=[o for o in profile.owned if o.order_id != order_id])


def trend_shard(resource_id: str, shards: int) -> int:
    import zlib

    return zlib.crc32(resource_id.encode()) % shards


# ------------------------------------------------------------------------------ reads

def seeds(profile: Profile) -> list[str]:
    """The owned resources whose co-purchases a request reads: the newest SEEDS."""
    return [o.resource_id for o in profile.owned[-SEEDS:]]


def taste(profile: Profile) -> tuple[dict[str, float], dict[str, float]]:
    """The buyer's tag and category weights (0..1, 1 the strongest), newer purchases weighing
    more (the newest 1, the oldest kept half as much)."""
    tags: defaultdict[str, float] = defaultdict(float)
    categories: defaultdict[str, float] = defaultdict(float)
    n = len(profile.owned)
    for i, o in enumerate(profile.owned):
        w = 0.5 + 0.5 * (i + 1) / n
        for t in o.tags:
            tags[t] += w
        if o.category:
            categories[o.category] += w
    return _unit(tags), _unit(categories)


def top_tags(profile: Profile) -> list[str]:
    tags, _ = taste(profile)
    return [t for t, _ in sorted(tags.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_TAGS]]


def trending(days: Mapping[int, Mapping[str, int]]) -> dict[str, float]:
    """Recency-weighted purchases: {age in days (0 today): {resource: purchases}}."""
    score: defaultdict[str, float] = defaultdict(float)
    for age, counts in days.items():
        if 0 <= age < TREND_DAYS:
            for rid, n in counts.items():
                score[rid] += n * TREND_DECAY ** age
    return dict(score)


def ranked(scores: Mapping[str, float], exclude: Iterable[str] = (),
           limit: int | None = None) -> list[str]:
    """Ids by score, best first (ties by id, so the order is stable)."""
    skip = set(exclude)
    out = [rid for rid, s in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
           if rid not in skip and s > 0]
    return out if limit is None else out[:limit]


def candidates(profile: Profile, co: Mapping[str, Mapping[str, int]],
               tag_counts: Mapping[str, Mapping[str, int]],
               trend: Mapping[str, float]) -> dict[str, float]:
    """First stage of a personal ranking, from the stored counts alone: co-purchases of the
    seeds (each seed's counts as shares, so one popular seed does not drown the others),
    purchases within the buyer's strongest tags (weighted by the tag's weight), and trending;
    what the buyer owns is left out."""
    owned = {o.resource_id for o in profile.owned}
    tags, _ = taste(profile)
    co_score: defaultdict[str, float] = defaultdict(float)
    for seed, counts in co.items():
        total = sum(counts.values())
        for rid, n in counts.items():
            if rid != seed and total:
                co_score[rid] += n / total
    tag_score: defaultdict[str, float] = defaultdict(float)
    for tag, counts in tag_counts.items():
        total = sum(counts.values())
        for rid, n in counts.items():
            if total:
                tag_score[rid] += tags.get(tag, 0.0) * n / total
    co_n, tag_n, trend_n = _unit(co_score), _unit(tag_score), _unit(trend)
    out: dict[str, float] = {}
    for rid in set(co_n) | set(tag_n) | set(trend_n):
        if rid not in owned:
            out[rid] = W_CO * co_n.get(rid, 0.0) + W_TAG * tag_n.get(rid, 0.0) \
                + W_TREND * trend_n.get(rid, 0.0)
    return out


def personal(first: Mapping[str, float], facets: Mapping[str, Facet],
             profile: Profile) -> dict[str, float]:
    """Second stage: the first stage's scores of the candidates whose cards were read, plus
    how well each card's tags and category match the buyer's taste."""
    tags, categories = taste(profile)
    out = {}
    for rid, facet in facets.items():
        card_tags = {tag_key(t) for t in facet.tags}
        match = sum(tags.get(t, 0.0) for t in card_tags) / math.sqrt(len(card_tags)) \
            if card_tags else 0.0
        out[rid] = first.get(rid, 0.0) + W_CARD_TAGS * min(match, 1.0) \
            + W_CARD_CATEGORY * categories.get(facet.category, 0.0)
    return out


def recommend(profile: Profile, co: Mapping[str, Mapping[str, int]],
              tag_counts: Mapping[str, Mapping[str, int]], trend: Mapping[str, float],
              facets_of: Callable[[list[str]], Mapping[str, Facet]], limit: int) -> list[str]:
    """A buyer's recommendations, best first: the first stage over the stored counts, its
    best CANDIDATES handed to `facets_of` (the service reads their cards there and leaves
    out what is not to be shown; the evaluation looks them up), then the second stage."""
    first = candidates(profile, co, tag_counts, trend)
    facets = facets_of(ranked(first, limit=CANDIDATES))
    return ranked(personal(first, facets, profile), limit=limit)


def related(seed_id: str, seed: Facet, facets: Mapping[str, Facet],
            co: Mapping[str, int]) -> dict[str, float]:
    """Resources like `seed`: same category, shared tags (as a share of the seed's), and how
    often they were bought together (as a share of the seed's best pairing). Never itself."""
    seed_tags = {tag_key(t) for t in seed.tags}
    best = max(co.values(), default=0)
    out = {}
    for rid, facet in facets.items():
        if rid == seed_id:
            continue
        shared = len(seed_tags & {tag_key(t) for t in facet.tags})
        score = R_CATEGORY * (facet.category == seed.category and bool(seed.category)) \
            + R_TAGS * (shared / len(seed_tags) if seed_tags else 0.0) \
            + R_CO * (co.get(rid, 0) / best if best else 0.0)
        if score > 0:
            out[rid] = score
    return out


def _unit(scores: Mapping[str, float]) -> dict[str, float]:
    top = max(scores.values(), default=0.0)
    return {k: v / top for k, v in scores.items()} if top > 0 else {}
