"""Memberships through Stripe Billing, end to end on the stand-in: plans made and synced by an
admin; a subscription bought, renewed, failing, lapsing and bought again, every step a
signed webhook through the payments queue; members-only access and the member discount
following it; purchases never touched."""
from __future__ import annotations

import pytest

from tests.support import assert_envelope, drain, post_webhooks, publish, take_webhooks

PLAN = {"plan_id": "gold", "name": "黄金会员", "level": 1, "discount_percent": 10,
        "monthly_points": 100, "prices": {"month": {"cny": 3000}, "year": {"cny": 30000}}}


@pytest.fixture
def club(api, shop, pump, stripe):
    """A synced plan, a members-only resource, and helpers to subscribe and follow it."""
    assert api.post("/admin/plans", PLAN, token=shop.admin_token).status == 201
    synced = api.post("/admin/plans/gold/sync", token=shop.admin_token)
    assert synced.status == 200, synced.body
    assert synced.body["plan"]["synced"] is True
    exclusive = publish(api, pump, shop.creator_token, shop.admin_token, title="会员专享",
                        members_only=True)

    class Club:
        resource = exclusive

    c = Club()

    def subscribe(interval="month"):
        made = api.post("/checkout", {"plan_id": "gold", "interval": interval},
                        token=shop.token)
        assert made.status == 201, made.body
        stripe.pay(made.body["checkout_session_id"])
        post_webhooks(api, take_webhooks(stripe), pump)
        return membership()

    def membership():
        return api.get("/me/membership", token=shop.token).body["membership"]

    def download():
        return api.post(f"/me/library/{exclusive['id']}/download", token=shop.token)

    def deliver():
        post_webhooks(api, take_webhooks(stripe), pump)
        return membership()

    c.subscribe, c.membership, c.download, c.deliver = subscribe, membership, download, deliver
    return c


def test_admins_make_and_sync_plans_and_buyers_list_them(api, shop, club):
    plans = api.get("/membership/plans", token=shop.token).body["items"]
    assert [(p["id"], p["level"], p["synced"]) for p in plans] == [("gold", 1, True)]
    assert_envelope(api.post("/admin/plans", PLAN, token=shop.admin_token), 409, "plan_exists")
    assert_envelope(api.post("/admin/plans", PLAN, token=shop.token), 403)
    changed = api.patch("/admin/plans/gold", {"discount_percent": 15},
                        token=shop.admin_token)
    assert changed.body["plan"]["discount_percent"] == 15


def test_a_subscription_session_is_in_subscription_mode_without_alipay(api, shop, club,
                                                                       stripe):
    made = api.post("/checkout", {"plan_id": "gold", "interval": "year"}, token=shop.token)
    assert made.status == 201, made.body
    assert made.body["order"] is None and made.body["mode"] == "subscription"
    session = stripe.get(made.body["checkout_session_id"])
    assert session["mode"] == "subscription"
    assert session["payment_method_types"] == ["card"]
    assert_envelope(api.post("/checkout", {"plan_id": "gold"}, token=shop.token), 422,
                    "interval_required")
    assert_envelope(api.post("/checkout", {"plan_id": "nope", "interval": "month"},
                             token=shop.token), 404, "plan_not_found")


def test_a_member_downloads_members_only_resources_until_the_membership_lapses(
        api, shop, club, stripe):
    # Before: no membership, no access
    assert api.get("/me/membership", token=shop.token).body["membership"] is None
    assert_envelope(club.download(), 404, "not_entitled")
    # Given a paid subscription
    m = club.subscribe()
    assert (m["plan_id"], m["status"], m["active"]) == ("gold", "active", True)
    first_end = m["current_period_end"]
    assert club.download().status == 200
    library = api.get("/me/library?source=membership", token=shop.token).body["items"]
    assert [(i["resource"]["id"], i["source"]) for i in library] == \
        [(club.resource["id"], "membership")]
    # Each paid period brings the plan's bonus points, once per invoice
    assert api.get("/me/points", token=shop.token).body["balance"] == 100
    # A renewal extends the period
    stripe.renew(m_subscription(stripe))
    renewed = club.deliver()
    assert renewed["current_period_end"] > first_end and renewed["active"]
    assert api.get("/me/points", token=shop.token).body["balance"] == 200
    # A failed renewal: past due, access kept through the grace
    stripe.fail_renewal(m_subscription(stripe))
    failing = club.deliver()
    assert (failing["status"], failing["active"]) == ("past_due", True)
    assert club.download().status == 200
    # Stripe gives up: the membership ends, and so does access
    stripe.lapse(m_subscription(stripe))
    ended = club.deliver()
    assert (ended["status"], ended["active"]) == ("canceled", False)
    assert_envelope(club.download(), 404, "not_entitled")
    assert api.get("/me/library?source=membership", token=shop.token).body["items"] == []
    # Subscribing again brings it back
    again = club.subscribe()
    assert again["active"] and club.download().status == 200


def m_subscription(stripe) -> str:
    subs = [e["data"]["object"]["id"] for e in stripe.events
            if e["type"] == "customer.subscription.created"]
    return subs[-1]


def test_a_lapse_never_touches_purchases(api, shop, club, stripe, pump):
    _, deliveries = shop.pay()
    post_webhooks(api, deliveries, pump)
    club.subscribe()
    stripe.fail_renewal(m_subscription(stripe))
    stripe.lapse(m_subscription(stripe))
    club.deliver()
    assert shop.library() == [shop.resource["id"]]
    assert shop.download().status == 200


def test_members_get_their_discount_and_cannot_buy_what_membership_gives(api, shop, club):
    before = api.post("/checkout/quote", {"items": [{"resource_id": shop.resource["id"]}]},
                      token=shop.token).body
    assert before["member_discount"]["amount"] == 0
    club.subscribe()
    quote = api.post("/checkout/quote", {"items": [{"resource_id": shop.resource["id"]}]},
                     token=shop.token).body
    assert (quote["member_discount"]["amount"], quote["total"]["amount"]) == (490, 4410)
    assert_envelope(api.post("/checkout", {"items": [{"resource_id": club.resource["id"]}]},
                             token=shop.token), 409, "included_in_membership")


def test_cancel_at_period_end_then_resume(api, shop, club, stripe):
    club.subscribe()
    cancelled = api.post("/me/membership/cancel", token=shop.token)
    assert cancelled.status == 200, cancelled.body
    assert cancelled.body["membership"]["cancel_at_period_end"] is True
    assert cancelled.body["membership"]["active"] is True  # until the period ends
    resumed = api.post("/me/membership/resume", token=shop.token).body["membership"]
    assert resumed["cancel_at_period_end"] is False
    # Cancelled again, the period's end ends it
    api.post("/me/membership/cancel", token=shop.token)
    stripe.renew(m_subscription(stripe))
    assert club.deliver()["status"] == "canceled"


def test_changing_plan_moves_the_membership_now(api, shop, club, stripe, pump):
    premium = {**PLAN, "plan_id": "platinum", "name": "白金会员", "level": 2,
               "discount_percent": 20, "prices": {"month": {"cny": 6800}}}
    assert api.post("/admin/plans", premium, token=shop.admin_token).status == 201
    api.post("/admin/plans/platinum/sync", token=shop.admin_token)
    top = publish(api, pump, shop.creator_token, shop.admin_token, title="白金专享",
                  members_only=True, member_level=2)
    assert top["member_level"] == 2
    club.subscribe()
    # A level-1 plan does not open a level-2 resource
    assert_envelope(api.post(f"/me/library/{top['id']}/download", token=shop.token), 404,
                    "not_entitled")
    assert [i["resource"]["id"] for i in api.get("/me/library?source=membership",
                                                 token=shop.token).body["items"]] == \
        [club.resource["id"]]
    changed = api.post("/me/membership/change", {"plan_id": "platinum", "interval": "month"},
                       token=shop.token)
    assert changed.status == 200, changed.body
    assert (changed.body["membership"]["plan_id"],
            changed.body["membership"]["level"]) == ("platinum", 2)
    assert club.deliver()["plan_id"] == "platinum"
    assert api.post(f"/me/library/{top['id']}/download", token=shop.token).status == 200


def test_subscription_events_in_any_order_end_in_stripes_state(api, shop, club, stripe, pump):
    made = api.post("/checkout", {"plan_id": "gold", "interval": "month"}, token=shop.token)
    stripe.pay(made.body["checkout_session_id"])
    deliveries = take_webhooks(stripe)
    post_webhooks(api, list(reversed(deliveries)) + deliveries, pump)
    m = club.membership()
    assert (m["status"], m["active"]) == ("active", True)


def test_non_members_cannot_cancel_resume_or_change(api, shop, club):
    for path, body in (("/me/membership/cancel", None), ("/me/membership/resume", None),
                       ("/me/membership/change", {"plan_id": "gold", "interval": "month"})):
        assert_envelope(api.post(path, body, token=shop.token), 404, "not_member")


def test_the_memberships_report_follows_members_and_mrr(api, shop, club, stripe, pump):
    from chalicelib import db

    today = db.now_iso()[:10]

    def report(currency="cny"):
        reply = api.get(f"/admin/reports/memberships?from={today}&to={today}"
                        f"&currency={currency}", token=shop.admin_token)
        assert reply.status == 200, reply.body
        return reply.body

    # Given a yearly member: one active member, MRR a twelfth of the year's price
    club.subscribe("year")
    drain(pump)
    r = report()
    assert (r["active_at_end"], r["mrr_at_end"], r["started"]) == (1, 2500, 1)
    # A renewal is counted, and neither adds a member nor changes MRR
    stripe.renew(m_subscription(stripe))
    club.deliver()
    drain(pump)
    r = report()
    assert (r["active_at_end"], r["mrr_at_end"], r["rows"][0]["renewed"]) == (1, 2500, 1)
    # A failed renewal still counts the member
    stripe.fail_renewal(m_subscription(stripe))
    club.deliver()
    drain(pump)
    assert report()["active_at_end"] == 1
    # When Stripe ends it: no member, no MRR, one cancellation; churn over a start of 0 is 0
    stripe.lapse(m_subscription(stripe))
    club.deliver()
    drain(pump)
    r = report()
    assert (r["active_at_end"], r["mrr_at_end"], r["cancelled"], r["churn_rate"]) == \
        (0, 0, 1, 0.0)
    # Subscribing again monthly counts again, at the month's price
    club.subscribe("month")
    drain(pump)
    r = report()
    assert (r["active_at_end"], r["mrr_at_end"], r["started"]) == (1, 3000, 2)
    assert report("usd")["mrr_at_end"] == 0
