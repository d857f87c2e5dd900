"""The analytics consumer: each queued event adds to a per-day counter exactly once.

Idempotent per event id: the dedupe marker and the counter increment commit in one
transaction, so a redelivered message changes nothing. A malformed message raises, is reported
as a batch item failure, and reaches the dead-letter queue after maxReceiveCount tries.
"""
from __future__ import annotations

import time

import msgspec
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model

from chalicelib import db
from chalicelib.analytics.events import AnalyticsEvent
from chalicelib.observability import logger

# Longer than the queue's retention and any redrive, so a late duplicate is still recognised.
MARKER_SECONDS = 15 * 24 * 3600


class Counter(Model):
    """COUNTER#<metric> / <yyyy-mm-dd>."""

    Meta = db.table_meta("stats_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    value = NumberAttribute(default=0)


class ProcessedEvent(Model):
    """EVENT#<event id> / EVENT: this event has been counted."""

    Meta = db.table_meta("stats_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="EVENT")
    expires_at = NumberAttribute()


class MalformedEvent(ValueError):
    """The message is not an analytics event; retrying cannot help."""


def parse(body: str) -> AnalyticsEvent:
    try:
        event = msgspec.json.decode(body, type=AnalyticsEvent)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise MalformedEvent(str(exc)) from None
    if len(event.at) < 10 or not event.type or event.count < 1:
        raise MalformedEvent("event has no date, type or positive count")
    return event


def apply(event: AnalyticsEvent) -> bool:
    """Count `event` once; False when it had already been counted."""
    day = event.at[:10]
    try:
        with db.transaction() as tx:
            tx.save(ProcessedEvent(pk=f"EVENT#{event.event_id}",
                                   expires_at=int(time.time()) + MARKER_SECONDS),
                    condition=ProcessedEvent.pk.does_not_exist())
            tx.update(Counter(pk=f"COUNTER#{event.type}", sk=day),
                      actions=[Counter.value.add(event.count)])
    except TransactWriteError as exc:
        if db.cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
            logger.info("duplicate analytics event", extra={"event_id": event.event_id})
            return False
        raise
    return True


def record_handler(record) -> None:
    """Powertools batch record handler: one SQS record, one event."""
    apply(parse(record.body))


def daily(metric: str, first_day: str, last_day: str) -> list[tuple[str, int]]:
    """The per-day values of `metric` between two dates (inclusive), one Query."""
    rows = Counter.query(f"COUNTER#{metric}", Counter.sk.between(first_day, last_day))
    return [(row.sk, int(row.value)) for row in rows]
