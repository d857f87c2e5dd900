"""Sharing and referrals (分销) over the API on moto: every user's code, share links with
their previews, attribution by the last link visited (30 days), a reward on a referred
buyer's first paid order (points or commission, as configured) that refunds reverse, and
self-referral and loops refused."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import db
from tests.support import assert_envelope, drain, post_webhooks, publish, take_webhooks

ATTRIBUTION = "/me/referral/attribution"


def _code(api, token) -> str:
    reply = api.get("/me/referral", token=token)
    assert reply.status == 200, reply.body
    return reply.body["code"]


def _attribute(api, token, code, **extra):
    return api.call("PUT", ATTRIBUTION, {"code": code, **extra}, token=token)


def _balance(api, token) -> int:
    return api.get("/me/points", token=token).body["balance"]


def _refund(api, shop, stripe, pump, order_id, amount=None):
    body = {"reason": "requested_by_customer", **({"amount": amount} if amount else {})}
    reply = api.post(f"/admin/orders/{order_id}/refund", body, token=shop.admin_token)
    assert reply.status == 202, reply.body
    post_webhooks(api, take_webhooks(stripe), pump)
    drain(pump)


@pytest.fixture
def referral(api, shop, pump):
    """A referrer and a new user who came by the referrer's link: returns (referrer token,
    referee token, buy), `buy()` paying for the shop's resource as the referee."""
    _, referrer = api.user_session(name="推荐人")
    _, referee = api.user_session(name="Friend")
    code = _code(api, referrer["access_token"])
    assert _attribute(api, referee["access_token"], code).status == 200

    def buy(token=None) -> dict:
        made, deliveries = shop.pay(token=token or referee["access_token"])
        post_webhooks(api, deliveries, pump)
        drain(pump)
        return made

    return referrer["access_token"], referee["access_token"], buy


@pytest.fixture
def commission(monkeypatch):
    """The platform configured to pay referrers a commission of 10 % instead of points."""
    from chalicelib.config import settings

    monkeypatch.setenv("REFERRAL_REWARD", "commission")
    monkeypatch.setenv("REFERRAL_COMMISSION_BPS", "1000")
    settings.cache_clear()
    yield
    monkeypatch.undo()
    settings.cache_clear()


# --- codes and share links -------------------------------------------------------------

def test_every_user_has_one_stable_referral_code(api):
    _, first = api.user_session()
    _, second = api.user_session()
    mine = api.get("/me/referral", token=first["access_token"]).body
    assert mine["code"] == _code(api, first["access_token"])
    assert mine["code"] != _code(api, second["access_token"])
    assert mine["link"].endswith(f"?ref={mine['code']}")
    assert mine["terms"] == {"kind": "points", "points": 500, "commission_percent": None}
    assert (mine["referred"], mine["points_earned"], mine["items"]) == (0, 0, [])


def test_a_share_link_carries_the_code_and_the_preview(api, shop):
    code = _code(api, shop.token)
    reply = api.get(f"/resources/{shop.resource['id']}/share", token=shop.token)
    assert reply.status == 200, reply.body
    share = reply.body
    assert share["url"].endswith(f"/resources/{shop.resource['id']}?ref={code}")
    og = share["open_graph"]
    assert og["title"] == shop.resource["title"] and og["url"] == share["url"]
    assert og["description"] == " ".join(shop.resource["description"].split())[:200]
    assert og["type"] == "product" and share["price"] == shop.resource["price"]
    assert_envelope(api.get("/resources/nope/share", token=shop.token), 404,
                    "resource_not_found")
    assert_envelope(api.get(f"/resources/{shop.resource['id']}/share"), 401)


# --- attribution -----------------------------------------------------------------------

def test_a_users_own_code_and_unknown_codes_are_refused(api):
    _, user = api.user_session()
    token = user["access_token"]
    assert_envelope(_attribute(api, token, _code(api, token)), 422, "self_referral")
    assert_envelope(_attribute(api, token, "ZZZZZZZZ"), 404, "referral_code_not_found")
    assert_envelope(_attribute(api, token, "bad"), 400, "validation_error")
    _, referrer = api.user_session()
    code = _code(api, referrer["access_token"])
    assert_envelope(_attribute(api, token, code, visited_at=""), 400, "validation_error")
    assert_envelope(_attribute(api, token, code, visited_at="2026-02-30T10:00:00Z"), 422,
                    "invalid_date")


def test_a_visit_counts_for_thirty_days(api):
    _, referrer = api.user_session()
    _, user = api.user_session()
    code = _code(api, referrer["access_token"])
    old = (datetime.now(UTC) - timedelta(days=31)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert_envelope(_attribute(api, user["access_token"], code, visited_at=old), 422,
                    "referral_expired")
    recent = (datetime.now(UTC) - timedelta(days=29)).strftime("%Y-%m-%dT%H:%M:%SZ")
    reply = _attribute(api, user["access_token"], code.lower(), visited_at=recent)
    assert reply.status == 200, reply.body
    lapses = datetime.fromisoformat(reply.body["attribution"]["expires_at"].replace("Z", "+00:00"))
    assert timedelta(hours=23) < lapses - datetime.now(UTC) < timedelta(hours=25)


def test_the_last_link_visited_wins(api):
    _, first = api.user_session(name="First")
    _, second = api.user_session(name="Second")
    _, user = api.user_session()
    token = user["access_token"]
    earlier = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _attribute(api, token, _code(api, first["access_token"])).status == 200
    # A visit kept from before, sent later, does not displace the newer one
    reply = _attribute(api, token, _code(api, second["access_token"]), visited_at=earlier)
    assert reply.status == 200 and reply.body["attribution"]["referrer_name"] == "First"
    reply = _attribute(api, token, _code(api, second["access_token"]))
    assert reply.body["attribution"]["referrer_name"] == "Second"


# --- rewards ---------------------------------------------------------------------------

def test_the_first_paid_order_of_a_referred_buyer_earns_the_referrer_points(api, shop,
                                                                            referral):
    referrer, referee, buy = referral
    made = buy()
    assert shop.order(made["order"]["id"], token=referee)["status"] == "paid"
    page = api.get("/me/referral", token=referrer).body
    assert (page["referred"], page["points_earned"], page["points_reversed"]) == (1, 500, 0)
    [item] = page["items"]
    assert item["order_id"] == made["order"]["id"] and item["points"] == 500
    assert item["referee_name"] == "F**"
    assert _balance(api, referrer) == 500
    notes = api.get("/me/notifications", token=referrer).body["items"]
    assert [n["type"] for n in notes] == ["referral"]


def _buy_another(api, shop, stripe, pump, creator, admin, token) -> dict:
    """Publish another resource and buy it as `token`'s user."""
    another = publish(api, pump, creator[1]["access_token"], admin[1]["access_token"])
    made = shop.checkout(items=[another["id"]], token=token)
    stripe.pay(made["checkout_session_id"], "succeeded", False)
    post_webhooks(api, take_webhooks(stripe), pump)
    drain(pump)
    assert shop.order(made["order"]["id"], token=token)["status"] == "paid"
    return made


def test_later_orders_of_a_referred_buyer_earn_nothing_more(api, shop, stripe, pump, creator,
                                                            admin, referral):
    referrer, referee, buy = referral
    buy()
    _buy_another(api, shop, stripe, pump, creator, admin, referee)
    assert api.get("/me/referral", token=referrer).body["points_earned"] == 500
    assert _balance(api, referrer) == 500


def test_a_buyer_who_paid_before_earns_the_referrer_nothing(api, shop, stripe, pump, creator,
                                                           admin):
    # Given a buyer with a paid order, who comes by a referral link afterwards
    _, deliveries = shop.pay()
    post_webhooks(api, deliveries, pump)
    _, referrer = api.user_session()
    assert _attribute(api, shop.token, _code(api, referrer["access_token"])).status == 200
    # When they buy again, the order carries the referral but is not their first
    _buy_another(api, shop, stripe, pump, creator, admin, shop.token)
    assert api.get("/me/referral", token=referrer["access_token"]).body["referred"] == 0
    assert _balance(api, referrer["access_token"]) == 0


def test_a_referral_reward_is_reversed_by_a_refund(api, shop, stripe, pump, referral):
    referrer, _, buy = referral
    made = buy()
    assert _balance(api, referrer) == 500
    _refund(api, shop, stripe, pump, made["order"]["id"])
    page = api.get("/me/referral", token=referrer).body
    assert (page["points_earned"], page["points_reversed"]) == (500, 500)
    assert page["items"][0]["reversed"] == 500
    assert _balance(api, referrer) == 0
    entries = api.get("/me/points", token=referrer).body["items"]
    assert [e["reason"] for e in entries] == ["referral_reversed", "referral"]
    types = [n["type"] for n in api.get("/me/notifications", token=referrer).body["items"]]
    assert types == ["referral", "referral"]


def test_a_partial_refund_reverses_the_reward_in_proportion(api, shop, stripe, pump, referral):
    referrer, _, buy = referral
    made = buy()
    paid = made["order"]["total"]["amount"]
    _refund(api, shop, stripe, pump, made["order"]["id"], amount=paid // 2)
    expected = 500 * (paid // 2) // paid
    assert api.get("/me/referral", token=referrer).body["points_reversed"] == expected
    assert _balance(api, referrer) == 500 - expected


def test_a_reward_already_spent_leaves_debt_when_reversed(api, shop, stripe, pump, referral):
    from chalicelib.points import service as points

    referrer, _, buy = referral
    made = buy()
    referrer_id = api.get("/me", token=referrer).body["user"]["id"]
    points.adjust("admin", referrer_id, -500, "spent elsewhere", None)
    _refund(api, shop, stripe, pump, made["order"]["id"])
    account = api.get("/me/points", token=referrer).body
    assert (account["balance"], account["debt"]) == (0, 500)


def test_commission_rewards_are_a_share_of_the_amount_paid(api, shop, stripe, pump,
                                                           commission, referral):
    referrer, _, buy = referral
    made = buy()
    paid = made["order"]["total"]["amount"]
    page = api.get("/me/referral", token=referrer).body
    assert page["terms"] == {"kind": "commission", "points": None, "commission_percent": 10.0}
    currency = made["order"]["total"]["currency"]
    [total] = page["commission"]
    assert total["earned"] == {"amount": paid // 10, "currency": currency}
    assert page["items"][0]["commission"] == {"amount": paid // 10, "currency": currency}
    assert _balance(api, referrer) == 0  # no points in this mode
    _refund(api, shop, stripe, pump, made["order"]["id"])
    [total] = api.get("/me/referral", token=referrer).body["commission"]
    assert total["reversed"]["amount"] == paid // 10 and total["net"]["amount"] == 0


def test_a_loop_is_refused(api, shop, referral):
    referrer, referee, buy = referral
    buy()
    # The referee, referred by the referrer, cannot refer the referrer back
    assert_envelope(_attribute(api, referrer, _code(api, referee)), 422, "referral_loop")


def test_replayed_and_reordered_events_reward_and_reverse_once(api):
    from chalicelib.referrals import rewards

    referrer_user, referrer = api.user_session()
    referee, _ = api.user_session()
    referrer_id = referrer_user["id"]
    order_id = uuid.uuid4().hex
    # A refund of half arrives before the payment's reward...
    assert not rewards.reverse(referee["id"], order_id, 1000, 500)
    # ...then the payment, twice
    assert rewards.reward_first_order(referrer_id, referee["id"], order_id, "cny", 1000,
                                      db.now_iso())
    assert not rewards.reward_first_order(referrer_id, referee["id"], order_id, "cny", 1000,
                                          db.now_iso())
    # ...then the refunds again, an older one late
    assert not rewards.reverse(referee["id"], order_id, 1000, 500)
    assert not rewards.reverse(referee["id"], order_id, 1000, 200)
    page = api.get("/me/referral", token=referrer["access_token"]).body
    assert (page["referred"], page["points_earned"], page["points_reversed"]) == (1, 500, 250)


def test_a_self_referral_never_rewards(api):
    from chalicelib.referrals import rewards

    user, pair = api.user_session()
    assert not rewards.reward_first_order(user["id"], user["id"], uuid.uuid4().hex, "cny",
                                          1000, db.now_iso())
    assert api.get("/me/referral", token=pair["access_token"]).body["referred"] == 0
