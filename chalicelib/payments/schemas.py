"""Request and response models of checkout, orders, library and downloads."""
from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from msgspec import Meta, Struct, field

from chalicelib.accounts.schemas import Cursor, Input, Limit
from chalicelib.catalog.schemas import Currency, Money, ResourceCard
from chalicelib.payments.states import Access, OrderStatus

ResourceId = Annotated[str, Meta(min_length=1, max_length=64)]
# The admin filter's statuses: an order's, or `flagged` (waiting for a person).
OrderFilter = StrEnum("OrderFilter", {**{s.name: s.value for s in OrderStatus},  # type: ignore[misc]
                                      "FLAGGED": "flagged"})
# A date or a date and time as ISO 8601 writes them, to the precision wanted: `2026`,
# `2026-11`, `2026-11-28`, `2026-11-28T09:30:00Z`. Compared with the orders' creation times.
IsoDate = Annotated[str, Meta(max_length=40, pattern=(
    r"^[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}(:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?Z?)?)?)?$"))]


class ItemRef(Input):
    resource_id: ResourceId


class CheckoutIn(Input):
    """Resources to buy (`items`), or a membership plan to subscribe to (`plan_id` with its
    `interval` and, when the plan is priced in several, `currency`)."""

    items: Annotated[list[ItemRef], Meta(max_length=20,
                                         extra_json_schema={"uniqueItems": True})] = []
    plan_id: Annotated[str, Meta(max_length=64)] | None = None
    interval: Literal["month", "year"] | None = None
    currency: Currency | None = None
    coupon_code: Annotated[str, Meta(max_length=40)] | None = None
    points_to_redeem: Annotated[int, Meta(ge=0, le=10_000_000)] = 0

    def __post_init__(self) -> None:
        # `uniqueItems` above, which msgspec does not check itself (an error here is a 400).
        if len({item.resource_id for item in self.items}) != len(self.items):
            raise ValueError("An item is listed twice in field `items`")


class QuoteLine(Struct):
    """One item through every step of the pricing engine (docs/pricing.md)."""

    resource_id: str
    title: str
    unit_price: Money  # the list price
    member_discount: Money
    coupon_discount: Money
    points_discount: Money
    total: Money


class Quote(Struct):
    """The price breakdown: list prices, each discount, the total; what checkout charges."""

    items: list[QuoteLine]
    subtotal: Money  # the list prices
    member_discount: Money
    coupon_discount: Money
    points_discount: Money
    discount: Money  # the three discounts together
    total: Money
    coupon_code: str | None
    points_used: int
    payment_methods: list[str]  # what the Stripe Checkout Session will offer


class OrderLineOut(Struct):
    resource_id: str
    title: str
    unit_price: Money


class AutoRefundOut(Struct):
    """A refund the platform made by itself: `duplicate` when the order paid for resources the
    buyer already owned through another order (`refund_id` is null until Stripe took it)."""
    reason: Literal["duplicate"]
    resource_ids: list[str]
    amount: Money
    refund_id: str | None


class OrderOut(Struct):
    id: str
    status: OrderStatus
    items: list[OrderLineOut]
    subtotal: Money
    discount: Money
    total: Money
    amount_refunded: Money
    created_at: str
    paid_at: str | None
    checkout_url: str | None
    flag: str | None = None
    user_id: str | None = None
    auto_refund: AutoRefundOut | None = None


class OrderEnvelope(Struct):
    order: OrderOut


class CheckoutOut(Struct):
    """The order and its Stripe Checkout Session; a subscription (`mode`: subscription) has
    no order: the membership arrives with Stripe's events."""

    order: OrderOut | None
    checkout_url: str | None
    checkout_session_id: str | None
    mode: Literal["payment", "subscription"] = "payment"


class OrderList(Struct):
    items: list[OrderOut]
    next_cursor: str | None


class RefundIn(Input):
    reason: Annotated[str, Meta(min_length=1, max_length=500)]
    amount: Annotated[int, Meta(ge=1)] | None = None


class RefundAccepted(Struct):
    order_id: str
    refund_id: str
    amount: Money
    status: str = "pending"


class AdminOrdersQuery(Struct):
    # `flagged`: orders whose payment did not match them, waiting for a person.
    status: OrderFilter | None = None
    user_id: str | None = None
    resource_id: str | None = None
    date_from: IsoDate | None = field(default=None, name="from")
    date_to: IsoDate | None = field(default=None, name="to")
    limit: Limit = 20
    cursor: Cursor | None = None


class Sale(Struct):
    order_id: str
    resource_id: str
    title: str
    price: Money
    status: OrderStatus
    created_at: str


class SalesList(Struct):
    items: list[Sale]
    next_cursor: str | None


class LibraryItem(Struct):
    resource: ResourceCard
    source: str  # purchase, free, or membership
    status: Access
    order_id: str | None
    granted_at: str
    downloads: int


class LibraryQuery(Struct):
    limit: Limit = 20
    cursor: Cursor | None = None
    source: Literal["purchases", "membership"] = "purchases"


class LibraryList(Struct):
    items: list[LibraryItem]
    next_cursor: str | None


class DownloadOut(Struct):
    url: str
    expires_at: str
    filename: str
    version: int
