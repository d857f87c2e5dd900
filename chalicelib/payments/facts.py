"""What Stripe says about an order, as facts: a webhook event (`from_event`) or, for
reconciliation, a Checkout Session (`from_session`). Facts only grow; processing merges them
into the order and derives its status from them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.payments.store import PaymentLink


@dataclass
class Facts:
    """What one event (or a reconciliation) says about an order."""

    paid: tuple[int, str] | None = None  # (amount, currency)
    payment_intent: str | None = None
    failed: bool = False
    expired: bool = False
    charge_refunded: int | None = None  # cumulative, from the charge
    refund: tuple[str, int] | None = None  # one refund (id, amount)
    refund_failed: tuple[str, int, str] | None = None  # (id, amount, reason)
    dispute: tuple[str, str] | None = None  # (dispute id, open|won|lost)


def _order_for_payment(payment_intent: str | None, metadata: dict | None) -> str | None:
    if metadata and metadata.get("order_id"):
        return metadata["order_id"]
    if not payment_intent:
        return None
    link = None
    try:
        link = PaymentLink.get(PaymentLink.key(payment_intent), "PI", consistent_read=True)
    except PaymentLink.DoesNotExist:
        pass
    if link:
        return link.order_id
    # The payment's own event has not been processed yet (events arrive in any order): ask
    # Stripe, whose PaymentIntent carries the order id we gave the session.
    from chalicelib.payments import gateway

    intent = gateway.retrieve_payment_intent(payment_intent).to_dict()
    return (intent.get("metadata") or {}).get("order_id")


def from_event(event: dict) -> tuple[str | None, Facts]:
    """The order an event is about and what it says, or (None, _) for events we ignore."""
    kind = event.get("type", "")
    obj = event.get("data", {}).get("object", {}) or {}
    if kind.startswith("checkout.session."):
        order_id = (obj.get("metadata") or {}).get("order_id") or obj.get("client_reference_id")
        facts = Facts(payment_intent=obj.get("payment_intent"))
        paid = (int(obj.get("amount_total") or 0), str(obj.get("currency") or ""))
        if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
            if obj.get("payment_status") in ("paid", "no_payment_required"):
                facts.paid = paid
        elif kind == "checkout.session.async_payment_failed":
            facts.failed = True
        elif kind == "checkout.session.expired":
            facts.expired = True
        return order_id, facts
    if kind == "charge.refunded":
        order_id = _order_for_payment(obj.get("payment_intent"), obj.get("metadata"))
        return order_id, Facts(charge_refunded=int(obj.get("amount_refunded") or 0))
    if kind in ("refund.created", "refund.updated") and obj.get("status") == "succeeded":
        order_id = _order_for_payment(obj.get("payment_intent"), obj.get("metadata"))
        return order_id, Facts(refund=(obj["id"], int(obj.get("amount") or 0)))
    if kind in ("refund.failed", "refund.updated") and obj.get("status") in ("failed",
                                                                             "canceled"):
        order_id = _order_for_payment(obj.get("payment_intent"), obj.get("metadata"))
        reason = str(obj.get("failure_reason") or obj.get("status"))
        return order_id, Facts(refund_failed=(obj["id"], int(obj.get("amount") or 0), reason))
    if kind in ("charge.dispute.created", "charge.dispute.closed"):
        order_id = _order_for_payment(obj.get("payment_intent"), obj.get("metadata"))
        status = str(obj.get("status") or "")
        state = {"won": "won", "lost": "lost"}.get(status, "open") \
            if kind.endswith("closed") else "open"
        return order_id, Facts(dispute=(obj["id"], state))
    return None, Facts()


def from_session(session: Any) -> Facts | None:
    """What a retrieved Checkout Session says of its order: paid, or expired; None while it
    is still open (or complete and unpaid), which says nothing yet."""
    facts = Facts(payment_intent=session.payment_intent)
    if session.status == "complete" and session.payment_status in ("paid",
                                                                  "no_payment_required"):
        facts.paid = (session.amount_total, session.currency)
    elif session.status == "expired":
        facts.expired = True
    else:
        return None
    return facts
