"""Points at checkout: read with the order's other reads, held in the order's transaction,
spent when it is paid (and points earned on what was paid), released when it ends unpaid,
and never spent twice by concurrent checkouts."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import assert_envelope, post_webhooks, publish, take_webhooks


@pytest.fixture
def points(api, shop):
    """Give the buyer points through the admin route; read the buyer's account."""
    def give(amount: int, user_id: str | None = None) -> None:
        reply = api.post(f"/admin/users/{user_id or shop.buyer['id']}/points",
                         {"delta": amount, "reason": "test grant"}, token=shop.admin_token)
        assert reply.status == 200, reply.body

    def account(token: str | None = None) -> tuple[int, int, int]:
        body = api.get("/me/points", token=token or shop.token).body
        return body["balance"], body["available"], body["held"]

    give.account = account
    return give


def _checkout(api, shop, points, items=None):
    return api.post("/checkout", {"items": [{"resource_id": r} for r in
                                            (items or [shop.resource["id"]])],
                                  "points_to_redeem": points}, token=shop.token)


def test_points_are_held_at_checkout_and_spent_when_paid(api, shop, stripe, pump, points):
    points(2000)
    quote = api.post("/checkout/quote", {"items": [{"resource_id": shop.resource["id"]}],
                                         "points_to_redeem": 1000}, token=shop.token).body
    assert (quote["points_used"], quote["points_discount"]["amount"],
            quote["total"]["amount"]) == (1000, 1000, 3900)
    made = _checkout(api, shop, 1000)
    assert made.status == 201, made.body
    assert stripe.get(made.body["checkout_session_id"])["amount_total"] == 3900
    assert points.account() == (2000, 1000, 1000)
    stripe.pay(made.body["checkout_session_id"])
    post_webhooks(api, take_webhooks(stripe), pump)
    # 1000 spent; 39 earned on the ¥39.00 paid
    assert points.account() == (1039, 1039, 0)


def test_an_order_that_expires_gives_its_points_back(api, shop, stripe, pump, points):
    points(2000)
    made = _checkout(api, shop, 1000).body
    stripe.expire_checkout_session(made["checkout_session_id"])
    post_webhooks(api, take_webhooks(stripe), pump)
    assert points.account() == (2000, 2000, 0)


def test_more_points_than_available_are_refused(api, shop, points):
    points(500)
    assert_envelope(_checkout(api, shop, 1000), 422, "insufficient_points")
    assert points.account() == (500, 500, 0)


def test_concurrent_checkouts_cannot_spend_the_same_points_twice(api, shop, stripe, pump,
                                                                 points):
    from chalicelib.payments import checkout
    from chalicelib.pricing.engine import InsufficientPoints
    from devstack.stack import serialise_moto_dynamodb

    serialise_moto_dynamodb()
    others = [publish(api, pump, shop.creator_token, shop.admin_token, title=f"第{n}本")["id"]
              for n in range(3)]
    points(2000)
    start = threading.Barrier(len(others))

    def buy(resource_id):
        start.wait(timeout=60)
        try:
            return checkout.checkout(shop.buyer["id"], None, [resource_id], None, None, 1500)
        except InsufficientPoints as refused:
            return refused.code

    with ThreadPoolExecutor(len(others)) as pool:
        results = list(pool.map(buy, others))
    assert sum(1 for r in results if not isinstance(r, str)) == 1
    assert sorted(r for r in results if isinstance(r, str)) == ["insufficient_points"] * 2
    assert points.account() == (2000, 500, 1500)


def test_a_refund_takes_back_earned_points_and_returns_used_ones(api, shop, stripe, pump,
                                                                 points):
    points(2000)
    made = _checkout(api, shop, 1000).body
    stripe.pay(made["checkout_session_id"])
    post_webhooks(api, take_webhooks(stripe), pump)
    assert points.account() == (1039, 1039, 0)
    refund = api.post(f"/admin/orders/{made['order']['id']}/refund",
                      {"amount": 3900, "reason": "requested_by_customer"},
                      token=shop.admin_token)
    assert refund.status == 202, refund.body
    post_webhooks(api, take_webhooks(stripe), pump)
    assert shop.order(made["order"]["id"])["status"] == "refunded"
    # the 39 earned are taken back; the 1000 used come back
    assert points.account() == (2000, 2000, 0)


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(percent=st.sampled_from([None, 5, 15, 33, 50]),
       points_n=st.integers(0, 30).map(lambda n: n * 100))
def test_checkout_charges_what_the_quote_said(api, shop, stripe, points, percent, points_n):
    # Given a new buyer with points, and maybe a coupon
    user, pair = api.user_session()
    token = pair["access_token"]
    points(5000, user_id=user["id"])
    body: dict = {"items": [{"resource_id": shop.resource["id"]}],
                  "points_to_redeem": points_n}
    if percent:
        code = f"P{percent}-{user['id'][:8]}".upper()
        assert api.post("/admin/coupons", {"code": code, "kind": "percent",
                                           "percent_off": percent},
                        token=shop.admin_token).status == 201
        body["coupon_code"] = code
    # When it is quoted, then checked out
    quote = api.post("/checkout/quote", body, token=token)
    made = api.post("/checkout", body, token=token)
    # Then both answer alike, and Stripe is asked for the quote's total
    if quote.status != 200:
        assert made.status == quote.status and made.body["error"]["code"] == \
            quote.body["error"]["code"]
        return
    assert made.status == 201, made.body
    total = quote.body["total"]["amount"]
    assert made.body["order"]["total"]["amount"] == total
    assert stripe.get(made.body["checkout_session_id"])["amount_total"] == total
