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
    return sum(1 for line in OrderLine.by_resource.query(OrderLine.resource_key(resource_id))
               if line.status in SOLD)


def check_entitlements(repair: bool) -> list[dict[str, Any]]:
    """Every order's entitlements against what its status gives; with `repair`, the
    entitlement is rewritten to agree (never one another live order holds). One Query per
    status and one BatchGetItem per order."""
    differences = []
    for status in OrderStatus:
        for order in OrderRecord.by_status.query(OrderRecord.status_key(status)):
            expected = access_for(order.status, order.dispute_status)
            owned_elsewhere = set(order.duplicates or ())
            wanted = [line.resource_id for line in order.lines
                      if line.resource_id not in owned_elsewhere]
            held = {e.resource_id: e for e in Entitlement.batch_get(
                [(Entitlement.key(order.user_id), Entitlement.sort_key(r)) for r in wanted],
                consistent_read=True)} if wanted else {}
            for resource_id in wanted:
                found = held.get(resource_id)
                if found is not None and found.order_id != order.order_id:
                    if found.status != Access.REVOKED or expected == Access.REVOKED:
                        continue  # another order's grant, or nothing to give
                    found = None
                actual = found.status if found is not None else None
                if actual == expected or (actual is None and expected == Access.REVOKED):
                    continue
                differences.append({"view": "entitlement", "order_id": order.order_id,
                                    "resource_id": resource_id, "expected": expected,
                                    "found": actual})
                if repair:
                    _grant(order, resource_id, expected, found)
    return differences


def _grant(order: OrderRecord, resource_id: str, access: Access,
           mine: Entitlement | None) -> None:
    """Give `order`'s `access` to `resource_id`: `mine` (the order's own entitlement) keeps
    its download count; otherwise a new one, never over another order's live grant."""
    from chalicelib import db
    from chalicelib.payments.processing import entitlements

    now = db.now_iso()
    if mine is not None:
        mine.update(actions=[Entitlement.status.set(access), Entitlement.updated_at.set(now)],
                    condition=Entitlement.order_id == order.order_id)
        return
    [fresh] = [e for e in entitlements(order, access, now, "free" if not order.total
                                        else "purchase") if e.resource_id == resource_id]
    fresh.save(condition=Entitlement.sk.does_not_exist() | (Entitlement.status == Access.REVOKED))
