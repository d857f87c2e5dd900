"""The transactional outbox: a domain event is written in the same DynamoDB transaction as the
state change it reports, into the table of the context that owns the change, and delivered
to the analytics queue afterwards (one queue and one poller for everything derived). A crash
between the commit and the delivery loses nothing: the relay (every reconciliation run, and
`make reconcile`) sends what is left. So events are delivered at least once, and every
subscriber is idempotent by the event's id.

The analytics consumer (`analytics.rollup.handle`) hands each event to `dispatch`, which
calls the subscribers of its type, named in SUBSCRIBERS and imported on first use, so a
context reacts to another's events without importing its storage."""
from __future__ import annotations

import importlib
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from chalicelib.observability import logger

SHARDS = 4
# An outbox item younger than this may still be on its way from the request that wrote it.
RELAY_AFTER_SECONDS = 60


class DomainEvent(msgspec.Struct, forbid_unknown_fields=True):
    event_id: str
    type: str
    at: str
    payload: dict


# event type -> "module:function" of each subscriber, called with the DomainEvent.
SUBSCRIBERS: dict[str, tuple[str, ...]] = {
    "order.paid": ("chalicelib.catalog.sales:count_sale",
                   "chalicelib.coupons.redemptions:on_paid",
                   "chalicelib.points.events:on_order_paid",
                   "chalicelib.analytics.revenue:on_order_paid",
                   "chalicelib.recommendations.events:on_order_paid",
                   "chalicelib.community.events:on_order_paid",
                   "chalicelib.referrals.events:on_order_paid"),
    "order.ended": ("chalicelib.coupons.redemptions:on_ended",
                    "chalicelib.points.events:on_order_ended"),
    "order.refunded": ("chalicelib.points.events:on_order_refunded",
                       "chalicelib.analytics.revenue:on_order_refunded",
                       "chalicelib.recommendations.events:on_order_refunded",
                       "chalicelib.community.events:on_order_refunded",
                       "chalicelib.referrals.events:on_order_refunded"),
    "membership.paid": ("chalicelib.points.events:on_membership_paid",),
    "resource.reviewed": ("chalicelib.community.events:on_resource_reviewed",),
    "referral.rewarded": ("chalicelib.points.events:on_referral_rewarded",
                          "chalicelib.community.events:on_referral_rewarded"),
    "referral.reversed": ("chalicelib.points.events:on_referral_reversed",
                          "chalicelib.community.events:on_referral_reversed"),
}

# "module:function" of each subscriber's work deferred to the end of an SQS batch (once per
# batch, not per event), called only when its module was loaded by a subscriber.
AFTER_BATCH: tuple[str, ...] = ("chalicelib.recommendations.events:after_batch",)

_models: dict[tuple[str, str], Any] = {}


def _model(kind: str, table_setting: str, attributes: Callable[[], dict[str, Any]]) -> Any:
    """A PynamoDB model of `kind` in the table named by `settings().<table_setting>`, keyed
    pk / sk, with `attributes()` besides: one class per kind and table, made on first use."""
    if (kind, table_setting) not in _models:
        from pynamodb.attributes import UnicodeAttribute
        from pynamodb.models import Model

        from chalicelib.db import table_meta

        name = kind + "".join(p.title() for p in table_setting.split("_"))
        _models[kind, table_setting] = type(name, (Model,), {
            "Meta": table_meta(table_setting), "pk": UnicodeAttribute(hash_key=True),
            "sk": UnicodeAttribute(range_key=True), **attributes()})
    return _models[kind, table_setting]


def model(table_setting: str) -> Any:
    """The outbox of a table: OUTBOX#<shard> / <at>#<event id>, the event as JSON."""
    def attributes() -> dict[str, Any]:
        from pynamodb.attributes import UnicodeAttribute

        return {"event": UnicodeAttribute()}

    return _model("Outbox", table_setting, attributes)


def record(table_setting: str, event_type: str, payload: dict, at: str) -> Any:
    """A new outbox item, to be saved inside the transaction of the change it reports."""
    event_id = uuid.uuid4().hex
    event = DomainEvent(event_id=event_id, type=event_type, at=at, payload=payload)
    shard = int(event_id[:8], 16) % SHARDS
    return model(table_setting)(pk=f"OUTBOX#{shard}", sk=f"{at}#{event_id}",
                                event=msgspec.json.encode(event).decode())


def publish(items: list[Any]) -> int:
    """Send committed outbox items to the analytics queue, then delete them. Failures are
    logged, never raised: the change is committed, and the relay sends them later."""
    if not items:
        return 0
    from chalicelib import aws
    from chalicelib.config import settings

    sent = 0
    try:
        url = aws.queue_url(settings().analytics_queue)
        for start in range(0, len(items), 10):
            chunk = items[start:start + 10]
            reply = aws.sqs().send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "MessageBody": item.event} for i, item in enumerate(chunk)])
            done = [chunk[int(ok["Id"])] for ok in reply.get("Successful", [])]
            with type(chunk[0]).batch_write() as batch:
                for item in done:
                    batch.delete(item)
            sent += len(done)
    except Exception:  # noqa: BLE001 - the outbox keeps them; the relay sends them later
        logger.exception("domain events not sent yet", extra={"count": len(items) - sent})
    return sent


def pending(table_setting: str, older_than: float | None = None) -> list[Any]:
    """Outbox items of a table not yet delivered: one Query per shard."""
    from chalicelib.db import iso_at

    cls = model(table_setting)
    before = None if older_than is None else cls.sk < iso_at(older_than)
    return [item for shard in range(SHARDS) for item in cls.query(f"OUTBOX#{shard}", before)]


# The tables whose contexts write domain events.
TABLES = ("orders_table", "memberships_table", "catalog_table", "referrals_table")


def relay(now: float | None = None, everything: bool = False) -> int:
    """Send what the requests that wrote them did not (a crash, a queue outage)."""
    older_than = None if everything else (now or time.time()) - RELAY_AFTER_SECONDS
    sent = 0
    for table in TABLES:
        left = pending(table, older_than)
        sent += publish(left)
        if left:
            logger.warning("outbox relayed", extra={"table": table, "count": len(left)})
    return sent


# A subscriber's mark that it applied an event, kept a month (past any redelivery).
APPLIED_DAYS = 30


def applied_marker(table_setting: str, subscriber: str, event: DomainEvent | str) -> Any:
    """An item to save (condition: absent) in the transaction of a subscriber's change, so
    a redelivered event (or message, by its id) changes nothing twice."""
    event_id = event if isinstance(event, str) else event.event_id

    def attributes() -> dict[str, Any]:
        from pynamodb.attributes import NumberAttribute

        return {"expires_at": NumberAttribute()}

    cls = _model("Applied", table_setting, attributes)
    return cls(pk=f"APPLIED#{event_id}", sk=subscriber,
               expires_at=int(time.time()) + APPLIED_DAYS * 86400)


def dispatch(event: DomainEvent) -> None:
    """One domain event from the queue, to each subscriber of its type. A subscriber that
    fails fails the record, which is retried and, failing for good, dead-lettered."""
    for target in SUBSCRIBERS.get(event.type, ()):
        module, function = target.split(":")
        getattr(importlib.import_module(module), function)(event)


def after_batch() -> None:
    """Once the batch's events are dispatched: each subscriber's deferred work."""
    for target in AFTER_BATCH:
        module, function = target.split(":")
        if module in sys.modules:
            getattr(sys.modules[module], function)()
