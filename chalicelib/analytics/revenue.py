"""Revenue counters, from the payments context's domain events: per day and currency, gross
(paid orders' amounts), refunds and paid orders, for the platform and for each creator.
Each event applies once (an `APPLIED#` marker in the same transaction); a refund adds what
its order had not yet counted (the event carries the refunded total, and the order's counted
total is kept beside the counters), so a redelivered or late event adds nothing.

Counters: REV#<scope>#<metric>#<currency> / <yyyy-mm-dd>, scope `platform` or
`creator#<id>`; a report reads one counter family (scope, metric, currency) with one Query."""
from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model

from chalicelib import db, outbox
from chalicelib.analytics.schemas import RevenueReport, RevenueRow
from chalicelib.errors import Refused

METRICS = ("gross", "refunds", "orders")


class RevenueCounter(Model):
    Meta = db.table_meta("stats_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    value = NumberAttribute(default=0)

    @staticmethod
    def key(scope: str, metric: str, currency: str) -> str:
        return f"REV#{scope}#{metric}#{currency}"


class OrderCounted(Model):
    """REVORDER#<order> / COUNTED: what the counters hold of an order's refunds so far."""

    Meta = db.table_meta("stats_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="COUNTED")
    refunded = NumberAttribute(null=True)


def _shares(lines: list[dict], amount: int) -> dict[str, int]:
    """The amount by creator, in proportion to the lines' unit amounts (largest remainder)."""
    from chalicelib.pricing.engine import share

    weights: dict[str, int] = defaultdict(int)
    for line in lines:
        weights[str(line.get("creator_id") or "")] += int(line.get("unit_amount") or 0)
    creators = sorted(weights)
    parts = share(amount, [weights[c] for c in creators]) if amount and sum(weights.values()) \
        else [0] * len(creators)
    return dict(zip(creators, parts, strict=True))


def _add(tx: Any, scope: str, metric: str, currency: str, day: str, value: int) -> None:
    if value:
        tx.update(RevenueCounter(pk=RevenueCounter.key(scope, metric, currency), sk=day),
                  actions=[RevenueCounter.value.add(value)])


def on_order_paid(event: outbox.DomainEvent) -> None:
    """A paid order: gross and one order, for the platform and its creators; once."""
    p = event.payload
    day, currency, amount = event.at[:10], str(p.get("currency")), int(p.get("amount") or 0)
    marker = outbox.applied_marker("stats_table", "revenue", event)
    try:
        with db.transaction() as tx:
            tx.save(marker, condition=type(marker).pk.does_not_exist())
            _add(tx, "platform", "gross", currency, day, amount)
            _add(tx, "platform", "orders", currency, day, 1)
            for creator, part in _shares(list(p.get("lines") or ()), amount).items():
                _add(tx, f"creator#{creator}", "gross", currency, day, part)
                _add(tx, f"creator#{creator}", "orders", currency, day, 1)
    except TransactWriteError as exc:
        if db.cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
            return  # counted already
        raise


def on_order_refunded(event: outbox.DomainEvent) -> None:
    """A refund: what the order's refunded total adds to what was counted, on the day of
    the refund; conditioned on the counted total read, so nothing counts twice."""
    p = event.payload
    total, currency, day = int(p.get("amount_refunded") or 0), str(p.get("currency")), \
        event.at[:10]
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
        condition = OrderCounted.refunded == before
        if before == 0:
            condition = OrderCounted.refunded.does_not_exist() | condition
        try:
            with db.transaction() as tx:
                counted.refunded = total
                tx.save(counted, condition=condition)
                _add(tx, "platform", "refunds", currency, day, delta)
        except TransactWriteError as exc:
            if "ConditionalCheckFailed" in db.cancellation_codes(exc):
                continue
            raise
        return
    raise RuntimeError(f"refunds of {p['order_id']} kept changing")


def _days(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def _bucket(day: str, granularity: str) -> str:
    if granularity == "month":
        return day[:7]
    if granularity == "week":
        d = date.fromisoformat(day)
        return (d - timedelta(days=d.weekday())).isoformat()  # the week's Monday
    return day


MAX_DAYS = 732


def report(scope: str, currency: str, first: str, last: str,
           granularity: str) -> RevenueReport:
    """The revenue report of `scope` (`platform`, or `creator#<id>`); a range that ends
    before it starts, or longer than two years, is refused (422)."""
    try:
        days = (date.fromisoformat(last) - date.fromisoformat(first)).days
    except ValueError:
        raise Refused("Not a calendar day.", code="invalid_date") from None
    if days < 0 or days > MAX_DAYS:
        raise Refused("`to` must be on or after `from`, at most two years later.",
                      code="invalid_range")
    return RevenueReport(currency=currency, granularity=granularity, rows=[
        RevenueRow(**row) for row in revenue(scope, currency, first, last, granularity)])


def revenue(scope: str, currency: str, first: str, last: str,
            granularity: str) -> list[dict[str, Any]]:
    """Gross, refunds, net and orders per day, week (from Monday) or month between two days
    (inclusive), in one currency: one Query per metric."""
    values = {metric: {row.sk: int(row.value) for row in RevenueCounter.query(
        RevenueCounter.key(scope, metric, currency),
        RevenueCounter.sk.between(first, last))} for metric in METRICS}
    rows: dict[str, dict[str, int]] = {}
    for day in _days(first, last):
        row = rows.setdefault(_bucket(day, granularity), dict.fromkeys(METRICS, 0))
        for metric in METRICS:
            row[metric] += values[metric].get(day, 0)
    return [{"period": period, "gross": r["gross"], "refunds": r["refunds"],
             "net": r["gross"] - r["refunds"], "orders": r["orders"]}
            for period, r in rows.items()]
