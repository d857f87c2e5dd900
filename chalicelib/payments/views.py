"""What the payments context's facts say derived data should be, for reconciliation: the
sales each resource made, and the entitlement each order's status gives. Keyed Queries only
(the orders by status index, a resource's lines), never a Scan."""
from __future__ import annotations

from typing import Any

from chalicelib.payments.states import Access, OrderStatus, access_for
from chalicelib.payments.store import Entitlement, OrderLine, OrderRecord

# Statuses whose orders were paid once: a sale counts from its payment on, refunds or not.
SOLD = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED,
        OrderStatus.DISPUTED)


def sold_count(resource_id: str) -> int:
    """How many paid orders hold the resource: one Query of its lines."""
    return sum(1 for line in OrderLine.by_resource.query(f"RESORDERS#{resource_id}")
               if line.status in SOLD)


def check_entitlements(repair: bool) -> list[dict[str, Any]]:
    """Every order's entitlements against what its status gives; with `repair`, the
    entitlement is rewritten to agree (never one another live order holds)."""
    differences = []
    for status in OrderStatus:
        for order in OrderRecord.by_status.query(f"STATUS#{status}"):
            expected = access_for(order.status, order.dispute_status)
            owned_elsewhere = set(order.duplicates or ())
            for line in order.lines:
                if line.resource_id in owned_elsewhere:
                    continue
                found = _entitlement(order.user_id, line.resource_id)
                if found is not None and found.order_id != order.order_id:
                    if found.status != Access.REVOKED or expected == Access.REVOKED:
                        continue  # another order's grant, or nothing to give
                    found = None
                actual = found.status if found is not None else None
                if actual == expected or (actual is None and expected == Access.REVOKED):
                    continue
                differences.append({"view": "entitlement", "order_id": order.order_id,
                                    "resource_id": line.resource_id, "expected": expected,
                                    "found": actual})
                if repair:
                    _grant(order, line.resource_id, expected)
    return differences


def _entitlement(user_id: str, resource_id: str) -> Entitlement | None:
    try:
        return Entitlement.get(Entitlement.key(user_id), Entitlement.sort_key(resource_id),
                               consistent_read=True)
    except Entitlement.DoesNotExist:
        return None


def _grant(order: OrderRecord, resource_id: str, access: Access) -> None:
    from chalicelib import db

    now = db.now_iso()
    mine = _entitlement(order.user_id, resource_id)
    if mine is not None and mine.order_id == order.order_id:
        # Its download count stays.
        mine.update(actions=[Entitlement.status.set(access), Entitlement.updated_at.set(now)],
                    condition=Entitlement.order_id == order.order_id)
        return
    Entitlement(pk=Entitlement.key(order.user_id), sk=Entitlement.sort_key(resource_id),
                user_id=order.user_id, resource_id=resource_id, order_id=order.order_id,
                source="free" if not order.total else "purchase", status=access,
                granted_at=now, updated_at=now).save(
        condition=Entitlement.sk.does_not_exist() | (Entitlement.status == Access.REVOKED))
