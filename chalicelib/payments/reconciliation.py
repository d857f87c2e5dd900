"""Reconciliation, on the 15-minute schedule and `make reconcile`: orders still pending
after their session's life are asked of Stripe and their facts applied, as the events would
have been; and the listing cards of resources sold lately are re-ranked, off the payment
path."""
from __future__ import annotations

import time

from chalicelib import db
from chalicelib.observability import logger
from chalicelib.payments import facts as stripe_facts
from chalicelib.payments.processing import apply
from chalicelib.payments.states import OrderStatus
from chalicelib.payments.store import OrderRecord

RECONCILE_AFTER_SECONDS = 35 * 60


RERANK_WINDOW_SECONDS = 90 * 60


def rerank_recent_sales(now: float | None = None) -> int:
    """Re-rank the listing cards of resources sold lately, and move their search postings
    when their sales reached another tier (their sales count is exact; the `popular` order
    and search ranking catch up here, every 15 minutes, off the payment path).
    Orders paid since the last run were created at most a session's life before it."""
    from chalicelib.catalog import indexing

    since_key = db.iso_at((now or time.time()) - RERANK_WINDOW_SECONDS)
    sold = {line.resource_id for status in (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED)
            for order in OrderRecord.by_status.query(OrderRecord.status_key(status),
                                                     OrderRecord.gsi3sk >= since_key)
            for line in order.lines}
    for resource_id in sorted(sold):
        indexing.rerank(resource_id)
    return len(sold)


def reconcile(now: float | None = None, limit: int = 200) -> dict[str, int]:
    """Orders still pending 35 minutes after checkout: ask Stripe about their session and
    apply what it says, as its events would have. Drift is repaired, never kept."""
    from chalicelib.payments import gateway

    cutoff_key = db.iso_at((now or time.time()) - RECONCILE_AFTER_SECONDS)
    seen = repaired = 0
    for order in OrderRecord.by_status.query(OrderRecord.status_key(OrderStatus.PENDING),
                                             OrderRecord.gsi3sk < cutoff_key, limit=limit):
        seen += 1
        if not order.session_id or order.flag:
            continue
        facts = stripe_facts.from_session(gateway.retrieve_session(order.session_id))
        if facts is None:
            continue
        if apply(order.order_id, facts) != "pending":
            repaired += 1
    logger.info("reconciled", extra={"pending_seen": seen, "repaired": repaired})
    return {"pending_seen": seen, "repaired": repaired, "reranked": rerank_recent_sales(now)}
