"""The offline evaluation, small: on data with planted groups, bundles and popular noise, the
recommender's ranking (the function the service calls) beats popularity at hit-rate@10."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import recommend_eval  # noqa: E402


def test_the_recommender_beats_popularity_on_planted_structure():
    result = recommend_eval.run(users=120)
    rates = result["hit_rate"]
    assert result["users"] == 120
    assert rates["recommender"] > rates["popularity"] + 0.1, rates


def test_the_replayed_profiles_never_lead_to_owned_resources():
    data = recommend_eval.generate(users=30)
    train = recommend_eval.hold_out(data)
    structures = recommend_eval.replay(train, data.facets)
    for user, bought in train.items():
        mine = recommend_eval.recommend(structures, user, data.facets)
        assert len(mine) == recommend_eval.K
        assert not {rid for rid, _ in bought} & set(mine)
