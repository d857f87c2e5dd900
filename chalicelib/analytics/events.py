"""Publishing analytics events to the analytics queue. Analytics is derived data: a lost event
skews a counter, never money or access, so publishing never fails the request that caused it
(the failure is logged and counted in the `AnalyticsEventsDropped` metric).

A request's events travel together: `track` collects them, and the HTTP edge sends them with
one SendMessage when the response is ready (`flush`). Outside a request (a consumer, a
script) `track` sends at once. The rollup (`analytics.rollup`) counts each message once."""
from __future__ import annotations

import contextvars
import uuid
from datetime import UTC, datetime

import msgspec

from chalicelib.observability import logger

# The facts the rollup counts; anything else is refused by the rollup as malformed.
TYPES = ("resource.viewed", "search.made", "checkout.started", "download.made",
         "user.registered", "review.posted")


class Fact(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One thing that happened, with what it is counted by."""

    type: str
    at: str
    resource_id: str | None = None
    creator_id: str | None = None
    category: str | None = None
    # Who did it (a user id, or the visitor's anonymous key): for unique-viewer sketches.
    viewer: str | None = None
    count: int = 1


class AnalyticsMessage(msgspec.Struct, forbid_unknown_fields=True, tag_field="kind",
                       tag="analytics"):
    """What one request sends: its facts, under one id the rollup counts once."""

    message_id: str
    facts: list[Fact]


_pending: contextvars.ContextVar[list[Fact] | None] = contextvars.ContextVar(
    "analytics_pending", default=None)


def track(event_type: str, *, resource_id: str | None = None, creator_id: str | None = None,
          category: str | None = None, viewer: str | None = None, count: int = 1) -> None:
    """Record that `event_type` happened now; sent with the request's other events."""
    fact = Fact(type=event_type, at=datetime.now(UTC).isoformat(), resource_id=resource_id,
                creator_id=creator_id, category=category, viewer=viewer, count=count)
    pending = _pending.get()
    if pending is None:
        _send([fact])
    else:
        pending.append(fact)


def begin() -> contextvars.Token:
    """Start collecting the events of a request (the HTTP edge calls it)."""
    return _pending.set([])


def flush(token: contextvars.Token) -> None:
    """Send the events collected since `begin`, in one message, and stop collecting."""
    facts = _pending.get() or []
    _pending.reset(token)
    if facts:
        _send(facts)


def encode(facts: list[Fact]) -> str:
    return msgspec.json.encode(AnalyticsMessage(message_id=uuid.uuid4().hex,
                                                facts=facts)).decode()


def _send(facts: list[Fact]) -> None:
    from chalicelib import aws
    from chalicelib.config import settings

    try:
        aws.sqs().send_message(QueueUrl=aws.queue_url(settings().analytics_queue),
                               MessageBody=encode(facts))
    except Exception:  # noqa: BLE001 - derived data must not fail the caller
        from chalicelib.observability import metrics

        logger.exception("analytics events not queued", extra={"count": len(facts)})
        try:
            metrics.add_metric(name="AnalyticsEventsDropped", unit="Count", value=len(facts))
        except Exception:  # noqa: BLE001 - a metrics failure must not fail the caller either
            logger.exception("analytics drop not counted")
