"""Membership plans and memberships as the API shows and takes them."""
from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from chalicelib.accounts.schemas import Input
from chalicelib.catalog.schemas import Currency

PlanId = Annotated[str, Meta(min_length=2, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]*$")]
Interval = Literal["month", "year"]
PerCurrency = Annotated[dict[Currency, Annotated[int, Meta(ge=100, le=100_000_000)]],
                        Meta(min_length=1, max_length=4)]
Prices = Annotated[dict[Interval, PerCurrency], Meta(min_length=1, max_length=2)]
Name = Annotated[str, Meta(min_length=1, max_length=60)]
Description = Annotated[str, Meta(max_length=2000)]


class PlanIn(Input):
    """A membership plan: a level (members-only resources at or below it are open to its
    members), a price per interval and currency, and its benefits."""

    plan_id: PlanId
    name: Name
    level: Annotated[int, Meta(ge=1, le=100)]
    prices: Prices
    description: Description = ""
    discount_percent: Annotated[int, Meta(ge=0, le=90)] = 0
    monthly_points: Annotated[int, Meta(ge=0, le=1_000_000)] = 0
    priority_support: bool = False


class PlanPatch(Input):
    """What may change on a plan. New prices take effect for new subscriptions once synced
    to Stripe (a Stripe Price never changes; a new one is made)."""

    name: Name | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    prices: Prices | UnsetType = UNSET
    discount_percent: Annotated[int, Meta(ge=0, le=90)] | UnsetType = UNSET
    monthly_points: Annotated[int, Meta(ge=0, le=1_000_000)] | UnsetType = UNSET
    priority_support: bool | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class PlanOut(Struct):
    id: str
    name: str
    description: str
    level: int
    prices: dict[str, dict[str, int]]
    discount_percent: int
    monthly_points: int
    priority_support: bool
    active: bool
    # Whether every price has its Stripe Price (a plan can be bought once synced).
    synced: bool


class PlanEnvelope(Struct):
    plan: PlanOut


class PlanList(Struct):
    items: list[PlanOut]


class MembershipOut(Struct):
    subscription_id: str  # Stripe's
    plan_id: str
    plan_name: str
    level: int
    status: str
    interval: str
    currency: str
    current_period_start: str | None
    current_period_end: str | None
    cancel_at_period_end: bool
    access_until: str | None
    active: bool
    discount_percent: int
    started_at: str
    ended_at: str | None


class MembershipEnvelope(Struct):
    membership: MembershipOut | None


class ChangeIn(Input):
    plan_id: PlanId
    interval: Interval
