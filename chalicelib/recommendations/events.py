"""The recommendations context's reactions to the payments context's domain events (at least
once through the outbox; each applies once, by an `APPLIED#` marker per event and resource
in the transaction of its counts)."""
from __future__ import annotations

from chalicelib import outbox
from chalicelib.recommendations import service


def on_order_paid(event: outbox.DomainEvent) -> None:
    """`order.paid` {order_id, user_id, resource_ids, lines, paid_at?}: each resource owned
    by the buyer, paired with what they owned already, counted under its tags and today."""
    p = event.payload
    ids = list(p.get("resource_ids") or [line["resource_id"] for line in p.get("lines") or ()])
    service.order_paid(event, order_id=p["order_id"], user_id=p["user_id"], resource_ids=ids,
                       at=p.get("paid_at") or event.at)


def on_order_refunded(event: outbox.DomainEvent) -> None:
    """`order.refunded` {order_id, user_id, amount_paid, amount_refunded (cumulative)}: a
    full refund takes the order's resources out of the buyer's profile (the counts stay)."""
    p = event.payload
    paid, refunded = int(p.get("amount_paid") or 0), int(p.get("amount_refunded") or 0)
    if paid > 0 and refunded >= paid:
        service.order_refunded(event, order_id=p["order_id"], user_id=p["user_id"])


def after_batch() -> None:
    """After an SQS batch: the summaries its purchases put behind their count rows."""
    service.refresh_summaries()
