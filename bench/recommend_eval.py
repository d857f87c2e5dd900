"""Offline evaluation of the recommender: hit-rate@10 against a popularity baseline.

A generated data set with planted structure: user groups, each with a category and two
preferred tags, whose resources come in co-purchase bundles (a user of the group buys mostly
from one or two bundles of it), plus a few popular items that every group buys (noise, and
what popularity alone finds). One purchase per user is held out (a random one); the rest are
replayed through the recommender's own write functions (`ranking.add_purchase`,
`ranking.counted_tags`, the co-purchase / tag / trending counts as `store.record_purchase`
adds them), and each user is ranked by `ranking.recommend`, the function the service calls,
fed by the same structures the service reads (the seeds' co-purchases, the top tags'
counts, the week's trending). Hit: the held-out resource is in the top 10. The baseline ranks
every resource by its purchases, leaving out what the user owns.

    .venv/bin/python bench/recommend_eval.py [--users N]
"""
from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chalicelib.recommendations import ranking  # noqa: E402
from chalicelib.recommendations.ranking import Facet, Owned, Profile  # noqa: E402

K = 10
GENERIC_TAGS = ("beginner", "advanced", "reference", "video", "workbook")


@dataclass
class Dataset:
    facets: dict[str, Facet]
    # each user's purchases in the order made: (resource, day age 0..6)
    purchases: dict[str, list[tuple[str, int]]]
    held_out: dict[str, str] = field(default_factory=dict)


def generate(users: int = 600, groups: int = 6, bundles: int = 5, bundle_size: int = 5,
             popular: int = 12, seed: int = 7) -> Dataset:
    rng = random.Random(seed)
    facets: dict[str, Facet] = {}
    group_bundles: list[list[list[str]]] = []
    for g in range(groups):
        tags = [f"g{g}-topic-a", f"g{g}-topic-b"]
        made = []
        for b in range(bundles):
            bundle = []
            for i in range(bundle_size):
                rid = f"g{g}b{b}i{i}"
                own_tags = [rng.choice(tags)] + ([rng.choice(tags)] if rng.random() < 0.5
                                                 else []) + [rng.choice(GENERIC_TAGS)]
                facets[rid] = Facet(category=f"cat{g}", tags=list(dict.fromkeys(own_tags)))
                bundle.append(rid)
            made.append(bundle)
        group_bundles.append(made)
    hits = [f"pop{i}" for i in range(popular)]
    for i, rid in enumerate(hits):
        facets[rid] = Facet(category=f"cat{i % groups}", tags=[rng.choice(GENERIC_TAGS)])
    weights = [1.0 / (i + 1) for i in range(popular)]  # Zipf: a few items everyone buys
    purchases: dict[str, list[tuple[str, int]]] = {}
    for u in range(users):
        g = u % groups
        chosen = rng.sample(group_bundles[g], k=rng.choice((1, 2)))
        mine = [rid for bundle in chosen for rid in rng.sample(bundle, k=rng.randint(3, 4))]
        mine += [rng.choice(group_bundles[g][rng.randrange(bundles)])]  # a stray of the group
        noise = set()
        while len(noise) < rng.randint(2, 4):
            noise.add(rng.choices(hits, weights)[0])
        bought = list(dict.fromkeys(mine + sorted(noise)))
        rng.shuffle(bought)
        purchases[f"u{u}"] = [(rid, rng.randrange(ranking.TREND_DAYS)) for rid in bought]
    return Dataset(facets=facets, purchases=purchases)


def hold_out(data: Dataset, seed: int = 11) -> dict[str, list[tuple[str, int]]]:
    """Each user's purchases without one, chosen at random (remembered in `held_out`)."""
    rng = random.Random(seed)
    train = {}
    for user, bought in data.purchases.items():
        i = rng.randrange(len(bought))
        data.held_out[user] = bought[i][0]
        train[user] = bought[:i] + bought[i + 1:]
    return train


@dataclass
class Structures:
    """What the recommendations table holds, in memory."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    co: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    tags: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    days: dict[int, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))


def _add(counts: dict[str, int], rid: str) -> None:
    counts[rid] = counts.get(rid, 0) + 1


def replay(train: dict[str, list[tuple[str, int]]], facets: dict[str, Facet]) -> Structures:
    """The purchases as the order.paid subscriber applies them, interleaved across users."""
    s = Structures()
    order = [(n, user, rid, age) for user, bought in train.items()
             for n, (rid, age) in enumerate(bought)]
    for _, user, rid, age in sorted(order):
        facet = facets[rid]
        owned = Owned(resource_id=rid, order_id=f"{user}-{rid}", category=facet.category,
                      tags=facet.tags)
        change = ranking.add_purchase(s.profiles.get(user, Profile()), owned)
        if change is None:
            continue
        s.profiles[user], partners = change
        for partner in partners:  # both ways, as store.record_purchase adds them
            _add(s.co[rid], partner)
            _add(s.co[partner], rid)
        for tag in ranking.counted_tags(owned):
            _add(s.tags[tag], rid)
        _add(s.days[age], rid)
    return s


def recommend(s: Structures, user: str, facets: dict[str, Facet]) -> list[str]:
    """What the service would answer the user, from what it would read."""
    profile = s.profiles.get(user, Profile())
    trend = ranking.trending(s.days)
    if not profile.owned:
        return ranking.ranked(trend, limit=K)
    seeds, tags = ranking.seeds(profile), ranking.top_tags(profile)
    return ranking.recommend(profile, {r: s.co.get(r, {}) for r in seeds},
                             {t: s.tags.get(t, {}) for t in tags}, trend,
                             lambda ids: {r: facets[r] for r in ids}, K)


def popularity(train: dict[str, list[tuple[str, int]]]) -> dict[str, float]:
    counts: dict[str, float] = defaultdict(float)
    for bought in train.values():
        for rid, _ in bought:
            counts[rid] += 1
    return counts


def run(users: int = 600, seed: int = 7) -> dict[str, Any]:
    data = generate(users=users, seed=seed)
    train = hold_out(data, seed + 4)
    s = replay(train, data.facets)
    popular = popularity(train)
    hits = {"recommender": 0, "popularity": 0}
    for user, target in data.held_out.items():
        owned = {rid for rid, _ in train[user]}
        mine = recommend(s, user, data.facets)
        assert not owned & set(mine), "recommended what the user owns"
        hits["recommender"] += target in mine
        hits["popularity"] += target in ranking.ranked(popular, exclude=owned, limit=K)
    n = len(data.held_out)
    rates = {name: round(h / n, 3) for name, h in hits.items()}
    return {"users": n, "resources": len(data.facets), "k": K,
            "purchases": sum(len(b) for b in data.purchases.values()),
            "hit_rate": rates, "beats_baseline": rates["recommender"] > rates["popularity"],
            "lift": round(rates["recommender"] / rates["popularity"], 2)
            if rates["popularity"] else None}


def report(result: dict[str, Any]) -> str:
    """The section bench/run.py writes to docs/BENCHMARKS.md."""
    r = result["hit_rate"]
    return (f"Generated: {result['users']} users, {result['resources']} resources, "
            f"{result['purchases']} purchases (user groups with preferred tags and "
            "categories, co-purchase bundles, popular noise items); one purchase per user "
            "held out.\n\n"
            f"| ranking | hit-rate@{result['k']} |\n|---|---|\n"
            f"| recommender (`ranking.recommend`) | {r['recommender']:.3f} |\n"
            f"| popularity baseline | {r['popularity']:.3f} |\n\n"
            f"Lift: {result['lift']}x; {'beats' if result['beats_baseline'] else 'DOES NOT beat'}"
            " the baseline.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=600)
    args = parser.parse_args()
    outcome = run(args.users)
    print(report(outcome))
    sys.exit(0 if outcome["beats_baseline"] else 1)
