"""Payment processing, the commit engine: the facts of a Stripe event (payments.facts) are
merged into their order (paid, failed, expired, refunded so far, dispute state). Facts only
grow, and the order's status and every entitlement are derived from them, so duplicate,
concurrent and out-of-order deliveries converge on the same final state. Each change commits
the order, its lines, the entitlements, the ledger entries and the payment link in one
DynamoDB transaction, under the order's version."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.update import Action

from chalicelib import db, outbox
from chalicelib.observability import logger, metrics
from chalicelib.payments import facts as stripe_facts
from chalicelib.payments.facts import Facts
from chalicelib.payments.states import ORDER_TRANSITIONS, Access, OrderStatus, access_for
from chalicelib.payments.store import Entitlement, LedgerEntry, OrderLine, OrderRecord, PaymentLink


class UnknownOrder(Exception):
    """The event is about no order of ours: logged and acknowledged, never retried."""


def load(order_id: str) -> OrderRecord | None:
    try:
        return OrderRecord.get(OrderRecord.key(order_id), "META", consistent_read=True)
    except OrderRecord.DoesNotExist:
        return None


def derive(o: OrderRecord) -> OrderStatus:
    """The status the facts of `o` amount to. Never backwards: every fact only adds."""
    if o.paid_at:
        if o.dispute_status in ("open", "lost"):
            return OrderStatus.DISPUTED
        if o.amount_refunded >= (o.amount_paid or 0) and o.amount_refunded > 0:
            return OrderStatus.REFUNDED
        if o.amount_refunded > 0:
            return OrderStatus.PARTIALLY_REFUNDED
        return OrderStatus.PAID
    if o.failed_at:
        return OrderStatus.FAILED
    if o.expired_at:
        return OrderStatus.EXPIRED
    return OrderStatus.PENDING


def _merge(o: OrderRecord, facts: Facts, now: str) -> tuple[dict[str, Any], list[LedgerEntry]]:
    """The attribute changes the facts bring, and the ledger entries they create."""
    changes: dict[str, Any] = {}
    ledger: list[LedgerEntry] = []
    if facts.payment_intent and not o.payment_intent:
        changes["payment_intent"] = facts.payment_intent
    if facts.paid and not o.paid_at and not o.flag:
        amount, currency = facts.paid
        if amount != int(o.total) or currency != o.currency:
            changes["flag"] = f"amount_mismatch: paid {amount} {currency}, " \
                              f"order is {int(o.total)} {o.currency}"
            metrics.add_metric(name="PaymentMismatch", unit="Count", value=1)
            logger.error("payment does not match the order", extra={"order_id": o.order_id})
        else:
            changes.update(paid_at=now, amount_paid=amount)
            ledger.append(LedgerEntry(pk=LedgerEntry.key(o.order_id), sk="payment",
                                      order_id=o.order_id, amount=amount, currency=currency,
                                      kind="payment", at=now))
    if facts.failed and not o.failed_at:
        changes["failed_at"] = now
    if facts.expired and not o.expired_at:
        changes["expired_at"] = now
    refunds = db.plain_map(o.refunds)
    charge_refunded = int(o.charge_refunded or 0)
    if facts.charge_refunded is not None and facts.charge_refunded > charge_refunded:
        charge_refunded = changes["charge_refunded"] = facts.charge_refunded
    if facts.refund and facts.refund[0] not in refunds:
        refunds[facts.refund[0]] = facts.refund[1]
        changes["refunds"] = refunds
    settled = facts.refund or facts.refund_failed
    pending = o.pending_refunds()
    if settled and settled[0] in pending:
        changes["refunds_pending"] = {OrderRecord.pending_entry(refund_id, amount)
                                      for refund_id, amount in pending.items()
                                      if refund_id != settled[0]}
    if facts.refund_failed:
        refund_id, amount, reason = facts.refund_failed
        failures = set(o.refund_failures or ())
        entry = OrderRecord.failure_entry(refund_id, amount, reason)
        if entry not in failures:
            changes["refund_failures"] = failures | {entry}
            logger.error("an accepted refund failed at Stripe",
                         extra={"order_id": o.order_id, "refund_id": refund_id,
                                "reason": reason})
    refunded = max(charge_refunded, sum(int(v) for v in refunds.values()))
    if refunded > int(o.amount_refunded or 0):
        changes["amount_refunded"] = refunded
        ledger.append(LedgerEntry(pk=LedgerEntry.key(o.order_id),
                                  sk=LedgerEntry.refund_key(refunded), order_id=o.order_id,
                                  amount=-(refunded - int(o.amount_refunded or 0)),
                                  currency=o.currency, kind="refund", at=now))
    if facts.dispute:
        dispute_id, state = facts.dispute
        rank = {None: 0, "open": 1, "won": 2, "lost": 2}
        if rank[state] > rank.get(o.dispute_status, 0):
            changes.update(dispute_id=dispute_id, dispute_status=state)
            if state == "lost":
                ledger.append(LedgerEntry(pk=LedgerEntry.key(o.order_id), sk="dispute#lost",
                                          order_id=o.order_id, amount=-int(o.amount_paid or 0),
                                          currency=o.currency, kind="chargeback", at=now))
    return changes, ledger


def entitlements(o: OrderRecord, access: Access, now: str, source: str) -> list[Entitlement]:
    """The entitlement each line of `o` gives, with `access`."""
    return [Entitlement(pk=Entitlement.key(o.user_id), sk=Entitlement.sort_key(line.resource_id),
                        user_id=o.user_id, resource_id=line.resource_id, order_id=o.order_id,
                        source=source, status=access, granted_at=now, updated_at=now)
            for line in o.lines]


class _EntitlementTaken(Exception):
    """Entitlements of these resources belong to another order of the same buyer."""

    def __init__(self, resource_ids: set[str]) -> None:
        super().__init__(sorted(resource_ids))
        self.resource_ids = resource_ids


def duplicate_share(o: OrderRecord, paid: int, resource_ids: set[str]) -> int:
    """What an order that paid `paid` paid for `resource_ids`: their lines as the pricing
    engine priced them (every discount applied per line), never more than was paid. Orders
    priced before the engine kept no line totals: their prices less their share of the
    order's discount, rounded half up."""
    lines = [line for line in o.lines if line.resource_id in resource_ids]
    if all(line.total is not None for line in o.lines):
        return min(paid, sum(int(line.total) for line in lines))
    prices = sum(int(line.unit_amount) for line in lines)
    subtotal = int(o.subtotal) or 1
    return min(paid, (2 * prices * int(o.total) + subtotal) // (2 * subtotal))


def _note_duplicates(o: OrderRecord, changes: dict[str, Any], skip: set[str]) -> None:
    """A paid order that could not grant `skip` (owned through another order) owes their
    share back: recorded with the changes, so it commits with the payment."""
    known = set(o.duplicates or ())
    paid = changes.get("amount_paid", o.amount_paid)
    if not skip - known or paid is None:
        return
    if o.duplicate_refund_id:
        # One automatic refund per order: a duplicate found after it is for a person.
        logger.error("another duplicate after the duplicate refund",
                     extra={"order_id": o.order_id, "resources": sorted(skip - known)})
        return
    changes.update(duplicates=known | skip,
                   duplicate_refund_due=duplicate_share(o, int(paid), known | skip))


def paid_before(user_id: str, order_id: str, paid_at: str) -> bool:
    """Whether the buyer had an order other than `order_id` paid (an amount above 0) before
    `paid_at`: one Query of the buyer's orders, the paid ones filtered in. Asked only of a
    referred order (`first_paid` of its `order.paid`: a referral rewards the first)."""
    results = OrderRecord.by_user.query(
        OrderRecord.user_key(user_id),
        filter_condition=(OrderRecord.paid_at < paid_at) & (OrderRecord.amount_paid > 0))
    return any(o.order_id != order_id for o in results)


def _paid_event(o: OrderRecord, now: str) -> Any:
    referral = {"referrer_id": o.referrer_id, "first_paid": not paid_before(
        o.user_id, o.order_id, o.paid_at or now)} if o.referrer_id else {}
    return outbox.record("orders_table", "order.paid", {**referral,
        "order_id": o.order_id, "user_id": o.user_id, "currency": o.currency,
        "amount": int(o.amount_paid or 0), "total": int(o.total),
        "coupon_code": o.coupon_code, "points_used": int(o.points_used or 0),
        "paid_at": o.paid_at or now,
        "resource_ids": [line.resource_id for line in o.lines], "lines": _event_lines(o)}, now)


def _event_lines(o: OrderRecord) -> list[dict[str, Any]]:
    """The lines as `order.paid` and `order.refunded` carry them (revenue splits by them)."""
    return [{"resource_id": line.resource_id, "creator_id": line.creator_id,
             "unit_amount": int(line.unit_amount)} for line in o.lines]


def _events(o: OrderRecord, changes: dict[str, Any], status: str, now: str) -> list[Any]:
    """The domain events a change of `o` reports, written in its transaction: never lost,
    never twice. `order.ended` when it ends unpaid (its coupon and points are released),
    `order.refunded` with the refunded total so far (subscribers work from totals, so a
    redelivery or an out-of-order one changes nothing)."""
    events = []
    if "paid_at" in changes:
        events.append(_paid_event(o, now))
    if status in (OrderStatus.EXPIRED, OrderStatus.FAILED) and \
            ("expired_at" in changes or "failed_at" in changes):
        events.append(outbox.record("orders_table", "order.ended", {
            "order_id": o.order_id, "user_id": o.user_id, "status": status,
            "coupon_code": o.coupon_code, "points_used": int(o.points_used or 0)}, now))
    if "amount_refunded" in changes:
        events.append(outbox.record("orders_table", "order.refunded", {
            "order_id": o.order_id, "user_id": o.user_id, "currency": o.currency,
            "amount_paid": int(o.amount_paid or 0),
            "amount_refunded": int(o.amount_refunded), "points_used": int(o.points_used or 0),
            "referrer_id": o.referrer_id,
            "resource_ids": [line.resource_id for line in o.lines],
            "lines": _event_lines(o)}, now))
    return events


def _commit(o: OrderRecord, changes: dict[str, Any], ledger: list[LedgerEntry],
            previous_access: str, now: str, skip: set[str]) -> str:
    """Write the merged order with everything that follows from it, in one transaction.
    Entitlements of `skip` resources belong to another order and are left alone."""
    for name, value in changes.items():
        setattr(o, name, value)
    status = derive(o)
    access = access_for(status, o.dispute_status)
    # An empty set cannot be stored: the attribute goes instead.
    actions = [getattr(OrderRecord, name).remove() if value == set()
               else getattr(OrderRecord, name).set(value) for name, value in changes.items()]
    actions += [OrderRecord.status.set(status), OrderRecord.updated_at.set(now),
                # A flagged order waits for a person, not for reconciliation.
                OrderRecord.gsi3pk.set(OrderRecord.status_key("flagged" if o.flag else status))]
    granted: list[str] = []
    events: list[Any] = []
    try:
        with db.transaction() as tx:
            tx.update(o, actions=actions, condition=OrderRecord.status.is_in(
                *ORDER_TRANSITIONS[status]))
            for line in o.lines:
                tx.update(OrderLine(pk=o.pk, sk=OrderLine.sort_key(line.resource_id)),
                          actions=[OrderLine.status.set(status)])
            if access != previous_access:
                for ent in entitlements(o, access, now, "purchase"):
                    if ent.resource_id in skip:
                        continue
                    granted.append(ent.resource_id)
                    # Ours, or not yet anyone's (or a dead one of another order): never take
                    # over a live entitlement another order of the buyer granted.
                    tx.save(ent, condition=Entitlement.sk.does_not_exist()
                            | (Entitlement.order_id == o.order_id)
                            | (Entitlement.status == Access.REVOKED))
            for entry in ledger:
                tx.save(entry, condition=LedgerEntry.sk.does_not_exist())
            events += _events(o, changes, status, now)
            for item in events:
                tx.save(item)
            if changes.get("payment_intent"):
                tx.save(PaymentLink(pk=PaymentLink.key(changes["payment_intent"]),
                                    order_id=o.order_id))
            if "duplicates" in changes:
                from chalicelib.catalog import audit

                tx.save(audit.entry("system", "refund_duplicate", o.order_id, "duplicate",
                                    {"resource_ids": sorted(changes["duplicates"]),
                                     "amount": changes["duplicate_refund_due"],
                                     "currency": o.currency}, target_type="order"))
    except TransactWriteError as exc:
        codes = db.cancellation_codes(exc)
        first = 1 + len(o.lines)
        window = codes[first:first + len(granted)]
        taken = {rid for rid, code in zip(granted, window, strict=False)
                 if code == "ConditionalCheckFailed"}
        if taken and codes[0] != "ConditionalCheckFailed":
            raise _EntitlementTaken(taken) from exc
        raise
    outbox.publish(events)
    return status


def apply(order_id: str, facts: Facts) -> str | None:
    """Merge `facts` into the order and commit what follows; returns the new status. Retried
    on a concurrent change of the same order, recomputed from fresh state."""
    skip: set[str] = set()
    for _ in range(8):
        o = load(order_id)
        if o is None:
            raise UnknownOrder(order_id)
        before = o.status
        previous_access = access_for(before, o.dispute_status)
        now = db.now_iso()
        changes, ledger = _merge(o, facts, now)
        skip |= set(o.duplicates or ())
        _note_duplicates(o, changes, skip)
        if not changes:
            _refund_duplicates(o)
            return before
        try:
            status = _commit(o, changes, ledger, previous_access, now, skip)
        except _EntitlementTaken as taken:
            logger.warning("resource already owned through another order",
                           extra={"order_id": order_id, "resources": sorted(taken.resource_ids)})
            skip |= taken.resource_ids
            continue
        except TransactWriteError as exc:
            codes = db.cancellation_codes(exc)
            if "ConditionalCheckFailed" in codes or "TransactionConflict" in codes:
                continue
            raise
        _record_metrics(o, before, status, changes)
        _refund_duplicates(o)
        return status
    raise RuntimeError(f"order {order_id} kept changing; the event will be retried")


def _refund_duplicates(o: OrderRecord) -> None:
    """Give back what the order owes for duplicates, once: Stripe's idempotency key is the
    order's, and the refund id is recorded on the order. A provider failure raises, so the
    event is retried (and, failing for good, waits in the dead-letter queue)."""
    due = o.unissued_duplicate_refund()
    if not due or not o.payment_intent:
        return
    from pynamodb.exceptions import UpdateError

    from chalicelib.payments import gateway

    params = {"payment_intent": o.payment_intent, "amount": due, "reason": "duplicate",
              "metadata": {"order_id": o.order_id, "resource_ids": ",".join(
                  sorted(o.duplicates or ()))[:450]}}
    try:
        created = gateway.create_refund(params, idempotency_key=f"duplicate-{o.order_id}")
    except gateway.stripe_errors() as exc:
        if not gateway.is_refusal(exc):
            raise
        # Refused for good (e.g. refunded in full at Stripe already): a person decides.
        logger.error("duplicate refund refused", extra={"order_id": o.order_id,
                                                        "error": str(exc)[:300]})
        metrics.add_metric(name="DuplicateRefundRefused", unit="Count", value=1)
        refused = OrderRecord.failure_entry("duplicate", due, "refused")
        actions: list[Action] = [OrderRecord.duplicate_refund_id.set("refused"),
                   OrderRecord.refund_failures.add({refused})]
    else:
        actions = [OrderRecord.duplicate_refund_id.set(created.id),
                   OrderRecord.refunds_pending.add({OrderRecord.pending_entry(created.id, due)})]
        metrics.add_metric(name="DuplicateRefunds", unit="Count", value=1)
        logger.warning("payment for resources already owned refunded",
                       extra={"order_id": o.order_id, "amount": due, "refund_id": created.id})
    try:
        o.update(actions=actions, condition=OrderRecord.duplicate_refund_id.does_not_exist(),
                 add_version_condition=False)
    except UpdateError as exc:
        if not db.is_condition_failure(exc):
            raise
        # Recorded by a concurrent delivery: the same refund, by the same idempotency key.


def _record_metrics(o: OrderRecord, before: str, status: str, changes: dict) -> None:
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    if "paid_at" in changes:
        metrics.add_metric(name="OrdersPaid", unit=MetricUnit.Count, value=1)
        with single_metric(name="Revenue", unit=MetricUnit.Count, value=int(o.amount_paid),
                           default_dimensions=metrics.default_dimensions) as metric:
            metric.add_dimension(name="currency", value=o.currency)
        _send_receipt(o)
    if "amount_refunded" in changes:
        metrics.add_metric(name="Refunds", unit=MetricUnit.Count, value=1)
    logger.info("order changed", extra={"order_id": o.order_id, "from": before, "to": status})


def _send_receipt(o: OrderRecord) -> None:
    if not o.email:
        return
    from chalicelib import mail
    from chalicelib.config import settings

    lines = "\n".join(f"- {line.title}: {_money(int(line.unit_amount), o.currency)}"
                      for line in o.lines)
    try:
        mail.send(o.email, f"Receipt for order {o.order_id[:8]}",
                  f"Thank you for your purchase.\n\n{lines}\n\nTotal paid: "
                  f"{_money(int(o.amount_paid or 0), o.currency)}\n\nYour library: "
                  f"{settings().storefront_url}/library\n")
    except Exception:  # noqa: BLE001 - the sale stands even if the receipt cannot be sent
        logger.exception("receipt not sent", extra={"order_id": o.order_id})


def _money(amount: int, currency: str) -> str:
    return f"{amount / 100:.2f} {currency.upper()}"


def grant_free(order: OrderRecord, reserve: Callable[[Any], int] | None = None) -> None:
    """A zero-total order: paid at once, access granted, no payment provider involved.
    `reserve` adds the order's coupon and points to the transaction, right after the
    order (it returns how many items it added)."""
    now = db.now_iso()
    order.status, order.paid_at, order.amount_paid = OrderStatus.PAID, now, 0
    order.gsi3pk = OrderRecord.status_key(OrderStatus.PAID)
    event = _paid_event(order, now)
    with db.transaction() as tx:
        tx.save(order, condition=OrderRecord.pk.does_not_exist())
        if reserve is not None:
            reserve(tx)
        for line in OrderLine.of(order):
            tx.save(line)
        for ent in entitlements(order, Access.ACTIVE, now, "free"):
            tx.save(ent, condition=Entitlement.sk.does_not_exist()
                    | (Entitlement.status == Access.REVOKED))
        tx.save(event)
    outbox.publish([event])


def process_event(event: dict) -> dict:
    """Apply one Stripe event. Unknown orders and uninteresting events are acknowledged;
    subscription events are the memberships context's."""
    from chalicelib.memberships import billing

    if billing.handles(event):
        return billing.apply_event(event)
    order_id, facts = stripe_facts.from_event(event)
    if not order_id:
        logger.info("event ignored", extra={"event_id": event.get("id"),
                                           "type": event.get("type")})
        return {"event_id": event.get("id"), "outcome": "ignored"}
    try:
        status = apply(order_id, facts)
    except UnknownOrder:
        logger.warning("event for an unknown order", extra={"event_id": event.get("id"),
                                                           "order_id": order_id})
        return {"event_id": event.get("id"), "outcome": "unknown_order"}
    return {"event_id": event.get("id"), "order_id": order_id, "status": status}
