"""Revenue counters, from the payments context's domain events: per day and currency, gross
(paid orders' amounts), refunds, paid orders and the platform's fee, for the platform and
for each creator; and leaderboards per month (what each resource and creator sold).
Each event applies once (an `APPLIED#` marker in the same transaction); a refund adds what
its order had not yet counted (the event carries the refunded total, and the order's counted
total is kept beside the counters), so a redelivered or late event adds nothing.

Counters: REV#<scope>#<currency> / <yyyy-mm-dd>, scope `platform` or `creator#<id>`, one
item a day holding the four metrics as attributes (gross, refunds, orders, fee), so an event
updates one item per scope (a write is billed per item) and a report reads its scope and
currency with one Query.

An order's amount is split over its lines in proportion to their unit amounts (largest
remainder); a creator's part is the sum of their lines. A refund is split the same way (the
split of the refunded total so far, less the split of what was counted before).

The platform fee is counted at sale time, at the rate then configured (`PLATFORM_FEE_BPS`,
kept with the order), per creator and order: round half up of (their part − their part of
the refunds) × rate; a refund adds the (negative) change of that fee on the refund's day.
So a new rate applies to new sales only and never rewrites a past statement.

Leaderboards: one small item per id and month, so none grows with the catalog (one attribute
per id on a month's item would pass DynamoDB's 400 KB item limit at about ten thousand
resources sold in a month). A resource's row, TOP#creator#<creator>#resources#<yyyy-mm> /
<currency>#<resource>, and a creator's, TOP#platform#creators#<yyyy-mm> / <creator>#<currency>,
hold `g` (gross), `o` (orders with it), `r` (refunds) and, on a creator's, `fee`: their month's
totals for a statement. Two sparse GSIs rank rows by `g`: `board` (boardpk =
TOP#platform#<kind>#<yyyy-mm>#<currency>, the platform's boards) and `own` (ownpk =
TOP#creator#<creator>#resources#<yyyy-mm>#<currency>, a creator's own). A top list reads one
Query per month; a statement two Queries."""
from __future__ import annotations

import json
from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
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


class RevenueCounter(Model):
    """REV#<scope>#<currency> / <yyyy-mm-dd>: a scope's revenue of a day in one currency."""

    Meta = db.table_meta("stats_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gross = NumberAttribute(null=True)
    refunds = NumberAttribute(null=True)
    orders = NumberAttribute(null=True)
    fee = NumberAttribute(null=True)

    @staticmethod
    def key(scope: str, currency: str) -> str:
        return f"REV#{scope}#{currency}"


class BoardRow(Model):
    """A leaderboard row: one id's month in one currency (see the module's docstring). Its
    counters (`g`, `o`, `r`, `fee`) only ever grow by ADD; the index keys are SET to what
    they always are for the row."""

    Meta = db.table_meta("stats_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    g = NumberAttribute(null=True)
    o = NumberAttribute(null=True)
    r = NumberAttribute(null=True)
    fee = NumberAttribute(null=True)
    boardpk = UnicodeAttribute(null=True)
    ownpk = UnicodeAttribute(null=True)
    board = db.global_index("board", number_sort="g")  # the platform's boards
    own = db.global_index("own", number_sort="g")  # each creator's own


def _rows(scope: str, kind: str, month: str) -> str:
    """The partition of a month's rows: a creator's resources, or the platform's creators."""
    return f"TOP#{scope}#{kind}#{month}"


def _board_key(scope: str, kind: str, month: str, currency: str) -> str:
    """The key of a board on its index (`board` for the platform's, `own` for a creator's)."""
    return f"{_rows(scope, kind, month)}#{currency}"


def _resource_row(creator: str, resource: str, month: str, currency: str
                  ) -> tuple[tuple[str, str], dict[str, str]]:
    """A resource's row in its creator's month, ranked on both boards it belongs to."""
    scope = f"creator#{creator}"
    return ((_rows(scope, "resources", month), f"{currency}#{resource}"),
            {"boardpk": _board_key("platform", "resources", month, currency),
             "ownpk": _board_key(scope, "resources", month, currency)})


def _creator_row(creator: str, month: str, currency: str
                 ) -> tuple[tuple[str, str], dict[str, str]]:
    """A creator's row in the platform's month: the creators' board, and the creator's month
    totals for their statement."""
    return ((_rows("platform", "creators", month), f"{creator}#{currency}"),
            {"boardpk": _board_key("platform", "creators", month, currency)})


@dataclass
class Changes:
    """What an event adds to the stats table, before it is written: number attributes to ADD
    and string attributes to SET, per item (pk, sk). Pure, so a batch of events (or a
    benchmark loading a year of orders) can sum them before writing."""

    adds: dict[tuple[str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    sets: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def counter(self, scope: str, metric: str, currency: str, day: str, value: int) -> None:
        if value:
            self.adds[RevenueCounter.key(scope, currency), day][metric] += value

    def row(self, at: tuple[tuple[str, str], dict[str, str]], **values: int) -> None:
        key, keys = at
        numbers = {name: value for name, value in values.items() if value}
        if numbers:
            self.adds[key].update(numbers)
            self.sets[key] = keys

    def merge(self, other: Changes) -> None:
        for key, numbers in other.adds.items():
            self.adds[key].update(numbers)
        self.sets.update(other.sets)

    def items(self) -> Iterator[tuple[tuple[str, str], dict[str, int], dict[str, str]]]:
        for key in sorted(self.adds):
            numbers = {name: value for name, value in self.adds[key].items() if value}
            if numbers:
                yield key, numbers, self.sets.get(key, {})

    def write(self, tx: Any) -> None:
        """Each item's ADDs and SETs as one update in the transaction `tx`."""
        for (pk, sk), numbers, keys in self.items():
            actions: list[Any] = [Path([name]).add(value)
                                  for name, value in sorted(numbers.items())]
            actions += [Path([name]).set(value) for name, value in sorted(keys.items())]
            tx.update(BoardRow(pk=pk, sk=sk), actions=actions)


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


def _lines(p: dict) -> list[dict]:
    return [{"resource_id": str(line.get("resource_id") or ""),
             "creator_id": str(line.get("creator_id") or ""),
             "unit_amount": int(line.get("unit_amount") or 0)} for line in p.get("lines") or ()]


def paid_changes(event: outbox.DomainEvent, bps: int) -> Changes:
    """What a paid order adds: gross, one order and the platform's fee (at `bps`) for the
    platform and its creators, and its rows on the month's boards."""
    p = event.payload
    day, currency, amount = event.at[:10], str(p.get("currency")), int(p.get("amount") or 0)
    month, lines = day[:7], _lines(p)
    parts = _line_shares(lines, amount)
    creators = _by(lines, parts, "creator_id")
    fees = {creator: fee(part, bps) for creator, part in creators.items()}
    changes = Changes()
    changes.counter("platform", "gross", currency, day, amount)
    changes.counter("platform", "orders", currency, day, 1)
    changes.counter("platform", "fee", currency, day, sum(fees.values()))
    for line, part in zip(lines, parts, strict=True):
        changes.row(_resource_row(line["creator_id"], line["resource_id"], month, currency),
                    g=part, o=1)
    for creator, part in creators.items():
        scope = f"creator#{creator}"
        changes.counter(scope, "gross", currency, day, part)
        changes.counter(scope, "orders", currency, day, 1)
        changes.counter(scope, "fee", currency, day, fees[creator])
        changes.row(_creator_row(creator, month, currency), g=part, o=1, fee=fees[creator])
    return changes


def on_order_paid(event: outbox.DomainEvent) -> None:
    """A paid order, counted once (`paid_changes` at the configured fee rate, kept with the
    order for its refunds)."""
    p, bps = event.payload, settings().platform_fee_bps
    marker = outbox.applied_marker("stats_table", "revenue", event)
    try:
        with db.transaction() as tx:
            tx.save(marker, condition=type(marker).pk.does_not_exist())
            tx.update(OrderCounted(pk=f"REVORDER#{p['order_id']}"), actions=[
                OrderCounted.fee_bps.set(OrderCounted.fee_bps | bps),
                OrderCounted.lines.set(OrderCounted.lines | json.dumps(_lines(p)))])
            paid_changes(event, bps).write(tx)
    except TransactWriteError as exc:
        if db.cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
            return  # counted already
        raise


def refund_changes(lines: list[dict], currency: str, day: str, paid: int, before: int,
                   total: int, bps: int | None) -> Changes:
    """What raising an order's refunded total from `before` to `total` adds on `day`: the
    refunds, split like the sale, and the fee's change at the sale's rate (none if the sale
    was not counted yet)."""
    month = day[:7]
    now_parts, then_parts = _line_shares(lines, total), _line_shares(lines, before)
    sold = _shares(lines, paid)
    now, then = _by(lines, now_parts, "creator_id"), _by(lines, then_parts, "creator_id")
    fees = {c: fee(sold[c] - now[c], bps) - fee(sold[c] - then[c], bps)
            if bps is not None else 0 for c in sold}
    changes = Changes()
    changes.counter("platform", "refunds", currency, day, total - before)
    changes.counter("platform", "fee", currency, day, sum(fees.values()))
    for line, a, b in zip(lines, now_parts, then_parts, strict=True):
        changes.row(_resource_row(line["creator_id"], line["resource_id"], month, currency),
                    r=a - b)
    for creator in sold:
        scope, refunded = f"creator#{creator}", now[creator] - then[creator]
        changes.counter(scope, "refunds", currency, day, refunded)
        changes.counter(scope, "fee", currency, day, fees[creator])
        changes.row(_creator_row(creator, month, currency), r=refunded, fee=fees[creator])
    return changes


def on_order_refunded(event: outbox.DomainEvent) -> None:
    """A refund: what the order's refunded total adds to what was counted, on the day of
    the refund (`refund_changes`); conditioned on the counted total read, so nothing counts
    twice."""
    p = event.payload
    total, currency, day = int(p.get("amount_refunded") or 0), str(p.get("currency")), \
        event.at[:10]
    paid = int(p.get("amount_paid") or 0)
    for _ in range(4):
        try:
            counted = OrderCounted.get(f"REVORDER#{p['order_id']}", "COUNTED",
                                       consistent_read=True)
        except OrderCounted.DoesNotExist:
            counted = OrderCounted(pk=f"REVORDER#{p['order_id']}")
        before = int(counted.refunded or 0)
        if total <= before:
            return
        lines = _lines(p) or (json.loads(counted.lines) if counted.lines else [])
        bps = None if counted.fee_bps is None else int(counted.fee_bps)
        condition = OrderCounted.refunded == before
        if before == 0:
            condition = OrderCounted.refunded.does_not_exist() | condition
        try:
            with db.transaction() as tx:
                tx.update(counted, actions=[OrderCounted.refunded.set(total)],
                          condition=condition)
                refund_changes(lines, currency, day, paid, before, total, bps).write(tx)
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
    """Each metric per period between two days (inclusive): one Query for all of them."""
    values: dict[str, dict[str, int]] = {metric: {} for metric in metrics}
    for row in RevenueCounter.query(RevenueCounter.key(scope, currency),
                                    RevenueCounter.sk.between(first, last)):
        for metric in metrics:
            value = getattr(row, metric)
            if value is not None:
                values[metric][row.sk] = int(value)
    return periods.summed(first, last, granularity, values)


def revenue(scope: str, currency: str, first: str, last: str,
            granularity: str) -> list[dict[str, Any]]:
    """Gross, refunds, net and orders per day, week (from Monday) or month between two days
    (inclusive), in one currency: one Query."""
    rows = _series(scope, currency, first, last, granularity, METRICS)
    return [{"period": period, "gross": r["gross"], "refunds": r["refunds"],
             "net": r["gross"] - r["refunds"], "orders": r["orders"]}
            for period, r in rows.items()]


def earnings(creator_id: str, currency: str, first: str, last: str,
             granularity: str) -> EarningsReport:
    """A creator's gross, refunds, platform fee and net (what is payable: gross − refunds −
    fee) per day, week or month: one Query."""
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


def _ranked(scope: str, kind: str, month: str, currency: str, limit: int) -> list[BoardRow]:
    """The `limit` rows of a month's board with the largest gross: one Query of its index."""
    index = BoardRow.board if scope == "platform" else BoardRow.own
    return list(index.query(_board_key(scope, kind, month, currency),
                            scan_index_forward=False, limit=limit))


def _row_id(row: BoardRow, kind: str) -> str:
    # resource rows: <currency>#<resource>; creator rows: <creator>#<currency>
    return row.sk.partition("#")[2] if kind == "resources" else row.sk.rpartition("#")[0]


def _n(value: Any) -> int:
    return int(value or 0)


def top(scope: str, kind: str, currency: str, first: str, last: str, limit: int) -> TopReport:
    """The `limit` ids (resources or creators) that sold most in `currency` over the months
    `first`..`last` (by gross, then orders, then id): one Query per month of the board's
    index, each month's `limit` best summed (exact for one month; over several, an id
    outside every month's best is left out). Names are the caller's to fill in."""
    totals: dict[str, dict[str, int]] = {}
    for month in _months(first, last):
        for item in _ranked(scope, kind, month, currency, limit):
            row = totals.setdefault(_row_id(item, kind), {"g": 0, "o": 0, "r": 0})
            for name in row:
                row[name] += _n(getattr(item, name))
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1]["g"], -kv[1]["o"], kv[0]))
    return TopReport(kind=kind, currency=currency, date_from=first, date_to=last, items=[
        TopItem(rank=n, id=key, gross=v["g"], refunds=v["r"], orders=v["o"])
        for n, (key, v) in enumerate(ranked[:limit], start=1)])


def statement(creator_id: str, month: str, today: str) -> Statement:
    """A creator's month: per currency gross, refunds, fee, net payable and orders, and a
    line per resource sold or refunded; two Queries (the creator's rows on the creators'
    board, one per currency; their resources' rows). A month after `today`'s is refused
    (422)."""
    try:
        start = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise Refused("A month is YYYY-MM.", code="invalid_month") from None
    if len(month) != 7 or month > today[:7]:
        raise Refused("Not a past or current month (YYYY-MM).", code="invalid_month")
    end = (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    mine = BoardRow.query(_rows("platform", "creators", month),
                          BoardRow.sk.startswith(f"{creator_id}#"))
    totals = [StatementTotal(currency=row.sk.rpartition("#")[2], gross=_n(row.g),
                             refunds=_n(row.r), fee=_n(row.fee),
                             net=_n(row.g) - _n(row.r) - _n(row.fee), orders=_n(row.o))
              for row in sorted(mine, key=lambda row: row.sk)]
    rows = BoardRow.query(_rows(f"creator#{creator_id}", "resources", month))
    lines = sorted((StatementLine(currency=row.sk.partition("#")[0],
                                  resource_id=_row_id(row, "resources"), gross=_n(row.g),
                                  refunds=_n(row.r), orders=_n(row.o)) for row in rows),
                   key=lambda line: (line.currency, -line.gross, line.resource_id))
    return Statement(month=month, date_from=start.isoformat(), date_to=end.isoformat(),
                     totals=totals, lines=lines)
