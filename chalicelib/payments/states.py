"""The states of an order and of an entitlement, declared once, and the transitions between
them as data. An order's status is derived from its facts (processing.derive), and facts
only grow: the table says which statuses each status may follow, and every write of an
order's status carries the condition "status in allowed-from", so no delivery order, retry or
race can move an order backwards (a refunded order is never paid again, a paid one never
pending)."""
from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    FAILED = "failed"
    EXPIRED = "expired"


class Access(StrEnum):
    """An entitlement's status: the right to download, held back while a dispute is open."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


_UNPAID = {OrderStatus.PENDING, OrderStatus.FAILED, OrderStatus.EXPIRED}
_PAID = {OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED,
         OrderStatus.DISPUTED}

# to-status -> the statuses it may follow (itself included: other facts can change).
# A payment can arrive after a failure or an expiry was recorded, and a refund or a dispute
# before its payment, so the paid statuses follow every unpaid one; a refund only grows,
# so refunded follows everything and partially refunded never follows refunded; a dispute
# won goes back to what the refunds say.
ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PENDING}),
    OrderStatus.EXPIRED: frozenset({OrderStatus.PENDING, OrderStatus.EXPIRED}),
    OrderStatus.FAILED: frozenset(_UNPAID),
    OrderStatus.PAID: frozenset(_UNPAID | {OrderStatus.PAID, OrderStatus.DISPUTED}),
    OrderStatus.PARTIALLY_REFUNDED: frozenset(_UNPAID | _PAID - {OrderStatus.REFUNDED}),
    OrderStatus.REFUNDED: frozenset(_UNPAID | _PAID),
    OrderStatus.DISPUTED: frozenset(_UNPAID | _PAID),
}

# Orders an admin may refund, and the access each status gives.
REFUNDABLE = frozenset({OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED})
_ACCESS = {OrderStatus.PAID: Access.ACTIVE, OrderStatus.PARTIALLY_REFUNDED: Access.ACTIVE}


def may_follow(before: OrderStatus | str, after: OrderStatus | str) -> bool:
    return OrderStatus(before) in ORDER_TRANSITIONS[OrderStatus(after)]


def access_for(status: OrderStatus | str, dispute_status: str | None) -> Access:
    """What an order in `status` gives its buyer."""
    if status == OrderStatus.DISPUTED and dispute_status == "open":
        return Access.SUSPENDED
    return _ACCESS.get(OrderStatus(status), Access.REVOKED)
