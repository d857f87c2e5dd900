"""Memberships through Stripe Billing. A buyer subscribes in a Checkout Session in
`subscription` mode; from then on the membership is what Stripe's subscription says. Every
subscription event (`checkout.session.completed` for a subscription, `customer.subscription.*`,
`invoice.*`) makes us retrieve the subscription and store that snapshot, under the condition
that no later retrieval was stored: so events in any order, twice, or late converge on
Stripe's current state, and state follows Stripe's periods, never our clock alone.

Access: members-only resources are open until `access_until`: the end of the paid period
while the subscription is active; after a failed renewal (past_due) a grace of GRACE_DAYS
from the unpaid period's start; when Stripe ends the subscription, its end."""
from __future__ import annotations

import time
from typing import Any

from pynamodb.exceptions import TransactWriteError

from chalicelib import db, outbox, stripe_client
from chalicelib.config import settings
from chalicelib.errors import Conflict, NotFound, ProviderUnavailable, Refused
from chalicelib.memberships import plans, store
from chalicelib.memberships.schemas import MembershipOut
from chalicelib.memberships.store import Membership, PlanRecord, SubscriptionLink
from chalicelib.observability import logger
from chalicelib.pricing import methods

GRACE_DAYS = 3
LIVE = ("active", "trialing", "past_due")
ENDED = ("canceled", "unpaid", "incomplete_expired")


class AlreadyMember(Conflict):
    code = "already_member"
    message = "You already have a membership; change its plan instead."


class NotMember(NotFound):
    code = "not_member"
    message = "You have no membership."


class PlanNotSynced(Conflict):
    code = "plan_not_synced"
    message = "This plan cannot be bought yet in this interval and currency."


class BillingUnavailable(ProviderUnavailable):
    message = "The payment provider is unavailable; nothing was changed. Try again."


def _iso(seconds: int | float | None) -> str | None:
    return None if seconds is None else db.iso_at(float(seconds))


def is_live(m: Membership | None, now_iso: str) -> bool:
    """Whether the membership opens members-only resources at `now_iso`."""
    return bool(m and m.access_until and m.access_until > now_iso and m.status not in ENDED)


def out(m: Membership, plan_name: str | None = None) -> MembershipOut:
    return MembershipOut(
        subscription_id=m.subscription_id, plan_id=m.plan_id,
        plan_name=plan_name or m.plan_name, level=int(m.level),
        status=m.status, interval=m.interval, currency=m.currency,
        current_period_start=m.period_start, current_period_end=m.period_end,
        cancel_at_period_end=bool(m.cancel_at_period_end), access_until=m.access_until,
        active=is_live(m, db.now_iso()), discount_percent=int(m.discount_percent),
        started_at=m.started_at, ended_at=m.ended_at)


def mine(user_id: str) -> MembershipOut | None:
    """The buyer's membership, or None: one GetItem."""
    m = store.get_membership(user_id)
    return out(m) if m else None


def subscribe(user_id: str, email: str | None, plan_id: str, interval: str,
              currency: str | None) -> tuple[str, str]:
    """Open a Checkout Session in subscription mode for the plan; returns (session id, url).
    Nothing is stored: the membership arrives with the subscription's events."""
    plan = plans.get(plan_id)
    current = store.get_membership(user_id)
    if is_live(current, db.now_iso()):
        raise AlreadyMember()
    prices = plans.prices_of(plan)
    if not plan.active or interval not in prices:
        raise PlanNotSynced()
    currency = currency or next(iter(prices[interval]))
    price_id = plans.plain(plan.stripe_prices).get(f"{interval}:{currency}")
    if currency not in prices[interval] or not price_id:
        raise PlanNotSynced()
    cfg = settings()
    metadata = {"user_id": user_id, "plan_id": plan_id, "interval": interval}
    payment_methods = methods.for_checkout(currency, "subscription")
    params: dict[str, Any] = {
        "mode": "subscription", "line_items": [{"price": price_id, "quantity": 1}],
        "client_reference_id": user_id, "metadata": {**metadata, "kind": "membership"},
        "subscription_data": {"metadata": metadata},
        "payment_method_types": payment_methods,
        "success_url": f"{cfg.storefront_url}/membership?checkout=success",
        "cancel_url": f"{cfg.storefront_url}/membership?checkout=cancelled",
    }
    if current is not None and current.customer_id:
        params["customer"] = current.customer_id
    elif email:
        params["customer_email"] = email
    try:
        session = stripe_client.client().v1.checkout.sessions.create(params=params)
    except stripe_client.stripe_errors() as exc:
        logger.exception("subscription session not created", extra={"user_id": user_id})
        raise BillingUnavailable() from exc
    return session.id, session.url


def handles(event: dict) -> bool:
    """Whether a Stripe event is about a subscription (ours to apply)."""
    kind = str(event.get("type", ""))
    obj = (event.get("data") or {}).get("object") or {}
    if kind.startswith(("customer.subscription.", "invoice.")):
        return True
    return kind.startswith("checkout.session.") and obj.get("mode") == "subscription"


def _subscription_of(obj: dict) -> str | None:
    if obj.get("object") == "subscription":
        return obj.get("id")
    sub = obj.get("subscription")
    if isinstance(sub, dict):
        sub = sub.get("id")
    if not sub:
        details = ((obj.get("parent") or {}).get("subscription_details") or {})
        sub = details.get("subscription")
    return sub


def apply_event(event: dict) -> dict:
    """Apply one Stripe subscription event: retrieve the subscription, store what it says."""
    obj = (event.get("data") or {}).get("object") or {}
    subscription_id = _subscription_of(obj)
    if not subscription_id:
        return {"event_id": event.get("id"), "outcome": "ignored"}
    sub = stripe_client.client().v1.subscriptions.retrieve(subscription_id).to_dict()
    paid_invoice = obj if event.get("type") == "invoice.paid" else None
    status = _store(sub, paid_invoice)
    return {"event_id": event.get("id"), "subscription_id": subscription_id,
            "status": status or "ignored"}


def _period(sub: dict) -> tuple[int | None, int | None]:
    items = ((sub.get("items") or {}).get("data") or [{}])
    item = items[0] if items else {}
    return (item.get("current_period_start") or sub.get("current_period_start"),
            item.get("current_period_end") or sub.get("current_period_end"))


def _price_of(sub: dict) -> dict:
    items = ((sub.get("items") or {}).get("data") or [])
    return (items[0].get("price") or {}) if items else {}


def _access_until(sub: dict, before: Membership | None) -> str | None:
    start, end = _period(sub)
    status = sub.get("status")
    held = before.access_until if before else None
    if status in ("active", "trialing"):
        return _iso(end)
    if status == "past_due" and start is not None:
        grace = _iso(start + GRACE_DAYS * 86400)
        return max(filter(None, (held, grace)))
    if status in ENDED:
        ended = _iso(sub.get("ended_at") or sub.get("canceled_at") or time.time())
        return min(filter(None, (held, ended))) if held else None
    return held  # incomplete: nothing paid yet


def _store(sub: dict, paid_invoice: dict | None) -> str | None:
    metadata = sub.get("metadata") or {}
    price = _price_of(sub)
    user_id = metadata.get("user_id") or store.user_of_subscription(sub["id"])
    plan_id = metadata.get("plan_id") or (price.get("metadata") or {}).get("plan_id")
    if not user_id or not plan_id:
        logger.warning("a subscription that is not ours", extra={"subscription": sub["id"]})
        return None
    plan = store.get_plan(plan_id)
    synced_ms = int(time.time() * 1000)
    for _ in range(4):
        before = store.get_membership(user_id)
        if before is not None and before.subscription_id != sub["id"] and \
                is_live(before, db.now_iso()) and sub.get("status") not in LIVE:
            return before.status  # an old subscription's news; the live one stands
        start, end = _period(sub)
        now = db.now_iso()
        recurring = price.get("recurring") or {}
        m = Membership(
            pk=Membership.key(user_id), user_id=user_id, plan_id=plan_id,
            plan_name=plan.name if plan else plan_id,
            level=int(plan.level) if plan else 1,
            discount_percent=int(plan.discount_percent) if plan else 0,
            interval=recurring.get("interval") or metadata.get("interval") or "month",
            currency=str(price.get("currency") or sub.get("currency") or ""),
            price_id=price.get("id"), subscription_id=sub["id"],
            customer_id=sub.get("customer") if isinstance(sub.get("customer"), str) else None,
            status=str(sub.get("status")), period_start=_iso(start), period_end=_iso(end),
            cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
            access_until=_access_until(sub, before if before and
                                       before.subscription_id == sub["id"] else None),
            started_at=before.started_at if before and before.subscription_id == sub["id"]
            else _iso(sub.get("start_date") or sub.get("created")) or now,
            ended_at=_iso(sub.get("ended_at")), synced_ms=synced_ms, updated_at=now)
        if before is not None and int(before.synced_ms or 0) > synced_ms:
            return None  # a later retrieval is stored already
        _count(before, m, price, now)
        events = _events(before, m, plan, paid_invoice, now)
        # Conditioned on the item read, so the gauges' differences are exact.
        condition = Membership.pk.does_not_exist() if before is None else (
            Membership.synced_ms == before.synced_ms)
        try:
            with db.transaction() as tx:
                tx.save(m, condition=condition)
                tx.save(SubscriptionLink(pk=SubscriptionLink.key(sub["id"]), user_id=user_id))
                for item in events:
                    tx.save(item)
        except TransactWriteError as exc:
            codes = db.cancellation_codes(exc)
            if codes[:1] == ["ConditionalCheckFailed"] or "TransactionConflict" in codes:
                continue
            raise
        outbox.publish(events)
        return m.status
    raise RuntimeError(f"membership of {user_id} kept changing")


def _mrr(price: dict) -> int:
    """A price's monthly recurring revenue in minor units (a year's price over 12)."""
    recurring = price.get("recurring") or {}
    amount = int(price.get("unit_amount") or 0) * int(recurring.get("interval_count") or 1)
    return round(amount / 12) if recurring.get("interval") == "year" else amount


def _count(before: Membership | None, m: Membership, price: dict, now: str) -> None:
    """What the gauges count of `m`: a membership counts from the moment it is live until
    Stripe ends the subscription (a failed renewal still counts until then)."""
    was = before.counted_mrr if before else None
    counts = m.status not in ENDED and (is_live(m, now) or was is not None)
    m.counted_mrr = _mrr(price) if counts else None
    m.counted_currency = m.currency if counts else None


def _standing(before: Membership | None, m: Membership) -> dict | None:
    """The change in active members and MRR (per currency) from `before` to `m`."""
    old, new = (before.counted_mrr if before else None), m.counted_mrr
    mrr: dict[str, int] = {}
    if old is not None and before is not None:
        mrr[str(before.counted_currency)] = -int(old)
    if new is not None:
        mrr[str(m.counted_currency)] = mrr.get(str(m.counted_currency), 0) + int(new)
    active = (new is not None) - (old is not None)
    mrr = {currency: delta for currency, delta in mrr.items() if delta}
    return {"active_delta": active, "mrr_delta": mrr} if active or mrr else None


def _events(before: Membership | None, m: Membership, plan: PlanRecord | None,
            paid_invoice: dict | None, now: str) -> list[Any]:
    """What the change reports: started, paid (an invoice, with the plan's bonus points),
    changed plan, cancelled (ended)."""
    base = {"user_id": m.user_id, "plan_id": m.plan_id, "subscription_id": m.subscription_id,
            "interval": m.interval, "currency": m.currency}
    was_live = is_live(before, now) if before else False
    live = is_live(m, now)
    events = []
    if live and (not was_live or (before and before.subscription_id != m.subscription_id)):
        events.append(outbox.record("memberships_table", "membership.started", base, now))
    if paid_invoice is not None:
        months = 12 if m.interval == "year" else 1
        events.append(outbox.record("memberships_table", "membership.paid", {
            **base, "invoice_id": paid_invoice.get("id"),
            "amount": int(paid_invoice.get("amount_paid") or 0),
            "billing_reason": paid_invoice.get("billing_reason"),
            "bonus_points": int(plan.monthly_points if plan else 0) * months}, now))
    if before and was_live and live and before.plan_id != m.plan_id:
        events.append(outbox.record("memberships_table", "membership.changed",
                                    {**base, "from_plan_id": before.plan_id}, now))
    if m.status in ENDED and (before is None or before.status not in ENDED):
        events.append(outbox.record("memberships_table", "membership.cancelled", base, now))
    standing = _standing(before, m)
    if standing:
        events.append(outbox.record("memberships_table", "membership.standing",
                                    {**base, **standing}, now))
    return events


def _update_subscription(user_id: str, params: dict, action: str) -> MembershipOut:
    m = store.get_membership(user_id)
    if m is None or m.status in ENDED:
        raise NotMember()
    # One change per state the buyer saw: a double click is one request to Stripe, and the
    # same action after another change (cancel, resume, cancel) is a new one.
    key = f"{action}-{m.subscription_id}-{int(m.synced_ms)}"
    try:
        sub = stripe_client.client().v1.subscriptions.update(
            m.subscription_id, params=params, options={"idempotency_key": key}).to_dict()
    except stripe_client.stripe_errors() as exc:
        if stripe_client.is_refusal(exc):
            raise Refused(stripe_client.user_message(exc), code="subscription_refused") \
                from exc
        raise BillingUnavailable() from exc
    _store(sub, None)
    fresh = store.get_membership(user_id)
    assert fresh is not None
    return out(fresh)


def cancel(user_id: str) -> MembershipOut:
    """Cancel at the period's end: access stays until then (Stripe ends it)."""
    return _update_subscription(user_id, {"cancel_at_period_end": True}, "cancel")


def resume(user_id: str) -> MembershipOut:
    """Take back a cancellation while the period lasts."""
    m = store.get_membership(user_id)
    if m is None or not is_live(m, db.now_iso()):
        raise NotMember()
    return _update_subscription(user_id, {"cancel_at_period_end": False}, "resume")


def change(user_id: str, plan_id: str, interval: str) -> MembershipOut:
    """Move to another plan or interval now, Stripe prorating the difference and invoicing
    it at once (an upgrade is paid for now; a downgrade is credited)."""
    m = store.get_membership(user_id)
    if m is None or not is_live(m, db.now_iso()):
        raise NotMember()
    plan = plans.get(plan_id)
    price_id = plans.plain(plan.stripe_prices).get(f"{interval}:{m.currency}")
    if not plan.active or not price_id:
        raise PlanNotSynced()
    if price_id == m.price_id:
        return out(m)
    sub = stripe_client.client().v1.subscriptions.retrieve(m.subscription_id).to_dict()
    item_id = sub["items"]["data"][0]["id"]
    return _update_subscription(user_id, {
        "items": [{"id": item_id, "price": price_id}], "proration_behavior": "always_invoice",
        "metadata": {"user_id": user_id, "plan_id": plan_id, "interval": interval}},
        f"change-{price_id}")

