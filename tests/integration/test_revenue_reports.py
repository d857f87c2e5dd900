"""Revenue counters from the orders' domain events, and the admin revenue report: the report's
sums equal the paid and refunded orders, and replayed events count nothing twice."""
from __future__ import annotations

from chalicelib import db, outbox
from chalicelib.analytics import revenue
from tests.support import assert_envelope, post_webhooks, take_webhooks


def _report(api, shop, granularity="day", currency="cny", first=None, last=None):
    today = db.now_iso()[:10]
    return api.get(f"/admin/reports/revenue?from={first or today}&to={last or today}"
                   f"&currency={currency}&granularity={granularity}", token=shop.admin_token)


def test_paid_and_refunded_orders_make_the_report(api, shop, stripe, pump):
    # Given two paid orders, one of them refunded in part
    _, deliveries = shop.pay()
    post_webhooks(api, deliveries, pump)
    other, pair = api.user_session()
    made, deliveries = shop.pay(token=pair["access_token"])
    post_webhooks(api, deliveries, pump)
    refund = api.post(f"/admin/orders/{made['order']['id']}/refund",
                      {"amount": 1000, "reason": "requested_by_customer"},
                      token=shop.admin_token)
    assert refund.status == 202, refund.body
    post_webhooks(api, take_webhooks(stripe), pump)
    # Then the day's row sums them
    reply = _report(api, shop)
    assert reply.status == 200, reply.body
    [row] = reply.body["rows"]
    assert (row["gross"], row["refunds"], row["net"], row["orders"]) == \
        (9800, 1000, 8800, 2)
    # And by month, the same sums under the month
    [month] = _report(api, shop, "month").body["rows"]
    assert month["period"] == db.now_iso()[:7] and month["net"] == 8800
    # Another currency has nothing
    assert all(r["gross"] == 0 for r in _report(api, shop, currency="usd").body["rows"])


def test_replayed_events_count_nothing_twice(aws):
    paid = outbox.DomainEvent(event_id="e-paid", type="order.paid", at="2026-11-02T10:00:00Z",
                              payload={"order_id": "o1", "user_id": "u1", "currency": "cny",
                                       "amount": 3000, "lines": [
                                           {"resource_id": "r1", "creator_id": "c1",
                                            "unit_amount": 2000},
                                           {"resource_id": "r2", "creator_id": "c2",
                                            "unit_amount": 1000}]})
    for _ in range(3):
        revenue.on_order_paid(paid)
    refunds = [outbox.DomainEvent(event_id=f"e-ref-{n}", type="order.refunded",
                                  at="2026-11-03T10:00:00Z",
                                  payload={"order_id": "o1", "user_id": "u1", "currency": "cny",
                                           "amount_paid": 3000, "amount_refunded": total})
               for n, total in ((1, 500), (2, 1200), (3, 500))]  # the last one late
    for event in refunds + refunds:
        revenue.on_order_refunded(event)
    rows = revenue.revenue("platform", "cny", "2026-11-01", "2026-11-07", "day")
    by_day = {r["period"]: r for r in rows}
    assert (by_day["2026-11-02"]["gross"], by_day["2026-11-02"]["orders"]) == (3000, 1)
    assert by_day["2026-11-03"]["refunds"] == 1200
    [week] = revenue.revenue("platform", "cny", "2026-11-02", "2026-11-08", "week")
    assert (week["period"], week["net"]) == ("2026-11-02", 1800)
    # Each creator's gross is their lines' share of what was paid
    assert revenue.revenue("creator#c1", "cny", "2026-11-02", "2026-11-02",
                           "day")[0]["gross"] == 2000
    assert revenue.revenue("creator#c2", "cny", "2026-11-02", "2026-11-02",
                           "day")[0]["gross"] == 1000


def test_a_backwards_or_malformed_range_is_refused(api, shop):
    assert_envelope(_report(api, shop, first="2026-11-05", last="2026-11-01"), 422,
                    "invalid_range")
    assert_envelope(_report(api, shop, first="2026-02-30", last="2026-03-01"), 422,
                    "invalid_date")
    assert_envelope(_report(api, shop, first="yesterday"), 400)
    _, pair = api.user_session()
    assert_envelope(api.get("/admin/reports/revenue?from=2026-11-01&to=2026-11-02"
                            "&currency=cny", token=pair["access_token"]), 403)
