"""Creators' earnings, top lists and monthly statements, and every report as CSV: the sums
equal the paid and refunded orders (per creator too, a cart of two creators' resources with
a partial refund), replayed events count nothing twice, a creator sees only their own, and
the CSV says what the JSON says."""
from __future__ import annotations

import csv
import io

from chalicelib import db, outbox
from chalicelib.analytics import revenue
from tests.support import assert_envelope, post_webhooks, publish, take_webhooks

BOM = b"\xef\xbb\xbf"


def _csv(api, path: str, token: str) -> tuple[dict, list[dict]]:
    """GET `path` as CSV: the headers and the rows (parsed with the csv module, BOM off)."""
    reply = api.client.http.get(path, headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 200, reply.body
    body = reply.body if isinstance(reply.body, bytes) else reply.body.encode()
    assert body.startswith(BOM)
    headers = {k.lower(): v for k, v in reply.headers.items()}
    return headers, list(csv.DictReader(io.StringIO(body[len(BOM):].decode())))


def _two_creators_cart(api, shop, pump, stripe):
    """A second creator's resource (29.00) bought with the shop's (49.00) in one order of
    78.00, then 10.00 of it refunded."""
    second, pair = api.creator_session(name="第二位作者")
    other = publish(api, pump, pair["access_token"], shop.admin_token, title="第二本书",
                    price={"amount": 2900, "currency": "cny"})
    made = shop.checkout(items=[shop.resource["id"], other["id"]])
    stripe.pay(made["checkout_session_id"], "succeeded", False)
    post_webhooks(api, take_webhooks(stripe), pump)
    refund = api.post(f"/admin/orders/{made['order']['id']}/refund",
                      {"amount": 1000, "reason": "requested_by_customer"},
                      token=shop.admin_token)
    assert refund.status == 202, refund.body
    post_webhooks(api, take_webhooks(stripe), pump)
    return second, pair["access_token"], other


def _day_row(api, path, token):
    today = db.now_iso()[:10]
    reply = api.get(f"{path}?from={today}&to={today}&currency=cny", token=token)
    assert reply.status == 200, reply.body
    [row] = reply.body["rows"]
    return row


def test_a_two_creator_cart_with_a_partial_refund_splits_between_its_creators(
        api, shop, pump, stripe):
    # Given one order of two creators' resources (49.00 + 29.00), 10.00 of it refunded
    second, second_token, other = _two_creators_cart(api, shop, pump, stripe)
    # Then the platform counts the order and the refund
    platform = _day_row(api, "/admin/reports/revenue", shop.admin_token)
    assert (platform["gross"], platform["refunds"], platform["orders"]) == (7800, 1000, 1)
    # And each creator earns their lines' share, the refund split the same way (largest
    # remainder: 628.2 and 371.8), the 10 % fee on what stays, rounded half up
    first = _day_row(api, "/creator/reports/earnings", shop.creator_token)
    mine = _day_row(api, "/creator/reports/earnings", second_token)
    assert (first["gross"], first["refunds"], first["fee"], first["net"], first["orders"]) == \
        (4900, 628, 427, 3845, 1)
    assert (mine["gross"], mine["refunds"], mine["fee"], mine["net"], mine["orders"]) == \
        (2900, 372, 253, 2275, 1)
    # And the creators' sums are the order's
    assert first["gross"] + mine["gross"] == platform["gross"]
    assert first["refunds"] + mine["refunds"] == platform["refunds"]


def test_top_lists_and_statements_name_what_sold_and_show_only_the_creators_own(
        api, shop, pump, stripe):
    # Given the two-creator order, and the shop's resource bought once more alone
    second, second_token, other = _two_creators_cart(api, shop, pump, stripe)
    _, pair = api.user_session()
    _, deliveries = shop.pay(token=pair["access_token"])
    post_webhooks(api, deliveries, pump)
    month = db.now_iso()[:7]
    # When an admin asks for the month's top resources and creators
    top = api.get(f"/admin/reports/top?from={month}&to={month}&currency=cny&kind=resources",
                  token=shop.admin_token)
    assert top.status == 200, top.body
    # Then the shop's resource leads (two orders), with titles from the catalog
    assert [(i["rank"], i["id"], i["name"], i["gross"], i["orders"], i["refunds"])
            for i in top.body["items"]] == [
        (1, shop.resource["id"], shop.resource["title"], 9800, 2, 628),
        (2, other["id"], "第二本书", 2900, 1, 372)]
    creators = api.get(f"/admin/reports/top?from={month}&to={month}&currency=cny"
                       "&kind=creators&limit=1", token=shop.admin_token).body["items"]
    assert [(i["gross"], i["orders"]) for i in creators] == [(9800, 2)]
    assert creators[0]["name"]
    # And each creator's own top list and statement hold their resources only
    [own] = api.get(f"/creator/reports/top?from={month}&to={month}&currency=cny",
                    token=second_token).body["items"]
    assert (own["id"], own["name"], own["gross"]) == (other["id"], "第二本书", 2900)
    statement = api.get(f"/creator/statements/{month}", token=second_token)
    assert statement.status == 200, statement.body
    body = statement.body
    assert body["month"] == month and body["from"] == f"{month}-01"
    assert body["to"][:7] == month
    assert body["totals"] == [{"currency": "cny", "gross": 2900, "refunds": 372, "fee": 253,
                               "net": 2275, "orders": 1}]
    assert [(line["resource_id"], line["title"], line["gross"], line["refunds"])
            for line in body["lines"]] == [(other["id"], "第二本书", 2900, 372)]
    first = api.get(f"/creator/statements/{month}", token=shop.creator_token).body
    assert [t["gross"] for t in first["totals"]] == [9800]
    assert {line["resource_id"] for line in first["lines"]} == {shop.resource["id"]}
    # And the admin's reports refuse a creator
    for path in (f"/admin/reports/top?from={month}&to={month}&currency=cny",
                 f"/admin/reports/revenue?from={month}-01&to={month}-02&currency=cny"):
        assert_envelope(api.get(path, token=second_token), 403)


def test_every_report_as_csv_says_what_its_json_says(api, shop, pump, stripe):
    # Given the two-creator order with its refund
    second, second_token, other = _two_creators_cart(api, shop, pump, stripe)
    today, month = db.now_iso()[:10], db.now_iso()[:7]
    first_day = f"{month}-01"
    # When the revenue report is asked for as CSV
    path = f"/admin/reports/revenue?from={first_day}&to={today}&currency=cny"
    headers, rows = _csv(api, path + "&format=csv", shop.admin_token)
    # Then it is a UTF-8 attachment named after the report and its range, a row per day
    assert headers["content-type"] == "text/csv; charset=utf-8"
    assert headers["content-disposition"] == \
        f'attachment; filename="revenue-{first_day}-{today}.csv"'
    report = api.get(path, token=shop.admin_token).body
    assert [{k: r[k] for k in ("period", "gross", "refunds", "net", "orders")} for r in rows] \
        == [{k: str(v) for k, v in row.items()} for row in report["rows"]]
    assert {r["currency"] for r in rows} == {"cny"}
    # And the earnings, the top list and the statement match their JSON too
    path = f"/creator/reports/earnings?from={first_day}&to={today}&currency=cny" \
           "&granularity=month"
    [row] = _csv(api, path + "&format=csv", second_token)[1]
    [json_row] = api.get(path, token=second_token).body["rows"]
    assert row == {"currency": "cny", "granularity": "month", "from": first_day, "to": today,
                   **{k: str(v) for k, v in json_row.items()}}
    path = f"/admin/reports/top?from={month}&to={month}&currency=cny"
    headers, rows = _csv(api, path + "&format=csv", shop.admin_token)
    assert headers["content-disposition"] == f'attachment; filename="top-{month}-{month}.csv"'
    assert [(r["rank"], r["id"], r["name"], r["gross"]) for r in rows] == \
        [(str(i["rank"]), i["id"], i["name"], str(i["gross"]))
         for i in api.get(path, token=shop.admin_token).body["items"]]
    assert rows[1]["name"] == "第二本书"
    headers, rows = _csv(api, f"/creator/statements/{month}?format=csv", second_token)
    [total, line] = rows
    assert (total["section"], total["currency"], total["gross"], total["fee"], total["net"]) \
        == ("totals", "cny", "2900", "253", "2275")
    assert (line["section"], line["resource_id"], line["title"], line["refunds"]) == \
        ("lines", other["id"], "第二本书", "372")


def _paid(event_id: str, order: str, at: str, lines: list[tuple[str, str, int]]):
    amount = sum(unit for _, _, unit in lines)
    return outbox.DomainEvent(event_id=event_id, type="order.paid", at=at, payload={
        "order_id": order, "user_id": "u1", "currency": "cny", "amount": amount,
        "lines": [{"resource_id": r, "creator_id": c, "unit_amount": unit}
                  for r, c, unit in lines]})


def _refunded(event_id: str, order: str, at: str, paid: int, total: int, lines=None):
    payload = {"order_id": order, "user_id": "u1", "currency": "cny", "amount_paid": paid,
               "amount_refunded": total}
    if lines is not None:
        payload["lines"] = lines
    return outbox.DomainEvent(event_id=event_id, type="order.refunded", at=at,
                              payload=payload)


def test_replayed_paid_and_refunded_events_count_nothing_twice_for_creators(aws):
    # Given a paid order of two creators' lines, each event delivered three times, and
    # refunds (the refund events without their lines: the stored ones split them) late too
    paid = _paid("p1", "o1", "2026-10-30T10:00:00Z", [("r1", "c1", 2000), ("r2", "c2", 1000)])
    for _ in range(3):
        revenue.on_order_paid(paid)
    refunds = [_refunded(f"f{n}", "o1", "2026-11-02T10:00:00Z", 3000, total)
               for n, total in ((1, 300), (2, 900), (3, 300))]
    for event in refunds * 3:
        revenue.on_order_refunded(event)
    # Then each creator's earnings count the sale and the 9.00 refunded once
    c1 = revenue.earnings("c1", "cny", "2026-10-01", "2026-11-30", "month").rows
    c2 = revenue.earnings("c2", "cny", "2026-10-01", "2026-11-30", "month").rows
    assert [(r.period, r.gross, r.refunds, r.fee, r.orders) for r in c1] == [
        ("2026-10", 2000, 0, 200, 1), ("2026-11", 0, 600, -60, 0)]
    assert [(r.period, r.gross, r.refunds, r.fee) for r in c2] == [
        ("2026-10", 1000, 0, 100), ("2026-11", 0, 300, -30)]
    # And the leaderboards and statements once too
    [top] = revenue.top("platform", "creators", "cny", "2026-10", "2026-10", 1).items
    assert (top.id, top.gross, top.orders) == ("c1", 2000, 1)
    november = revenue.statement("c1", "2026-11", "2026-12-03T00:00:00Z")
    assert [(t.gross, t.refunds, t.fee, t.net) for t in november.totals] == [(0, 600, -60, -540)]
    assert [(line.resource_id, line.refunds) for line in november.lines] == [("r1", 600)]
    assert (november.date_from, november.date_to) == ("2026-11-01", "2026-11-30")


def test_a_sale_keeps_the_fee_rate_it_was_counted_at(aws, monkeypatch):
    # Given a sale counted at 10 %, then the rate raised to 20 %
    from chalicelib.config import settings

    revenue.on_order_paid(_paid("p2", "o2", "2026-09-10T10:00:00Z", [("r9", "c9", 1005)]))
    monkeypatch.setenv("PLATFORM_FEE_BPS", "2000")
    settings.cache_clear()
    try:
        # When it is refunded in full, and another sale is made
        revenue.on_order_refunded(_refunded("f9", "o2", "2026-09-11T10:00:00Z", 1005, 1005))
        revenue.on_order_paid(_paid("p3", "o3", "2026-09-12T10:00:00Z", [("r9", "c9", 1000)]))
    finally:
        monkeypatch.delenv("PLATFORM_FEE_BPS")
        settings.cache_clear()
    # Then the refund gives back the fee at 10 % (100.5 rounded half up), the new sale 20 %
    rows = revenue.earnings("c9", "cny", "2026-09-10", "2026-09-12", "day").rows
    assert [(r.gross, r.refunds, r.fee, r.net) for r in rows] == [
        (1005, 0, 101, 904), (0, 1005, -101, -904), (1000, 0, 200, 800)]


def test_malformed_or_out_of_range_reports_are_refused(api, shop):
    creator = shop.creator_token
    assert_envelope(api.get("/creator/reports/earnings?from=2026-11-05&to=2026-11-01"
                            "&currency=cny", token=creator), 422, "invalid_range")
    assert_envelope(api.get("/creator/reports/earnings?from=2026-02-30&to=2026-03-01"
                            "&currency=cny", token=creator), 422, "invalid_date")
    assert_envelope(api.get("/creator/reports/top?from=2026-05&to=2026-04&currency=cny",
                            token=creator), 422, "invalid_range")
    assert_envelope(api.get("/admin/reports/top?from=2024-01&to=2026-01&currency=cny",
                            token=shop.admin_token), 422, "invalid_range")
    assert_envelope(api.get("/creator/reports/top?from=2026-5&to=2026-06&currency=cny",
                            token=creator), 400)
    for month in ("2026-13", "2026-1", "november", "2026-11-01"):
        assert_envelope(api.get(f"/creator/statements/{month}", token=creator), 422,
                        "invalid_month")
    next_year = str(int(db.now_iso()[:4]) + 1)
    assert_envelope(api.get(f"/creator/statements/{next_year}-01", token=creator), 422,
                    "invalid_month")
    assert_envelope(api.get("/admin/reports/revenue?from=2026-11-01&to=2026-11-02"
                            "&currency=cny&format=xml", token=shop.admin_token), 400)
    # And a buyer is no creator
    _, pair = api.user_session()
    assert_envelope(api.get("/creator/statements/2026-11", token=pair["access_token"]), 403)
