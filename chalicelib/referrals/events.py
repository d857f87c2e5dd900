"""The referrals context's reactions to the payments context's domain events (delivered at
least once through the outbox; each applies once by the state it leaves: the referred-by
marker, the reward's `reversed`). An order without a referrer costs nothing here."""
from __future__ import annotations

from chalicelib import outbox
from chalicelib.referrals import rewards


def on_order_paid(event: outbox.DomainEvent) -> None:
    """`order.paid` {order_id, user_id, currency, amount, paid_at, referrer_id?,
    first_paid?}: the referrer rewarded when this is the buyer's first paid order."""
    p = event.payload
    if p.get("referrer_id") and p.get("first_paid"):
        rewards.reward_first_order(p["referrer_id"], p["user_id"], p["order_id"],
                                   p.get("currency"), int(p.get("amount") or 0),
                                   p.get("paid_at") or event.at)


def on_order_refunded(event: outbox.DomainEvent) -> None:
    """`order.refunded` {order_id, user_id, amount_paid, amount_refunded (so far),
    referrer_id?}: the reward taken back in proportion."""
    p = event.payload
    if p.get("referrer_id"):
        rewards.reverse(p["user_id"], p["order_id"], int(p.get("amount_paid") or 0),
                        int(p.get("amount_refunded") or 0))
