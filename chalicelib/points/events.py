"""The points context's reactions to the payments context's domain events (delivered at
least once through the outbox: each reaction applies once, by the state it leaves: the
order's facts, the hold's status, the ledger's `K#` markers)."""
from __future__ import annotations

from chalicelib import outbox
from chalicelib.points import service


def on_order_paid(event: outbox.DomainEvent) -> None:
    """`order.paid` {order_id, user_id, currency, amount (paid, minor units), resource_ids,
    lines, points_used? (0 when absent), coupon_code?}: the hold consumed, points earned."""
    p = event.payload
    service.order_paid(order_id=p["order_id"], user_id=p["user_id"],
                       currency=p.get("currency"), amount=int(p.get("amount") or 0),
                       points_used=int(p.get("points_used") or 0),
                       paid_at=p.get("paid_at") or event.at)


def on_order_ended(event: outbox.DomainEvent) -> None:
    """`order.ended` {order_id, user_id, status: expired | failed}: the hold released."""
    p = event.payload
    service.order_ended(order_id=p["order_id"], user_id=p["user_id"])


def on_order_refunded(event: outbox.DomainEvent) -> None:
    """`order.refunded` {order_id, user_id, currency, amount_paid, amount_refunded (cumulative
    so far)}: earned points taken back and used points given back, in proportion."""
    p = event.payload
    service.order_refunded(order_id=p["order_id"], user_id=p["user_id"],
                           amount_paid=int(p.get("amount_paid") or 0),
                           refunded=int(p.get("amount_refunded") or 0))


def on_membership_paid(event: outbox.DomainEvent) -> None:
    """`membership.paid` {user_id, invoice_id, bonus_points, ...} (the memberships context):
    the plan's bonus points for the paid period, once per invoice."""
    p = event.payload
    points = int(p.get("bonus_points") or 0)
    if points > 0 and p.get("invoice_id"):
        service.earn(p["user_id"], points, "member_bonus", f"member_bonus#{p['invoice_id']}",
                     at=event.at, note=p.get("plan_id"))


def on_referral_rewarded(event: outbox.DomainEvent) -> None:
    """`referral.rewarded` {referrer_id, order_id, kind, points} (the referrals context): a
    points reward credited to the referrer, once per order."""
    p = event.payload
    if p.get("kind") == "points" and int(p.get("points") or 0) > 0:
        service.earn(p["referrer_id"], int(p["points"]), "referral",
                     f"referral#{p['order_id']}", at=event.at, order_id=p["order_id"])


def on_referral_reversed(event: outbox.DomainEvent) -> None:
    """`referral.reversed` {referrer_id, order_id, kind, step, reversed (so far)}: the part
    of a points reward a refund took back, once per step (what is missing becomes debt)."""
    p = event.payload
    if p.get("kind") == "points" and int(p.get("step") or 0) > 0:
        service.take_back(p["referrer_id"], int(p["step"]), "referral_reversed",
                          f"referral_reversed#{p['order_id']}#{int(p['reversed'])}",
                          order_id=p["order_id"])
