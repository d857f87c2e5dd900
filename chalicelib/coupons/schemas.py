"""Coupons as the API shows and takes them."""
from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from chalicelib.accounts.schemas import Cursor, Input, Limit
from chalicelib.catalog.schemas import Currency

# Upper-case letters, digits and dashes, as printed on a voucher; stored upper-cased.
CouponCode = Annotated[str, Meta(min_length=3, max_length=40, pattern=r"^[A-Za-z0-9-]+$")]
Ids = Annotated[list[Annotated[str, Meta(min_length=1, max_length=64)]],
                Meta(max_length=100, extra_json_schema={"uniqueItems": True})]
PerCurrency = Annotated[dict[Currency, Annotated[int, Meta(ge=1, le=100_000_000)]],
                        Meta(max_length=4)]
IsoTime = Annotated[str, Meta(max_length=40, pattern=(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?Z)?$"))]
Kind = Literal["percent", "fixed"]


class CouponIn(Input):
    """A new coupon. `percent` takes `percent_off`; `fixed` takes `amounts_off`, an amount
    per currency (an order in another currency cannot use it)."""

    code: CouponCode
    kind: Kind
    percent_off: Annotated[int, Meta(ge=1, le=100)] | None = None
    amounts_off: PerCurrency | None = None
    resource_ids: Ids = []
    categories: Ids = []
    creator_ids: Ids = []
    minimum_amounts: PerCurrency | None = None
    valid_from: IsoTime | None = None
    valid_until: IsoTime | None = None
    max_redemptions: Annotated[int, Meta(ge=1, le=10_000_000)] | None = None
    max_per_user: Annotated[int, Meta(ge=1, le=1000)] = 1
    first_purchase_only: bool = False


class CouponPatch(Input):
    """What may change on a coupon in use: its window, limits and whether it is active. Its
    discount and scope are fixed once made (orders were priced with them)."""

    active: bool | UnsetType = UNSET
    valid_until: IsoTime | None | UnsetType = UNSET
    max_redemptions: Annotated[int, Meta(ge=1, le=10_000_000)] | None | UnsetType = UNSET
    max_per_user: Annotated[int, Meta(ge=1, le=1000)] | UnsetType = UNSET


class CouponOut(Struct):
    code: str
    kind: Kind
    percent_off: int | None
    amounts_off: dict[str, int]
    resource_ids: list[str]
    categories: list[str]
    creator_ids: list[str]
    minimum_amounts: dict[str, int]
    valid_from: str | None
    valid_until: str | None
    max_redemptions: int | None
    max_per_user: int
    first_purchase_only: bool
    active: bool
    redeemed: int
    reserved: int
    created_at: str


class CouponEnvelope(Struct):
    coupon: CouponOut


class CouponList(Struct):
    items: list[CouponOut]
    next_cursor: str | None


class RedemptionOut(Struct):
    order_id: str
    user_id: str
    status: Literal["reserved", "consumed", "released"]
    discount: int
    currency: str
    at: str


class RedemptionList(Struct):
    items: list[RedemptionOut]
    next_cursor: str | None


class CouponsQuery(Struct):
    limit: Limit = 20
    cursor: Cursor | None = None
