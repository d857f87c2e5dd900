"""A coupon at checkout: priced by the engine, reserved in the order's transaction, consumed
when the order is paid and released when it ends unpaid, all through signed webhooks and
the analytics queue; its limits hold under concurrent checkouts."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.coupons import store
from tests.support import assert_envelope, post_webhooks, publish, take_webhooks


@pytest.fixture
def coupon(api, shop):
    """Make a coupon through the admin API; returns its code."""
    def make(**terms) -> str:
        body = {"code": "SAVE10", "kind": "percent", "percent_off": 10, **terms}
        reply = api.post("/admin/coupons", body, token=shop.admin_token)
        assert reply.status == 201, reply.body
        return reply.body["coupon"]["code"]
    return make


def _checkout(api, shop, code, token=None, items=None):
    return api.post("/checkout", {"items": [{"resource_id": r} for r in
                                            (items or [shop.resource["id"]])],
                                  "coupon_code": code}, token=token or shop.token)


def _counters(code):
    record = store.get(code)
    return int(record.reserved), int(record.redeemed), int(record.claimed)


def _redemptions(api, shop, code):
    return api.get(f"/admin/coupons/{code}/redemptions", token=shop.admin_token).body["items"]


def test_the_quote_and_the_session_carry_the_coupon_discount(api, shop, stripe, coupon):
    code = coupon(code="save10")
    quote = api.post("/checkout/quote", {"items": [{"resource_id": shop.resource["id"]}],
                                         "coupon_code": "Save10"}, token=shop.token).body
    assert (quote["coupon_code"], quote["coupon_discount"]["amount"],
            quote["total"]["amount"]) == ("SAVE10", 490, 4410)
    made = _checkout(api, shop, "save10")
    assert made.status == 201, made.body
    assert made.body["order"]["total"]["amount"] == quote["total"]["amount"]
    assert stripe.get(made.body["checkout_session_id"])["amount_total"] == 4410
    # Reserved with the order, nothing redeemed yet; a quote reserves nothing
    assert _counters(code) == (1, 0, 1)
    assert [(r["order_id"], r["status"], r["discount"]) for r in
            _redemptions(api, shop, code)] == [(made.body["order"]["id"], "reserved", 490)]


def test_paying_consumes_the_reservation_once(api, shop, stripe, pump, coupon):
    code = coupon()
    made = _checkout(api, shop, code).body
    stripe.pay(made["checkout_session_id"])
    deliveries = take_webhooks(stripe)
    post_webhooks(api, deliveries + deliveries, pump)  # delivered twice
    assert shop.order(made["order"]["id"])["status"] == "paid"
    assert _counters(code) == (0, 1, 1)
    assert [r["status"] for r in _redemptions(api, shop, code)] == ["consumed"]


def test_an_order_that_expires_unpaid_gives_its_coupon_back(api, shop, stripe, pump, coupon):
    code = coupon(max_redemptions=1)
    made = _checkout(api, shop, code).body
    # Used up while it is reserved
    other, pair = api.user_session()
    assert_envelope(_checkout(api, shop, code, token=pair["access_token"]), 422,
                    "coupon_exhausted")
    stripe.expire_checkout_session(made["checkout_session_id"])
    post_webhooks(api, take_webhooks(stripe), pump)
    assert shop.order(made["order"]["id"])["status"] == "expired"
    assert _counters(code) == (0, 0, 0)
    assert [r["status"] for r in _redemptions(api, shop, code)] == ["released"]
    # Released: another buyer may use it now
    assert _checkout(api, shop, code, token=pair["access_token"]).status == 201


def test_a_buyer_may_use_a_coupon_only_as_often_as_it_allows(api, shop, stripe, pump, coupon):
    code = coupon(max_per_user=1)
    second = publish(api, pump, shop.creator_token, shop.admin_token, title="第二本")
    assert _checkout(api, shop, code).status == 201
    assert_envelope(_checkout(api, shop, code, items=[second["id"]]), 422,
                    "coupon_limit_reached")
    assert _counters(code) == (1, 0, 1)


def test_a_first_purchase_coupon_is_refused_after_a_paid_order(api, shop, stripe, pump,
                                                               coupon):
    code = coupon(code="WELCOME", first_purchase_only=True)
    second = publish(api, pump, shop.creator_token, shop.admin_token, title="第二本")
    # Given the buyer's first order is paid (without the coupon)
    _, deliveries = shop.pay()
    post_webhooks(api, deliveries, pump)
    # Then the first-purchase coupon is refused, with nothing reserved
    assert_envelope(_checkout(api, shop, code, items=[second["id"]]), 422,
                    "coupon_first_purchase_only")
    assert _counters(code) == (0, 0, 0)
    # And a buyer who never paid may use it
    _, pair = api.user_session()
    assert _checkout(api, shop, code, token=pair["access_token"]).status == 201


def test_a_coupon_that_makes_the_order_free_is_redeemed_without_stripe(api, shop, stripe,
                                                                       pump, coupon):
    code = coupon(code="GIFT", percent_off=100)
    made = _checkout(api, shop, code)
    assert made.status == 201, made.body
    assert made.body["checkout_url"] is None and made.body["order"]["status"] == "paid"
    assert shop.library() == [shop.resource["id"]]
    pump.poll_once()
    assert _counters(code) == (0, 1, 1)
    assert not stripe.events


def test_twenty_concurrent_checkouts_of_a_coupon_limited_to_five_pay_five(
        api, shop, stripe, pump, coupon):
    from chalicelib.coupons.service import CouponInvalid
    from chalicelib.payments import checkout
    from devstack.stack import serialise_moto_dynamodb

    # DynamoDB serialises conflicting writes; in-process moto needs it done for it
    serialise_moto_dynamodb()
    code = coupon(code="FIVE", max_redemptions=5)
    buyers = [api.user_session()[0]["id"] for _ in range(20)]
    start = threading.Barrier(len(buyers))

    def buy(user_id):
        start.wait(timeout=60)
        try:
            return checkout.checkout(user_id, None, [shop.resource["id"]], None, code, 0)
        except CouponInvalid as refused:
            return refused.code

    with ThreadPoolExecutor(len(buyers)) as pool:
        results = list(pool.map(buy, buyers))
    opened = [r for r in results if not isinstance(r, str)]
    assert len(opened) == 5
    assert sorted({r for r in results if isinstance(r, str)}) == ["coupon_exhausted"]
    # The refused checkouts' sessions were expired: none of them can be paid
    take_webhooks(stripe)
    sessions = [s for s in stripe.events if s["type"] == "checkout.session.expired"]
    assert len(sessions) == 15
    for made in opened:
        stripe.pay(made.checkout_session_id)
    post_webhooks(api, take_webhooks(stripe), pump)
    assert _counters(code) == (0, 5, 5)
    paid = [r for r in _redemptions(api, shop, code) if r["status"] == "consumed"]
    assert sorted(r["order_id"] for r in paid) == sorted(m.order.id for m in opened)
