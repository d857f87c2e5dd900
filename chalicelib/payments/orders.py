"""Reading orders (buyers, admins, creators' sales) and admin refunds."""
from __future__ import annotations

from chalicelib import cursor, db
from chalicelib.catalog.schemas import Money
from chalicelib.errors import NotFound, Refused, ValidationFailed
from chalicelib.observability import logger
from chalicelib.payments.processing import load
from chalicelib.payments.schemas import (
    OrderLineOut,
    OrderList,
    OrderOut,
    RefundAccepted,
    Sale,
    SalesList,
)
from chalicelib.payments.store import OrderLine, OrderRecord


def order_out(o: OrderRecord, with_user: bool = False) -> OrderOut:
    def money(amount) -> Money:
        return Money(amount=int(amount or 0), currency=o.currency)

    return OrderOut(
        id=o.order_id, status=o.status,
        items=[OrderLineOut(resource_id=line.resource_id, title=line.title,
                            unit_price=money(line.unit_amount)) for line in o.lines],
        subtotal=money(o.subtotal), discount=money(o.discount), total=money(o.total),
        amount_refunded=money(o.amount_refunded), created_at=o.created_at, paid_at=o.paid_at,
        checkout_url=o.checkout_url if o.status == "pending" else None, flag=o.flag,
        user_id=o.user_id if with_user else None)


def mine(user_id: str, order_id: str) -> OrderOut:
    """One of the user's orders; anyone else's is as absent as a missing one."""
    o = load(order_id)
    if o is None or o.user_id != user_id:
        raise NotFound("No such order.", code="order_not_found")
    return order_out(o)


def list_mine(user_id: str, limit: int, cursor_text: str | None) -> OrderList:
    """The user's orders, newest first. One Query."""
    scope = f"my-orders:{user_id}"
    results = OrderRecord.by_user.query(f"USER#{user_id}", scan_index_forward=False, limit=limit,
                                        last_evaluated_key=cursor.decode(cursor_text, scope))
    items, position = db.page(results)
    return OrderList(items=[order_out(o) for o in items],
                     next_cursor=cursor.encode(position, scope))


def _range(date_from: str | None, date_to: str | None):
    low, high = date_from or "0000", (date_to or "9999") + "~"
    for value in (date_from, date_to):
        if value and not value[:4].isdigit():
            raise ValidationFailed("Dates are ISO 8601, e.g. 2026-11-28.",
                                   details={"fields": {"from/to": "not a date"}})
    return low, high


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
            f"RESORDERS#{resource_id}", OrderLine.gsi2sk.between(low, high),
            scan_index_forward=False, limit=limit, last_evaluated_key=start,
            filter_condition=condition)
        lines, position = db.page(results)
        found = {o.order_id: o for o in OrderRecord.batch_get(
            [(OrderRecord.key(line.order_id), "META") for line in lines])} if lines else {}
        orders = [found[line.order_id] for line in lines if line.order_id in found]
    else:
        if user_id:
            index, key, sort = OrderRecord.by_user, f"USER#{user_id}", OrderRecord.gsi1sk
            condition = OrderRecord.status == status if status else None
        elif status:
            index, key, sort = OrderRecord.by_status, f"STATUS#{status}", OrderRecord.gsi3sk
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
    results = OrderLine.by_creator.query(f"SALES#{creator_id}", scan_index_forward=False,
                                         limit=limit,
                                         last_evaluated_key=cursor.decode(cursor_text, scope))
    lines, position = db.page(results)
    return SalesList(items=[Sale(order_id=line.order_id, resource_id=line.resource_id,
                                 title=line.title, status=line.status, created_at=line.created_at,
                                 price=Money(amount=int(line.unit_amount),
                                             currency=line.currency))
                            for line in lines], next_cursor=cursor.encode(position, scope))


def refund(admin_id: str, order_id: str, amount: int | None, reason: str) -> RefundAccepted:
    """Ask Stripe to refund all or part of a paid order. The order changes when the refund's
    webhook arrives, like any other refund."""
    from chalicelib.payments import gateway

    o = load(order_id)
    if o is None:
        raise NotFound("No such order.", code="order_not_found")
    if o.status not in ("paid", "partially_refunded") or not o.payment_intent:
        raise Refused(f"A {o.status} order cannot be refunded.", code="not_refundable")
    remaining = int(o.amount_paid or 0) - int(o.amount_refunded or 0)
    amount = remaining if amount is None else amount
    if not 0 < amount <= remaining:
        raise Refused(f"At most {remaining} can be refunded.", code="refund_too_large",
                      details={"remaining": remaining})
    params = {"payment_intent": o.payment_intent, "amount": amount, "reason":
              "requested_by_customer", "metadata": {"order_id": o.order_id,
                                                    "admin_id": admin_id, "note": reason[:450]}}
    # The same refund asked twice (a double click) is one refund at Stripe.
    key = f"refund-{o.order_id}-{int(o.amount_refunded or 0)}-{amount}"
    created = gateway.create_refund(params, idempotency_key=key)
    logger.info("refund requested", extra={"order_id": order_id, "amount": amount,
                                           "admin_id": admin_id, "refund_id": created.id})
    return RefundAccepted(order_id=o.order_id, refund_id=created.id,
                          amount=Money(amount=amount, currency=o.currency))
