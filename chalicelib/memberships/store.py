"""Storage of membership plans and members (PynamoDB), the memberships table:
PLAN#<id>/META (a plan, its prices and benefits, the Stripe Price of each interval and
currency), MEMBER#<user>/CURRENT (a buyer's membership as Stripe's subscription last said),
SUB#<subscription>/META (which buyer a Stripe subscription is for). `by_level` (gsi1,
PLANS / <level>#<id>) lists the plans in one Query."""
from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.models import Model

from chalicelib.config import settings
from chalicelib.db import Read, global_index, table_meta

ALL_PLANS = "PLANS"


class PlanRecord(Model):
    Meta = table_meta("memberships_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="META")
    plan_id = UnicodeAttribute()
    name = UnicodeAttribute()
    description = UnicodeAttribute(default="")
    level = NumberAttribute()
    # interval -> currency -> minor units
    prices: MapAttribute[str, Any] = MapAttribute(default=dict)
    # "<interval>:<currency>" -> Stripe Price id, written by the sync
    stripe_prices: MapAttribute[str, Any] = MapAttribute(default=dict)
    discount_percent = NumberAttribute(default=0)
    monthly_points = NumberAttribute(default=0)
    priority_support = BooleanAttribute(default=False)
    active = BooleanAttribute(default=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    gsi1pk = UnicodeAttribute(default=ALL_PLANS)
    gsi1sk = UnicodeAttribute()
    version = VersionAttribute()
    by_level = global_index("gsi1")

    @staticmethod
    def key(plan_id: str) -> str:
        return f"PLAN#{plan_id}"

    @staticmethod
    def level_key(level: int, plan_id: str) -> str:
        return f"{level:04d}#{plan_id}"


class Membership(Model):
    """A buyer's membership: Stripe's subscription as last retrieved, and what it gives.
    `access_until` is when members-only access ends: the end of the last paid period plus
    the grace after a failed renewal, cut short when Stripe ends the subscription."""

    Meta = table_meta("memberships_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="CURRENT")
    user_id = UnicodeAttribute()
    plan_id = UnicodeAttribute()
    plan_name = UnicodeAttribute()
    level = NumberAttribute()
    discount_percent = NumberAttribute(default=0)
    interval = UnicodeAttribute()
    currency = UnicodeAttribute()
    price_id = UnicodeAttribute(null=True)
    subscription_id = UnicodeAttribute()
    customer_id = UnicodeAttribute(null=True)
    status = UnicodeAttribute()  # Stripe's: active, past_due, canceled, unpaid, incomplete...
    period_start = UnicodeAttribute(null=True)
    period_end = UnicodeAttribute(null=True)
    cancel_at_period_end = BooleanAttribute(default=False)
    access_until = UnicodeAttribute(null=True)
    started_at = UnicodeAttribute()
    ended_at = UnicodeAttribute(null=True)
    # Epoch milliseconds of the retrieval the item holds: an older one never overwrites it.
    synced_ms = NumberAttribute(default=0)
    updated_at = UnicodeAttribute()
    # What the analytics gauges count of this buyer now: their monthly recurring revenue
    # (minor units, in counted_currency) while they are an active member, else null. Each
    # change reports the difference, so active members and MRR never drift from the items.
    counted_mrr = NumberAttribute(null=True)
    counted_currency = UnicodeAttribute(null=True)

    @staticmethod
    def key(user_id: str) -> str:
        return f"MEMBER#{user_id}"


class SubscriptionLink(Model):
    Meta = table_meta("memberships_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="META")
    user_id = UnicodeAttribute()

    @staticmethod
    def key(subscription_id: str) -> str:
        return f"SUB#{subscription_id}"


def membership_read(user_id: str) -> Read:
    """The part of a `db.batch_read` that reads the buyer's membership."""
    return Read(settings().memberships_table,
                [{"pk": {"S": Membership.key(user_id)}, "sk": {"S": "CURRENT"}}])


def membership_in(items: list[dict]) -> Membership | None:
    return Membership.from_raw_data(items[0]) if items else None


def get_plan(plan_id: str) -> PlanRecord | None:
    try:
        return PlanRecord.get(PlanRecord.key(plan_id), "META", consistent_read=True)
    except PlanRecord.DoesNotExist:
        return None


def get_membership(user_id: str) -> Membership | None:
    try:
        return Membership.get(Membership.key(user_id), "CURRENT", consistent_read=True)
    except Membership.DoesNotExist:
        return None


def plans() -> list[PlanRecord]:
    return list(PlanRecord.by_level.query(ALL_PLANS))


def user_of_subscription(subscription_id: str) -> str | None:
    try:
        return SubscriptionLink.get(SubscriptionLink.key(subscription_id), "META",
                                    consistent_read=True).user_id
    except SubscriptionLink.DoesNotExist:
        return None
