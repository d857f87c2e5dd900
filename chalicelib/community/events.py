"""The community context's reactions to other contexts' domain events (delivered at least
once through the outbox): each notification is written with the event's applied marker in
one transaction, so a redelivery notifies nobody twice and sends no second email."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pynamodb.exceptions import TransactWriteError

from chalicelib import db, outbox
from chalicelib.community import notifications, reviews, store
from chalicelib.observability import logger


def _once(event: outbox.DomainEvent, subscriber: str, writes: Callable[[Any], Any]) -> bool:
    """`writes(tx)` with the event's marker; False when it was applied before."""
    marker = outbox.applied_marker("community_table", subscriber, event)
    try:
        with db.transaction() as tx:
            tx.save(marker, condition=type(marker).pk.does_not_exist())
            writes(tx)
    except TransactWriteError as exc:
        if db.cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
            return False
        raise
    return True


def on_resource_reviewed(event: outbox.DomainEvent) -> None:
    """`resource.reviewed` (the catalog): the creator told that the resource (or its new
    file version) was approved or rejected, in the app and by email."""
    p = event.payload
    approved = p.get("outcome") == "approved"
    what = "new version of " if p.get("new_version") else ""
    title = f"The {what}{p.get('title')} was {'approved' if approved else 'rejected'}"
    body = None if approved else f"Reason: {p.get('reason') or 'not given'}"
    kind = "resource_approved" if approved else "resource_rejected"
    if _once(event, "notify_reviewed", lambda tx: notifications.add(
            tx, p["creator_id"], kind, title, body=body,
            link=f"/studio/resources/{p['resource_id']}", at=event.at)):
        notifications.email(p["creator_id"], title, f"{title}.\n\n{body or ''}".strip())


def on_order_paid(event: outbox.DomainEvent) -> None:
    """`order.paid`: the buyer's in-app receipt (the email receipt is the payments')."""
    p = event.payload
    amount = f"{int(p.get('amount') or 0) / 100:.2f} {str(p.get('currency') or '').upper()}"
    _once(event, "notify_paid", lambda tx: notifications.add(
        tx, p["user_id"], "payment", f"Payment received: {amount}",
        body="Your purchase is in your library.", link=f"/me/orders/{p['order_id']}",
        at=event.at))


def on_order_refunded(event: outbox.DomainEvent) -> None:
    """`order.refunded` {amount_paid, amount_refunded (so far), resource_ids}: the buyer
    told; once the order is refunded in full, the buyer's reviews of its resources are
    hidden (their ratings leave the averages: only buyers rate)."""
    p = event.payload
    paid, refunded = int(p.get("amount_paid") or 0), int(p.get("amount_refunded") or 0)
    amount = f"{refunded / 100:.2f} {str(p.get('currency') or '').upper()}"
    _once(event, "notify_refunded", lambda tx: notifications.add(
        tx, p["user_id"], "refund", f"Refunded: {amount}",
        body="The refund is on its way to your payment method.",
        link=f"/me/orders/{p['order_id']}", at=event.at))
    if paid and refunded >= paid:
        for resource_id in p.get("resource_ids") or ():
            _withdraw_review(p["user_id"], resource_id)


def _withdraw_review(user_id: str, resource_id: str) -> None:
    """Hide a refunded buyer's review (idempotent: a hidden one stays as it is)."""
    for _ in range(reviews.ATTEMPTS):
        record = store.review(resource_id, reviews.review_id(resource_id, user_id))
        if record is None or record.status != "visible":
            return
        if reviews.set_visible(record, False):
            logger.info("review withdrawn after a full refund",
                        extra={"resource_id": resource_id})
            return


def _reward_text(p: dict, value: int) -> str:
    if p.get("kind") == "points":
        return f"{value} points"
    return f"{value / 100:.2f} {str(p.get('currency') or '').upper()}"


def on_referral_rewarded(event: outbox.DomainEvent) -> None:
    """`referral.rewarded`: the referrer told what a referred buyer's first order earned."""
    p = event.payload
    value = int(p.get("points") or p.get("commission") or 0)
    _once(event, "notify_referral", lambda tx: notifications.add(
        tx, p["referrer_id"], "referral", f"Referral reward: {_reward_text(p, value)}",
        body="Someone you referred made their first purchase.", link="/me/referral",
        at=event.at))


def on_referral_reversed(event: outbox.DomainEvent) -> None:
    """`referral.reversed`: the referrer told what a refund took back of a reward."""
    p = event.payload
    _once(event, "notify_referral_reversed", lambda tx: notifications.add(
        tx, p["referrer_id"], "referral",
        f"Referral reward reversed: {_reward_text(p, int(p.get('step') or 0))}",
        body="A referred purchase was refunded.", link="/me/referral", at=event.at))
