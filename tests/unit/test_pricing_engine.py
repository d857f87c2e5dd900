"""The pricing engine's rules, as properties over generated baskets and as worked examples
(the same ones docs/pricing.md shows)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.pricing import engine
from chalicelib.pricing.engine import CouponTerms, Item, PointsRule

amounts = st.integers(min_value=0, max_value=2_000_000)
baskets = st.lists(st.builds(Item, resource_id=st.uuids().map(str), list_amount=amounts,
                             category_path=st.sampled_from([(), ("tech",), ("tech", "data")]),
                             creator_id=st.sampled_from(["c1", "c2"])),
                   min_size=1, max_size=8, unique_by=lambda i: i.resource_id)
coupons = st.one_of(
    st.none(),
    st.builds(CouponTerms, code=st.just("PCT"), percent_off=st.integers(1, 100),
              categories=st.sampled_from([frozenset(), frozenset({"data"})])),
    st.builds(CouponTerms, code=st.just("FIX"), amount_off=st.integers(1, 500_000),
              creator_ids=st.sampled_from([frozenset(), frozenset({"c2"})])))
rules = st.builds(PointsRule, value_points=st.sampled_from([1, 3, 100]),
                  value_minor=st.sampled_from([1, 2, 100]),
                  max_share_percent=st.integers(0, 100))


def _price_or_refusal(items, member, coupon, points, balance, rule):
    try:
        return engine.price("cny", items, member_percent=member, coupon=coupon,
                            points=points, points_balance=balance, rule=rule)
    except (engine.CouponNotApplicable, engine.CouponMinimumNotMet,
            engine.BelowMinimumCharge, engine.InsufficientPoints):
        return None


@settings(max_examples=400, deadline=None)
@given(items=baskets, member=st.integers(0, 100), coupon=coupons,
       points=st.integers(0, 1_000_000), balance=st.integers(0, 1_000_000), rule=rules)
def test_no_step_takes_more_than_its_cap_and_the_total_stays_between_zero_and_list(
        items, member, coupon, points, balance, rule):
    priced = _price_or_refusal(items, member, coupon, points, balance, rule)
    if priced is None:
        return
    assert 0 <= priced.total <= priced.list_total
    assert priced.total == priced.list_total - priced.member_discount \
        - priced.coupon_discount - priced.points_discount
    for line in priced.lines:
        assert 0 <= line.total <= line.list_amount
        assert line.member_discount <= engine.half_up(line.list_amount * member, 100)
    after_coupon = priced.total + priced.points_discount
    assert priced.points_discount <= after_coupon * rule.max_share_percent // 100
    assert priced.points_used <= min(points, balance)
    assert rule.worth(priced.points_used) >= priced.points_discount
    if coupon is not None and coupon.amount_off:
        assert priced.coupon_discount <= coupon.amount_off
    assert not (0 < priced.total < priced.minimum_charge)


@settings(max_examples=200, deadline=None)
@given(items=baskets, coupon=coupons, member=st.integers(0, 100))
def test_pricing_is_a_function_of_its_inputs(items, coupon, member):
    # Quote and checkout call price() with the same inputs: same lines, same total.
    first = _price_or_refusal(items, member, coupon, 0, 0, None)
    again = _price_or_refusal(list(items), member, coupon, 0, 0, None)
    assert first == again


@given(amount=st.integers(0, 10**9), weights=st.lists(st.integers(0, 10**7), min_size=1,
                                                      max_size=10))
def test_a_shared_amount_sums_exactly_and_no_part_exceeds_its_weight(amount, weights):
    amount = min(amount, sum(weights))
    parts = engine.share(amount, weights)
    assert sum(parts) == amount
    assert all(0 <= p <= w for p, w in zip(parts, weights, strict=True))


def test_worked_example_member_then_percent_coupon_then_points():
    # Given ¥49.00 and ¥19.90, a 10 % member discount, 20 % off and 1,000 points (¥10.00)
    items = [Item("a", 4900), Item("b", 1990)]
    priced = engine.price("cny", items, member_percent=10,
                          coupon=CouponTerms(code="SAVE20", percent_off=20),
                          points=1000, points_balance=5000)
    # Then each step works on what the previous one left, rounded half up per line
    assert [line.member_discount for line in priced.lines] == [490, 199]
    assert [line.coupon_discount for line in priced.lines] == [882, 358]
    assert [line.points_discount for line in priced.lines] == [711, 289]
    assert [line.total for line in priced.lines] == [2817, 1144]
    assert (priced.total, priced.points_used) == (3961, 1000)


def test_worked_example_fixed_coupon_shared_by_largest_remainder():
    items = [Item("a", 100), Item("b", 100), Item("c", 100)]
    priced = engine.price("usd", items, coupon=CouponTerms(code="OFF1", amount_off=100))
    assert [line.coupon_discount for line in priced.lines] == [34, 33, 33]
    assert priced.total == 200


def test_points_are_capped_at_half_of_what_is_left():
    priced = engine.price("cny", [Item("a", 1000)], points=900, points_balance=900)
    assert (priced.points_discount, priced.points_used, priced.total) == (500, 500, 500)


def test_a_total_below_the_minimum_charge_is_refused_unless_it_is_zero():
    with pytest.raises(engine.BelowMinimumCharge) as refused:
        engine.price("usd", [Item("a", 100)], coupon=CouponTerms(code="X", amount_off=60))
    assert refused.value.details == {"total": 40, "minimum": 50}
    free = engine.price("usd", [Item("a", 100)], coupon=CouponTerms(code="X", percent_off=100))
    assert free.total == 0


def test_a_scoped_coupon_touches_only_its_lines_and_refuses_a_basket_without_them():
    items = [Item("a", 1000, ("tech", "data")), Item("b", 1000, ("design",))]
    data_only = CouponTerms(code="DATA", percent_off=50, categories=frozenset({"data"}))
    priced = engine.price("cny", items, coupon=data_only)
    assert [line.coupon_discount for line in priced.lines] == [500, 0]
    with pytest.raises(engine.CouponNotApplicable):
        engine.price("cny", items[1:], coupon=data_only)


def test_points_beyond_the_balance_and_a_minimum_not_met_are_refused():
    with pytest.raises(engine.InsufficientPoints):
        engine.price("cny", [Item("a", 1000)], points=101, points_balance=100)
    with pytest.raises(engine.CouponMinimumNotMet):
        engine.price("cny", [Item("a", 1000)],
                     coupon=CouponTerms(code="BIG", amount_off=100, minimum_amount=5000))
