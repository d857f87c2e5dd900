"""Reading orders (buyers, admins, creators' sales) and admin refunds."""
from __future__ import annotations

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action

from chalicelib import cursor, db
from chalicelib.catalog.schemas import Money, stored_price
from chalicelib.errors import Conflict, NotFound, ProviderUnavailable, Refused
from chalicelib.observability import logger
from chalicelib.payments.processing import load
from chalicelib.payments.schemas import (
    AutoRefundOut,
    OrderLineOut,
    OrderList,
    OrderOut,
    RefundAccepted,
    Sale,
    SalesList,
)
from chalicelib.payments.states import REFUNDABLE, OrderStatus
from chalicelib.payments.store import OrderLine, OrderRecord


def order_out(o: OrderRecord, with_user: bool = False) -> OrderOut:
    def money(amount) -> Money:
        return stored_price(amount or 0, o.currency)

    return OrderOut(
        id=o.order_id, status=OrderStatus(o.status),
        items=[OrderLineOut(resource_id=line.resource_id, title=line.title,
                            unit_price=money(line.unit_amount)) for line in o.lines],
        subtotal=money(o.subtotal), discount=money(o.discount), total=money(o.total),
        amount_refunded=money(o.amount_refunded), created_at=o.created_at, paid_at=o.paid_at,
        checkout_url=o.checkout_url if o.status == "pending" else None, flag=o.flag,
        user_id=o.user_id if with_user else None,
        auto_refund=AutoRefundOut(reason="duplicate", resource_ids=sorted(o.duplicates),
                                  amount=money(o.duplicate_refund_due),
                                  refund_id=o.duplicate_refund_id) if o.duplicates else None)


def mine(user_id: str, order_id: str) -> OrderOut:
    """One of the user's orders; anyone else's is as absent as a missing one."""
    o = load(order_id)
    if o is None or o.user_id != user_id:
        raise NotFound("No such order.", code="order_not_found")
    return order_out(o)


def list_mine(user_id: str, limit: int, cursor_text: str | None) -> OrderList:
    """The user's orders, newest first. One Query."""
    scope = f"my-orders:{user_id}"
    results = OrderRecord.by_user.query(OrderRecord.user_key(user_id), scan_index_forward=False,
                                        limit=limit,
                                        last_evaluated_key=cursor.decode(cursor_text, scope))
    items, position = db.page(results)
    return OrderList(items=[order_out(o) for o in items],
                     next_cursor=cursor.encode(position, scope))


def _range(date_from: str | None, date_to: str | None):
    # Both are IsoDate (the query type checks them), so they sort as creation times do.
    return date_from or "0000", (date_to or "9999") + "~"


def list_all(status: str | None, user_id: str | None, resource_id: str | None,
             date_from: str | None, date_to: str | None, limit: int,
             cursor_text: str | None) -> OrderList:
    """Admin listing, newest first, by the narrowest index the filters allow; the other
    filters apply to that one Query (plus one BatchGetItem when filtering by resource)."""
    low, high = _range(date_from, date_to)
    scope = f"admin-orders:{status}:{user_id}:{resource_id}:{low}:{high}"
    start = cursor.decode(cursor_text, scope)
    if resource_id:
        condition = OrderLine.status == status if status else None
        if user_id:
            condition = (condition & (OrderLine.buyer_id == user_id)) if condition is not None \
                else OrderLine.buyer_id == user_id
        results = OrderLine.by_resource.query(
            OrderLine.resource_key(resource_id), OrderLine.gsi2sk.between(low, high),
            scan_index_forward=False, limit=limit, last_evaluated_key=start,
            filter_condition=condition)
        lines, position = db.page(results)
        found = {o.order_id: o for o in OrderRecord.batch_get(
            [(OrderRecord.key(line.order_id), "META") for line in lines])} if lines else {}
        orders = [found[line.order_id] for line in lines if line.order_id in found]
    else:
        if user_id:
            index, key, sort = OrderRecord.by_user, OrderRecord.user_key(user_id), \
                OrderRecord.gsi1sk
            condition = OrderRecord.status == status if status else None
        elif status:
            index, key, sort = OrderRecord.by_status, OrderRecord.status_key(status), \
                OrderRecord.gsi3sk
            condition = None
        else:
            index, key, sort = OrderRecord.by_time, "ORDERS", OrderRecord.gsi2sk
            condition = None
        results = index.query(key, sort.between(low, high), scan_index_forward=False,
                              limit=limit, last_evaluated_key=start, filter_condition=condition)
        orders, position = db.page(results)
    return OrderList(items=[order_out(o, with_user=True) for o in orders],
                     next_cursor=cursor.encode(position, scope))


def sales(creator_id: str, limit: int, cursor_text: str | None) -> SalesList:
    """A creator's sold lines, newest first. One Query."""
    scope = f"sales:{creator_id}"
    results = OrderLine.by_creator.query(OrderLine.creator_key(creator_id),
                                         scan_index_forward=False,
                                         limit=limit,
                                         last_evaluated_key=cursor.decode(cursor_text, scope))
    lines, position = db.page(results)
    return SalesList(items=[Sale(order_id=line.order_id, resource_id=line.resource_id,
                                 title=line.title, status=line.status, created_at=line.created_at,
                                 price=Money(amount=int(line.unit_amount),
                                             currency=line.currency))
                            for line in lines], next_cursor=cursor.encode(position, scope))


# A reservation older than this outlived the request that made it (a crash, a timeout).
REFUND_RESERVATION_SECONDS = 60


class RefundInFlight(Conflict):
    code = "refund_in_flight"
    message = "Another refund of this order is being made; try again in a moment."


def refund(admin_id: str, order_id: str, amount: int | None, reason: str) -> RefundAccepted:
    """Refund all or part of a paid order at Stripe. The amount is reserved on the order by a
    conditional write first, so concurrent refunds can never add up to more than was paid:
    one at a time per order (RefundInFlight for the others). Accepted means Stripe took it;
    the refund's webhook completes it, or records its failure, on the order."""
    import time
    import uuid

    from chalicelib.payments import gateway

    o = load(order_id)
    if o is None:
        raise NotFound("No such order.", code="order_not_found")
    if o.status not in REFUNDABLE or not o.payment_intent:
        raise Refused(f"A {o.status} order cannot be refunded.", code="not_refundable")
    remaining = int(o.amount_paid or 0) - int(o.amount_refunded or 0) - \
        sum(o.pending_refunds().values()) - o.unissued_duplicate_refund()
    amount = remaining if amount is None else amount
    if not 0 < amount <= remaining:
        raise Refused(f"At most {remaining} can be refunded.", code="refund_too_large",
                      details={"remaining": remaining})
    request_id = uuid.uuid4().hex
    now = int(time.time())
    try:
        # Under the version read above: nothing refunded, settled or reserved since.
        o.update(actions=[OrderRecord.refund_in_flight.set(request_id),
                          OrderRecord.refund_in_flight_at.set(now)],
                 condition=OrderRecord.status.is_in(*REFUNDABLE)
                 & (OrderRecord.refund_in_flight.does_not_exist()
                    | (OrderRecord.refund_in_flight_at < now - REFUND_RESERVATION_SECONDS)))
    except UpdateError as exc:
        if db.is_condition_failure(exc):
            raise RefundInFlight() from None
        raise
    params = {"payment_intent": o.payment_intent, "amount": amount, "reason":
              "requested_by_customer", "metadata": {"order_id": o.order_id,
                                                    "admin_id": admin_id, "note": reason[:450]}}
    release: list[Action] = [OrderRecord.refund_in_flight.remove(),
                             OrderRecord.refund_in_flight_at.remove()]
    try:
        # One key per request: a retry of this call is one refund at Stripe.
        created = gateway.create_refund(params, idempotency_key=f"refund-{request_id}")
    except gateway.stripe_errors() as exc:
        o.update(actions=release, condition=OrderRecord.refund_in_flight == request_id,
                 add_version_condition=False)
        logger.warning("refund not made", extra={"order_id": order_id, "amount": amount,
                                                 "error": str(exc)[:300]})
        if gateway.is_refusal(exc):
            raise Refused(f"Stripe refused the refund: {gateway.user_message(exc)}",
                          code="refund_refused") from None
        raise ProviderUnavailable() from None
    o.update(actions=[*release, OrderRecord.refunds_pending.add(
                          {OrderRecord.pending_entry(created.id, amount)})],
             condition=OrderRecord.refund_in_flight == request_id, add_version_condition=False)
    logger.info("refund requested", extra={"order_id": order_id, "amount": amount,
                                           "admin_id": admin_id, "refund_id": created.id})
    return RefundAccepted(order_id=o.order_id, refund_id=created.id,
                          amount=stored_price(amount, o.currency))
