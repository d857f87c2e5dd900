"""The analytics consumer: one queue carries the requests' analytics messages and the
contexts' domain events (the outbox sends them here), and one handler takes a whole batch.

Domain events go to their subscribers first, one record at a time (each subscriber is
idempotent by the event's id). Then the batch is counted: every message's facts are summed in
memory into daily counters, and each distinct counter gets one atomic ADD. The ADDs commit in
one transaction with an `APPLIED#<message id>` / `rollup` marker per message (the outbox's
subscriber marker; condition: absent), so a message redelivered in this batch or any later
one (SQS delivers at least once, and a regrouped retry mixes old and new messages) is never
counted twice: a transaction refused on a marker is committed again without the messages it
names.

Counters: one item per scope and day, C#<scope> / <day>, holding every metric of that scope
and day as its own number attribute (views, checkouts, paid, ...), so a purchase's messages
update one item per scope instead of one per metric and scope (a write is billed per item),
and a report reads all the metrics it needs of a scope with one Query. Scope `platform`,
`resource#<id>`, `creator#<id>` or `category#<slug>`. Platform-wide items are hot (every
batch writes them), so they are sharded into <day>#<shard> items and summed on read. Unique
viewers are a linear-counting sketch in the same items (`viewers`): the viewer's hash sets one
of SKETCH_BUCKETS buckets, a number set that grows by set union (ADD), itself idempotent.
Gauges (active members, MRR) are C#<gauge>#platform / <day> items adding their changes (`value`)
to the day and to a `TOTAL` item.
"""
from __future__ import annotations

import hashlib
import math
import time
from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import msgspec
from pynamodb.attributes import NumberAttribute, NumberSetAttribute, UnicodeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model

from chalicelib import db, outbox
from chalicelib.analytics.events import TYPES, AnalyticsMessage, Fact
from chalicelib.observability import logger

SHARDS = 4
SKETCH_BUCKETS = 1024
# DynamoDB's limit on the items of one transaction.
MAX_ITEMS = 100
TOTAL = "TOTAL"


# Every metric a scope's day item may hold (its number attributes).
METRICS = ("views", "searches", "checkouts", "downloads", "signups", "reviews", "paid",
           "refunded", "members_started", "members_cancelled", "members_renewed")


class ScopeDay(Model):
    """C#<scope> / <yyyy-mm-dd>[#<shard>]: a scope's counters of a day (one per METRICS
    name), and its viewer sketch."""

    Meta = db.table_meta("stats_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    views = NumberAttribute(null=True)
    searches = NumberAttribute(null=True)
    checkouts = NumberAttribute(null=True)
    downloads = NumberAttribute(null=True)
    signups = NumberAttribute(null=True)
    reviews = NumberAttribute(null=True)
    paid = NumberAttribute(null=True)
    refunded = NumberAttribute(null=True)
    members_started = NumberAttribute(null=True)
    members_cancelled = NumberAttribute(null=True)
    members_renewed = NumberAttribute(null=True)
    viewers = NumberSetAttribute(null=True)

    @staticmethod
    def key(scope: str) -> str:
        return f"C#{scope}"


class Gauge(Model):
    """C#<gauge>#platform / <yyyy-mm-dd> (the day's change) or TOTAL (the value now)."""

    Meta = db.table_meta("stats_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    value = NumberAttribute(null=True)

    @staticmethod
    def key(gauge: str) -> str:
        return f"C#{gauge}#platform"


class MalformedEvent(ValueError):
    """The message is neither an analytics message nor a domain event; retrying cannot help."""


def _domain_event(body: str) -> outbox.DomainEvent:
    try:
        event = msgspec.json.decode(body, type=outbox.DomainEvent)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise MalformedEvent(str(exc)) from None
    if not event.event_id or len(event.at) < 10:
        raise MalformedEvent("a domain event without an id or a date")
    return event


def parse(body: str) -> AnalyticsMessage | outbox.DomainEvent:
    """An analytics message or a domain event; MalformedEvent for anything else."""
    try:
        message = msgspec.json.decode(body, type=AnalyticsMessage)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return _domain_event(body)
    for fact in message.facts:
        if fact.type not in TYPES or len(fact.at) < 10 or fact.count < 1:
            raise MalformedEvent(f"not a countable fact: {fact.type!r}")
    if not message.message_id:
        raise MalformedEvent("a message without an id")
    return message


# --- what each message adds ------------------------------------------------------------------

# fact type -> (metric, counted for resource, creator and category too)
FACT_METRICS = {
    "resource.viewed": ("views", True),
    "search.made": ("searches", False),
    "checkout.started": ("checkouts", True),
    "download.made": ("downloads", True),
    "user.registered": ("signups", False),
    "review.posted": ("reviews", True),
}


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _scopes(resource_id: str | None, creator_id: str | None,
            category: str | None) -> Iterator[str]:
    if resource_id:
        yield f"resource#{resource_id}"
    if creator_id:
        yield f"creator#{creator_id}"
    if category:
        yield f"category#{category}"


@dataclass
class Delta:
    """What a set of messages adds: numbers per (item, metric), sketch buckets per item, and
    the gauges' changes per item."""

    values: Tally = field(default_factory=Tally)  # (pk, sk, metric) -> n
    buckets: defaultdict = field(default_factory=lambda: defaultdict(set))  # (pk, sk) -> set
    gauges: Tally = field(default_factory=Tally)  # (pk, sk) -> n

    def add(self, metric: str, scope: str, day: str, value: int, shard: int | None = None
            ) -> None:
        if value:
            sk = day if shard is None else f"{day}#{shard}"
            self.values[ScopeDay.key(scope), sk, metric] += value

    def platform(self, metric: str, day: str, value: int, shard: int) -> None:
        self.add(metric, "platform", day, value, shard)

    def gauge(self, name: str, day: str, value: int) -> None:
        if value:
            self.gauges[Gauge.key(name), day] += value
            self.gauges[Gauge.key(name), TOTAL] += value

    def sketch(self, scope: str, day: str, viewer: str, sharded: bool) -> None:
        h = _hash(viewer)
        sk = f"{day}#{h % SHARDS}" if sharded else day
        self.buckets[ScopeDay.key(scope), sk].add((h >> 8) % SKETCH_BUCKETS)

    def keys(self) -> set[tuple[str, str]]:
        """The items this delta writes (one update each)."""
        return ({(pk, sk) for (pk, sk, _), value in self.values.items() if value}
                | set(self.buckets) | {key for key, value in self.gauges.items() if value})

    def merge(self, other: Delta) -> None:
        self.values.update(other.values)
        self.gauges.update(other.gauges)
        for key, buckets in other.buckets.items():
            self.buckets[key] |= buckets

    def item_updates(self) -> dict[tuple[str, str], dict[str, Any]]:
        """{(pk, sk): {metric: n, "viewers": buckets}} of the scopes' day items."""
        out: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
        for (pk, sk, metric), value in self.values.items():
            if value:
                out[pk, sk][metric] = value
        for key, buckets in self.buckets.items():
            out[key]["viewers"] = buckets
        return dict(out)


def _fact_delta(fact: Fact, shard: int, delta: Delta) -> None:
    metric, scoped = FACT_METRICS[fact.type]
    day = fact.at[:10]
    delta.platform(metric, day, fact.count, shard)
    if scoped:
        for scope in _scopes(fact.resource_id, fact.creator_id, fact.category):
            delta.add(metric, scope, day, fact.count)
    if fact.type == "resource.viewed" and fact.viewer:
        delta.sketch("platform", day, fact.viewer, sharded=True)
        if fact.resource_id:
            delta.sketch(f"resource#{fact.resource_id}", day, fact.viewer, sharded=False)


def _domain_delta(event: outbox.DomainEvent, shard: int, delta: Delta) -> None:
    p, day = event.payload, event.at[:10]
    if event.type == "order.paid":
        delta.platform("paid", day, 1, shard)
        for line in p.get("lines") or ():
            for scope in _scopes(line.get("resource_id"), line.get("creator_id"),
                                 line.get("category")):
                delta.add("paid", scope, day, 1)
    elif event.type == "order.refunded":
        delta.platform("refunded", day, 1, shard)
    elif event.type == "membership.started":
        delta.platform("members_started", day, 1, shard)
    elif event.type == "membership.cancelled":
        delta.platform("members_cancelled", day, 1, shard)
    elif event.type == "membership.paid" and p.get("billing_reason") == "subscription_cycle":
        delta.platform("members_renewed", day, 1, shard)
    elif event.type == "membership.standing":
        delta.gauge("members", day, int(p.get("active_delta") or 0))
        for currency, change in (p.get("mrr_delta") or {}).items():
            delta.gauge(f"mrr#{currency}", day, int(change))


@dataclass
class Message:
    """A record of the batch: its SQS id, the id it is counted under, what it adds."""

    record_id: str
    counted_id: str
    delta: Delta
    metrics: Tally


def _message(record_id: str, parsed: AnalyticsMessage | outbox.DomainEvent) -> Message:
    delta = Delta()
    metrics: Tally[str] = Tally()
    if isinstance(parsed, AnalyticsMessage):
        counted_id = parsed.message_id
        shard = _hash(counted_id) % SHARDS
        for fact in parsed.facts:
            _fact_delta(fact, shard, delta)
            metrics[fact.type] += fact.count
    else:
        counted_id = parsed.event_id
        _domain_delta(parsed, _hash(counted_id) % SHARDS, delta)
    return Message(record_id, counted_id, delta, metrics)


# --- committing --------------------------------------------------------------------------------

def _chunks(messages: list[Message]) -> Iterator[list[Message]]:
    """Messages packed so that each chunk's markers and distinct counters fit one transaction."""
    chunk: list[Message] = []
    keys: set[tuple[str, str]] = set()
    for message in messages:
        grown = keys | message.delta.keys()
        if chunk and len(chunk) + 1 + len(grown) > MAX_ITEMS:
            yield chunk
            chunk, grown = [], message.delta.keys()
        chunk.append(message)
        keys = grown
    if chunk:
        yield chunk


def _commit(chunk: list[Message]) -> list[Message]:
    """Count the chunk's messages not counted before; the ones it counted."""
    for _ in range(6):
        if not chunk:
            return []
        total = Delta()
        for message in chunk:
            total.merge(message.delta)
        try:
            with db.transaction() as tx:
                for message in chunk:
                    marker = outbox.applied_marker("stats_table", "rollup", message.counted_id)
                    tx.save(marker, condition=type(marker).pk.does_not_exist())
                for (pk, sk), adds in sorted(total.item_updates().items()):
                    tx.update(ScopeDay(pk=pk, sk=sk), actions=[
                        getattr(ScopeDay, name).add(value) for name, value in sorted(
                            adds.items())])
                for (pk, sk), value in sorted(total.gauges.items()):
                    if value:
                        tx.update(Gauge(pk=pk, sk=sk), actions=[Gauge.value.add(value)])
        except TransactWriteError as exc:
            codes = db.cancellation_codes(exc)
            seen = {m.counted_id for m, code in zip(chunk, codes, strict=False)
                    if code == "ConditionalCheckFailed"}
            if seen:
                logger.info("analytics messages counted before", extra={"count": len(seen)})
                chunk = [m for m in chunk if m.counted_id not in seen]
                continue
            if "TransactionConflict" in codes:
                time.sleep(0.05)
                continue
            raise
        return chunk
    raise RuntimeError("analytics counters kept conflicting")


def _emit(counted: Iterable[Message]) -> None:
    """The business figures of what was counted, as CloudWatch metrics (EMF)."""
    from chalicelib.observability import metrics

    # Sign-ups, paid orders, revenue and refunds are emitted where they happen (accounts,
    # payments); these are the figures only the analytics events carry.
    names = {"resource.viewed": "ResourceViews", "search.made": "Searches",
             "checkout.started": "CheckoutsStarted", "download.made": "Downloads",
             "review.posted": "ReviewsPosted"}
    tally: Tally = Tally()
    for message in counted:
        tally.update(message.metrics)
    for fact_type, value in sorted(tally.items()):
        if fact_type in names:
            metrics.add_metric(name=names[fact_type], unit="Count", value=value)


def handle(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One SQS batch (Lambda's records): domain events to their subscribers, then everything
    counted once; the records to retry, as Lambda's partial batch response."""
    failed: list[str] = []
    messages: dict[str, Message] = {}
    for record in records:
        record_id = record["messageId"]
        try:
            parsed = parse(record["body"])
            if isinstance(parsed, outbox.DomainEvent):
                outbox.dispatch(parsed)
            message = _message(record_id, parsed)
        except MalformedEvent:
            logger.exception("malformed analytics message", extra={"message_id": record_id})
            failed.append(record_id)  # retried, then dead-lettered: kept for a person
            continue
        except Exception:  # noqa: BLE001 - one failing event must not fail the batch
            logger.exception("domain event not handled", extra={"message_id": record_id})
            failed.append(record_id)
            continue
        # The same message twice in one batch (a relay's resend) is counted once.
        messages.setdefault(message.counted_id, message)
    try:
        outbox.after_batch()
    except Exception:  # noqa: BLE001 - the events are applied; what is deferred waits
        logger.exception("deferred subscriber work not done")
    counted: list[Message] = []
    for chunk in _chunks(list(messages.values())):
        try:
            counted += _commit(chunk)
        except Exception:  # noqa: BLE001 - this chunk is retried; the others are done
            logger.exception("analytics counters not written", extra={"count": len(chunk)})
            failed += [m.record_id for m in chunk]
    _emit(counted)
    return {"batchItemFailures": [{"itemIdentifier": record_id} for record_id in failed]}


# --- reading -----------------------------------------------------------------------------------

def scope_days(scope: str, first_day: str, last_day: str, metrics: Iterable[str]
               ) -> tuple[dict[str, dict[str, int]], int]:
    """{metric: {day: value}} of a scope between two days (inclusive), shards summed, and its
    estimated distinct viewers over them: one Query."""
    names = list(metrics)
    unknown = set(names) - set(METRICS)
    if unknown:
        raise ValueError(f"not a counted metric: {sorted(unknown)}")
    out: dict[str, dict[str, int]] = {name: defaultdict(int) for name in names}
    shards: dict[str, set[int]] = defaultdict(set)
    for row in ScopeDay.query(ScopeDay.key(scope),
                              ScopeDay.sk.between(first_day, last_day + "#~")):
        for name in names:
            value = getattr(row, name)
            if value is not None:
                out[name][row.sk[:10]] += int(value)
        if row.viewers:
            shards[row.sk[11:]] |= {int(b) for b in row.viewers}
    viewers = sum(estimate(len(buckets)) for buckets in shards.values())
    return {name: dict(days) for name, days in out.items()}, viewers


def dailies(metrics: Iterable[str], first_day: str, last_day: str, scope: str = "platform"
            ) -> dict[str, dict[str, int]]:
    """{metric: {day: value}} of a scope between two days (inclusive): one Query."""
    return scope_days(scope, first_day, last_day, metrics)[0]


def daily(metric: str, first_day: str, last_day: str, scope: str = "platform"
          ) -> dict[str, int]:
    """The per-day values of one metric of a scope between two days (inclusive): one Query."""
    return dailies([metric], first_day, last_day, scope)[metric]


def gauge(metric: str, first_day: str, last_day: str) -> dict[str, int]:
    """A gauge's value at the end of each day between two days (inclusive): the TOTAL less the
    changes after each day, from one Query (the days from `first_day` on, and TOTAL)."""
    changes: dict[str, int] = defaultdict(int)
    total = 0
    for row in Gauge.query(Gauge.key(metric), Gauge.sk >= first_day):
        if row.sk == TOTAL:
            total = int(row.value or 0)
        elif row.value is not None:
            changes[row.sk[:10]] += int(row.value)
    start, end = date.fromisoformat(first_day), date.fromisoformat(last_day)
    after = sum(v for day, v in changes.items() if day > last_day)
    values: dict[str, int] = {}
    current = total - after
    day = end
    while day >= start:
        key = day.isoformat()
        values[key] = current
        current -= changes.get(key, 0)
        day -= timedelta(days=1)
    return values


def unique(scope: str, first_day: str, last_day: str) -> int:
    """Estimated distinct viewers of `scope` over the days (inclusive): one Query; the union of
    the days' sketches, each shard estimated by linear counting and summed."""
    return scope_days(scope, first_day, last_day, ())[1]


def estimate(filled: int, buckets: int = SKETCH_BUCKETS) -> int:
    """Linear counting: the distinct items that leave `filled` of `buckets` set."""
    if filled >= buckets:
        filled = buckets - 1  # saturated: the sketch's ceiling
    return round(-buckets * math.log(1 - filled / buckets))
