"""The funnel, users and memberships reports, from what the requests and the domain events
tell the rollup: their figures equal what happened, and every report comes as CSV."""
from __future__ import annotations

import csv
import io

from chalicelib import db
from chalicelib.analytics.rollup import handle
from tests.support import assert_envelope, drain, post_webhooks

BOM = "\ufeff".encode()


def _today() -> str:
    return db.now_iso()[:10]


def test_the_funnel_counts_views_checkouts_and_paid_orders(api, shop, pump):
    resource_id = shop.resource["id"]
    # Given four views of the public page from three browsers (a visitor is known by a hash
    # of the address and the browser: the page is public, so no token is read)
    other, pair = api.user_session()
    for browser in ("Firefox", "Firefox", "Safari", "微信"):
        reply = api.get(f"/resources/{resource_id}", headers={"User-Agent": browser})
        assert reply.status == 200
    # And two checkouts, one of them paid
    shop.checkout(token=pair["access_token"])
    _, deliveries = shop.pay()
    post_webhooks(api, deliveries, pump)
    drain(pump)
    # When the admin asks for the resource's funnel and the platform's
    today = _today()
    for scope in (f"&resource_id={resource_id}", ""):
        reply = api.get(f"/admin/reports/funnel?from={today}&to={today}{scope}",
                        token=shop.admin_token)
        assert reply.status == 200, reply.body
        r = reply.body
        # Then it has what happened, and the conversion between the steps
        assert (r["views"], r["unique_viewers"], r["checkouts"], r["paid"]) == (4, 3, 2, 1)
        assert (r["view_to_checkout"], r["checkout_to_paid"], r["view_to_paid"]) == \
            (0.5, 0.5, 0.25)
        assert [(row["views"], row["checkouts"], row["paid"]) for row in r["rows"]] == \
            [(4, 2, 1)]


def test_the_users_report_counts_sign_ups_searches_and_downloads(api, shop, pump, stripe):
    # Given a paid purchase downloaded twice and three searches (one a next page)
    _, deliveries = shop.pay()
    post_webhooks(api, deliveries, pump)
    assert shop.download().status == 200 and shop.download().status == 200
    for q in ("Python", "数据"):
        assert api.get(f"/search?q={q}").status == 200
    drain(pump)
    today = _today()
    reply = api.get(f"/admin/reports/users?from={today}&to={today}&granularity=month",
                    token=shop.admin_token)
    assert reply.status == 200, reply.body
    # Then: the accounts made by the fixtures (creator, admin, buyer), the searches, the
    # downloads, in the month's row
    [row] = reply.body["rows"]
    assert row == {"period": today[:7], "new_users": reply.body["new_users"],
                   "searches": 2, "downloads": 2}
    assert reply.body["new_users"] == 3


def test_gauges_and_churn_come_from_the_membership_events(aws):
    # Given three members who joined before the range, and one who left within it
    def event(n: int, kind: str, day: str, payload: dict) -> dict:
        import msgspec

        from chalicelib import outbox

        body = msgspec.json.encode(outbox.DomainEvent(
            event_id=f"e{n}", type=kind, at=f"{day}T10:00:00+00:00", payload=payload))
        return {"messageId": f"m{n}", "body": body.decode()}

    joined = [event(n, "membership.standing", "2026-10-30",
                    {"user_id": f"u{n}", "active_delta": 1, "mrr_delta": {"cny": 3000}})
              for n in range(3)]
    left = [event(10, "membership.cancelled", "2026-11-03", {"user_id": "u0"}),
            event(11, "membership.standing", "2026-11-03",
                  {"user_id": "u0", "active_delta": -1, "mrr_delta": {"cny": -3000}})]
    assert handle(joined + left) == {"batchItemFailures": []}
    assert handle(left) == {"batchItemFailures": []}  # a redelivery counts nothing
    from chalicelib.analytics import reports

    r = reports.memberships("2026-11-01", "2026-11-07", "cny", "day")
    assert (r.active_at_start, r.active_at_end, r.mrr_at_end, r.cancelled) == (3, 2, 6000, 1)
    assert r.churn_rate == round(1 / 3, 4)
    assert [row.active for row in r.rows] == [3, 3, 2, 2, 2, 2, 2]


def test_behaviour_reports_come_as_csv_and_refuse_creators(api, shop):
    today = _today()
    for name in ("funnel", "users"):
        path = f"/admin/reports/{name}?from={today}&to={today}"
        reply = api.client.http.get(path + "&format=csv",
                                    headers={"Authorization": f"Bearer {shop.admin_token}"})
        assert reply.status_code == 200
        assert reply.body.startswith(BOM)
        [row] = list(csv.DictReader(io.StringIO(reply.body[len(BOM):].decode())))
        assert row["period"] == today and row["from"] == today
        assert_envelope(api.get(path, token=shop.creator_token), 403)
    reply = api.get(f"/admin/reports/funnel?from={today}&to=2020-01-01", token=shop.admin_token)
    assert_envelope(reply, 422, "invalid_range")


def test_the_local_dashboard_shows_the_business_figures_of_the_rollups(api, shop, pump):
    # Given a view and a paid order today
    assert api.get(f"/resources/{shop.resource['id']}").status == 200
    _, deliveries = shop.pay()
    post_webhooks(api, deliveries, pump)
    drain(pump)
    # When the local dashboard is opened
    reply = api.get("/_local/dashboard?days=3")
    assert reply.status == 200, reply.body
    # Then today's row has them, and the days before are empty
    *before, today = reply.body["days"]
    assert today["day"] == _today() and len(before) == 2
    assert (today["gross"], today["orders"], today["views"], today["checkouts"],
            today["paid"], today["signups"]) == (shop.resource["price"]["amount"], 1, 1, 1, 1, 3)
    assert reply.body["conversion"] == 1.0
    assert all(day["gross"] == 0 and day["views"] == 0 for day in before)
    assert_envelope(api.get("/_local/dashboard?days=0"), 400)
