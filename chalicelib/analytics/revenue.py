"""Revenue counters, from the payments context's domain events: per day and currency, gross
(paid orders' amounts), refunds, paid orders and the platform's fee, for the platform and
for each creator; and leaderboards per month (what each resource and creator sold).
Each event applies once (an `APPLIED#` marker in the same transaction); a refund adds what
its order had not yet counted (the event carries the refunded total, and the order's counted
total is kept beside the counters), so a redelivered or late event adds nothing.

Counters: REV#<scope>#<metric>#<currency> / <yyyy-mm-dd>, scope `platform` or
`creator#<id>`, metric gross, refunds, orders or fee; a report reads one counter family
(scope, metric, currency) with one Query.

An order's amount is split over its lines in proportion to their unit amounts (largest
remainder); a creator's part is the sum of their lines. A refund is split the same way (the
split of the refunded total so far, less the split of what was counted before).

The platform fee is counted at sale time, at the rate then configured (`PLATFORM_FEE_BPS`,
kept with the order), per creator and order: round half up of (their part − their part of
the refunds) × rate; a refund adds the (negative) change of that fee on the refund's day.
So a new rate applies to new sales only and never rewrites a past statement.

Leaderboards: TOP#<scope>#<kind> / <yyyy-mm>#<currency>, kind `resources` (scope platform or
a creator) or `creators` (platform): a number attribute per id, `g:<id>` (gross), `o:<id>`
(orders with it) and `r:<id>` (refunds), ADDed in the same transactions, and on a creator's
items the month's totals (`gross`, `refunds`, `fee`, `orders`). A top list over months reads
one item per month (one BatchGetItem); a creator's statement reads the month's items of
every currency with one Query."""
from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.operand import Path
from pynamodb.models import Model

from chalicelib import db, outbox
from chalicelib.analytics import periods
from chalicelib.analytics.schemas import (
    EarningsReport,
    EarningsRow,
    RevenueReport,
    RevenueRow,
    Statement,
    StatementLine,
    StatementTotal,
    TopItem,
    TopReport,
)
from chalicelib.config import settings
from chalicelib.errors import Refused

METRICS = ("gross", "refunds", "orders")
EARNINGS = ("gross", "refunds", "fee", "orders")
TOTALS = ("gross", "refunds", "fee", "orders")  # a creator's month totals on its leaderboard


class RevenueCounter(Model):
    Meta = db.table_meta("stats_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    value = NumberAttribute(default=0)

    @staticmethod
    def key(scope: str, metric: str, currency: str) -> str:
        return f"REV#{scope}#{metric}#{currency}"


class Leaderboard(Model):
    """TOP#<scope>#<kind> / <yyyy-mm>#<currency>: its attributes are named by ids (`g:<id>`,
    `o:<id>`, `r:<id>`), so it is written through paths and read raw (`db.query_raw`,
    `db.batch_read`)."""

    Meta = db.table_meta("stats_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)

    @staticmethod
    def key(scope: str, kind: str) -> str:
        return f"TOP#{scope}#{kind}"


class OrderCounted(Model):
    """REVORDER#<order> / COUNTED: what the counters hold of an order's refunds so far, the fee
    rate its sale was counted at, and its lines (for a refund event that lacks them)."""

    Meta = db.table_meta("stats_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="COUNTED")
    refunded = NumberAttribute(null=True)
    fee_bps = NumberAttribute(null=True)
    lines = UnicodeAttribute(null=True)  # JSON: [{resource_id, creator_id, unit_amount}]


def _line_shares(lines: list[dict], amount: int) -> list[int]:
    """The amount by line, in proportion to the lines' unit amounts (largest remainder)."""
    from chalicelib.pricing.engine import share

    weights = [int(line.get("unit_amount") or 0) for line in lines]
    return share(amount, weights) if amount and sum(weights) else [0] * len(lines)


def _by(lines: list[dict], parts: list[int], field: str) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for line, part in zip(lines, parts, strict=True):
        out[str(line.get(field) or "")] += part
    return dict(out)


def _shares(lines: list[dict], amount: int) -> dict[str, int]:
    """The amount by creator: the sum of their lines' shares."""
    return _by(lines, _line_shares(lines, amount), "creator_id")


def fee(net: int, bps: int) -> int:
    """The platform's fee on `net` minor units at `bps` basis points, rounded half up (a
    negative net, which a refund never makes, counts no fee)."""
    from chalicelib.pricing.engine import half_up

    return half_up(net * bps, 10000) if net > 0 else 0


def _add(tx: Any, scope: str, metric: str, currency: str, day: str, value: int) -> None:
    if value:
        tx.update(RevenueCounter(pk=RevenueCounter.key(scope, metric, currency), sk=day),
                  actions=[RevenueCounter.value.add(value)])


def _board(tx: Any, scope: str, kind: str, month: str, currency: str,
           values: dict[str, int]) -> None:
    """ADD each non-zero value (`g:<id>`, `totals`…) to a leaderboard item, in one update."""
    # A list path: one attribute, whatever its name holds (no `.` nesting).
    actions = [Path([name]).add(value) for name, value in sorted(values.items()) if value]
    if actions:
        tx.update(Leaderboard(pk=Leaderboard.key(scope, kind), sk=f"{month}#{currency}"),
                  actions=actions)


def _lines(p: dict) -> list[dict]:
    return [{"resource_id": str(line.get("resource_id") or ""),
             "creator_id": str(line.get("creator_id") or ""),
             "unit_amount": int(line.get("unit_amount") or 0)} for line in p.get("lines") or ()]


def on_order_paid(event: outbox.DomainEvent) -> None:
    """A paid order: gross, one order and the platform's fee, for the platform and its
    creators, and the month's leaderboards; once."""
    p = event.payload
    day, currency, amount = event.at[:10], str(p.get("currency")), int(p.get("amount") or 0)
    month, lines, bps = day[:7], _lines(p), settings().platform_fee_bps
    parts = _line_shares(lines, amount)
    creators = _by(lines, parts, "creator_id")
    fees = {creator: fee(part, bps) for creator, part in creators.items()}
    marker = outbox.applied_marker("stats_table", "revenue", event)
    try:
        with db.transaction() as tx:
            tx.save(marker, condition=type(marker).pk.does_not_exist())
            tx.update(OrderCounted(pk=f"REVORDER#{p['order_id']}"), actions=[
                OrderCounted.fee_bps.set(OrderCounted.fee_bps | bps),
                OrderCounted.lines.set(OrderCounted.lines | json.dumps(lines))])
            _add(tx, "platform", "gross", currency, day, amount)
            _add(tx, "platform", "orders", currency, day, 1)
            _add(tx, "platform", "fee", currency, day, sum(fees.values()))
            _board(tx, "platform", "resources", month, currency, {
                **{f"g:{k}": v for k, v in _by(lines, parts, "resource_id").items()},
                **{f"o:{line['resource_id']}": 1 for line in lines}})
            _board(tx, "platform", "creators", month, currency, {
                **{f"g:{k}": v for k, v in creators.items()},
                **{f"o:{k}": 1 for k in creators}})
            for creator, part in creators.items():
                scope = f"creator#{creator}"
                _add(tx, scope, "gross", currency, day, part)
                _add(tx, scope, "orders", currency, day, 1)
                _add(tx, scope, "fee", currency, day, fees[creator])
                mine = [(line, share) for line, share in zip(lines, parts, strict=True)
                        if line["creator_id"] == creator]
                _board(tx, scope, "resources", month, currency, {
                    "gross": part, "orders": 1, "fee": fees[creator],
                    **{f"g:{line['resource_id']}": share for line, share in mine},
                    **{f"o:{line['resource_id']}": 1 for line, _ in mine}})
    except TransactWriteError as exc:
        if db.cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
            return  # counted already
        raise


def on_order_refunded(event: outbox.DomainEvent) -> None:
    """A refund: what the order's refunded total adds to what was counted, on the day of
    the refund, for the platform and (split like the sale) for the order's creators, with the
    fee's change; conditioned on the counted total read, so nothing counts twice."""
    p = event.payload
    total, currency, day = int(p.get("amount_refunded") or 0), str(p.get("currency")), \
        event.at[:10]
    paid, month = int(p.get("amount_paid") or 0), day[:7]
    for _ in range(4):
        try:
            counted = OrderCounted.get(f"REVORDER#{p['order_id']}", "COUNTED",
                                       consistent_read=True)
        except OrderCounted.DoesNotExist:
            counted = OrderCounted(pk=f"REVORDER#{p['order_id']}")
        before = int(counted.refunded or 0)
        delta = total - before
        if delta <= 0:
            return
        lines = _lines(p) or (json.loads(counted.lines) if counted.lines else [])
        now_parts, then_parts = _line_shares(lines, total), _line_shares(lines, before)
        line_delta = [a - b for a, b in zip(now_parts, then_parts, strict=True)]
        sold = _shares(lines, paid)
        now, then = _by(lines, now_parts, "creator_id"), _by(lines, then_parts, "creator_id")
        # The fee's change at the rate the sale was counted at (none if it was not yet).
        bps = None if counted.fee_bps is None else int(counted.fee_bps)
        fees = {c: fee(sold[c] - now[c], bps) - fee(sold[c] - then[c], bps)
                if bps is not None else 0 for c in sold}
        condition = OrderCounted.refunded == before
        if before == 0:
            condition = OrderCounted.refunded.does_not_exist() | condition
        try:
            with db.transaction() as tx:
                tx.update(counted, actions=[OrderCounted.refunded.set(total)],
                          condition=condition)
                _add(tx, "platform", "refunds", currency, day, delta)
                _add(tx, "platform", "fee", currency, day, sum(fees.values()))
                _board(tx, "platform", "resources", month, currency, {
                    f"r:{k}": v for k, v in _by(lines, line_delta, "resource_id").items()})
                _board(tx, "platform", "creators", month, currency, {
                    f"r:{c}": now[c] - then[c] for c in sold})
                for creator in sold:
                    scope, refunded = f"creator#{creator}", now[creator] - then[creator]
                    _add(tx, scope, "refunds", currency, day, refunded)
                    _add(tx, scope, "fee", currency, day, fees[creator])
                    _board(tx, scope, "resources", month, currency, {
                        "refunds": refunded, "fee": fees[creator],
                        **{f"r:{line['resource_id']}": d for line, d in
                           zip(lines, line_delta, strict=True)
                           if line["creator_id"] == creator}})
        except TransactWriteError as exc:
            if "ConditionalCheckFailed" in db.cancellation_codes(exc):
                continue
            raise
        return
    raise RuntimeError(f"refunds of {p['order_id']} kept changing")


MAX_MONTHS = 24


def report(scope: str, currency: str, first: str, last: str,
           granularity: str) -> RevenueReport:
    """The revenue report of `scope` (`platform`, or `creator#<id>`); a range that ends
    before it starts, or longer than two years, is refused (422)."""
    periods.check_range(first, last)
    return RevenueReport(currency=currency, granularity=granularity, date_from=first,
                         date_to=last, rows=[RevenueRow(**row) for row in revenue(
                             scope, currency, first, last, granularity)])


def _series(scope: str, currency: str, first: str, last: str, granularity: str,
            metrics: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Each metric per period between two days (inclusive): one Query per metric."""
    values = {metric: {row.sk: int(row.value) for row in RevenueCounter.query(
        RevenueCounter.key(scope, metric, currency),
        RevenueCounter.sk.between(first, last))} for metric in metrics}
    return periods.summed(first, last, granularity, values)


def revenue(scope: str, currency: str, first: str, last: str,
            granularity: str) -> list[dict[str, Any]]:
    """Gross, refunds, net and orders per day, week (from Monday) or month between two days
    (inclusive), in one currency: one Query per metric."""
    rows = _series(scope, currency, first, last, granularity, METRICS)
    return [{"period": period, "gross": r["gross"], "refunds": r["refunds"],
             "net": r["gross"] - r["refunds"], "orders": r["orders"]}
            for period, r in rows.items()]


def earnings(creator_id: str, currency: str, first: str, last: str,
             granularity: str) -> EarningsReport:
    """A creator's gross, refunds, platform fee and net (what is payable: gross − refunds −
    fee) per day, week or month: one Query per metric (4)."""
    periods.check_range(first, last)
    rows = _series(f"creator#{creator_id}", currency, first, last, granularity, EARNINGS)
    return EarningsReport(currency=currency, granularity=granularity, date_from=first,
                          date_to=last, rows=[EarningsRow(
                              period=period, gross=r["gross"], refunds=r["refunds"],
                              fee=r["fee"], net=r["gross"] - r["refunds"] - r["fee"],
                              orders=r["orders"]) for period, r in rows.items()])


def _months(first: str, last: str) -> list[str]:
    """The months from `first` to `last` (YYYY-MM, inclusive); 422 when backwards or more
    than two years."""
    (y1, m1), (y2, m2) = (map(int, first.split("-")), map(int, last.split("-")))
    count = (y2 - y1) * 12 + m2 - m1 + 1
    if count < 1 or count > MAX_MONTHS:
        raise Refused("`to` must be the month of `from` or later, at most 24 months.",
                      code="invalid_range")
    return [f"{y1 + (m1 - 1 + n) // 12:04d}-{(m1 - 1 + n) % 12 + 1:02d}" for n in range(count)]


def _number(item: dict, name: str) -> int:
    value = item.get(name)
    return int(value["N"]) if value else 0


def _per_id(items: list[dict]) -> dict[str, dict[str, int]]:
    """gross / orders / refunds by id, summed over leaderboard items."""
    out: dict[str, dict[str, int]] = {}
    for item in items:
        for name, value in item.items():
            prefix, sep, key = name.partition(":")
            if sep and prefix in ("g", "o", "r"):
                row = out.setdefault(key, {"g": 0, "o": 0, "r": 0})
                row[prefix] += int(value["N"])
    return out


def top_read(scope: str, kind: str, currency: str, first: str, last: str) -> db.Read:
    """The part of a `db.batch_read` that reads the leaderboard months of a top list: one
    item per month."""
    months = _months(first, last)
    pk = Leaderboard.key(scope, kind)
    return db.Read(settings().stats_table,
                   [{"pk": {"S": pk}, "sk": {"S": f"{m}#{currency}"}} for m in months])


def top(scope: str, kind: str, currency: str, first: str, last: str, limit: int) -> TopReport:
    """The `limit` ids (resources or creators) that sold most in `currency` over the months
    `first`..`last` (by gross, then orders, then id); one BatchGetItem. Names are the
    caller's to fill in (`TopItem.name`)."""
    [items] = db.batch_read(top_read(scope, kind, currency, first, last))
    ranked = sorted(_per_id(items).items(), key=lambda kv: (-kv[1]["g"], -kv[1]["o"], kv[0]))
    return TopReport(kind=kind, currency=currency, date_from=first, date_to=last, items=[
        TopItem(rank=n, id=key, gross=v["g"], refunds=v["r"], orders=v["o"])
        for n, (key, v) in enumerate(ranked[:limit], start=1)])


def statement(creator_id: str, month: str, today: str) -> Statement:
    """A creator's month: per currency gross, refunds, fee, net payable and orders, and a
    line per resource sold or refunded; one Query (every currency's leaderboard item of
    the month). A month after `today`'s is refused (422)."""
    try:
        start = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise Refused("A month is YYYY-MM.", code="invalid_month") from None
    if len(month) != 7 or month > today[:7]:
        raise Refused("Not a past or current month (YYYY-MM).", code="invalid_month")
    end = (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    items = db.query_raw(settings().stats_table,
                         Leaderboard.key(f"creator#{creator_id}", "resources"), f"{month}#")
    totals, lines = [], []
    for item in sorted(items, key=lambda i: i["sk"]["S"]):
        currency = item["sk"]["S"].partition("#")[2]
        t = {metric: _number(item, metric) for metric in TOTALS}
        totals.append(StatementTotal(currency=currency, gross=t["gross"],
                                     refunds=t["refunds"], fee=t["fee"],
                                     net=t["gross"] - t["refunds"] - t["fee"],
                                     orders=t["orders"]))
        per = sorted(_per_id([item]).items(), key=lambda kv: (-kv[1]["g"], kv[0]))
        lines += [StatementLine(currency=currency, resource_id=key, gross=v["g"],
                                refunds=v["r"], orders=v["o"]) for key, v in per]
    return Statement(month=month, date_from=start.isoformat(), date_to=end.isoformat(),
                     totals=totals, lines=lines)
