"""Storage of coupons (PynamoDB), the coupons table: COUPON#<code>/META (the coupon and its
counters), COUPON#<code>/USER#<user> (one buyer's uses), COUPON#<code>/RED#<order> (a
redemption), BUYER#<user>/FIRST (the buyer's first paid order, for first-purchase coupons).
`by_created` (gsi1, COUPONS / <created>#<code>) lists them for admins.

`claimed` = reserved + redeemed, kept as its own counter because a DynamoDB condition can
compare two attributes but cannot add them: a reservation's condition is
`claimed < max_redemptions`."""
from __future__ import annotations

from typing import Any, cast

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.models import Model

from chalicelib.db import global_index, table_meta

ALL = "COUPONS"


def _strings() -> ListAttribute[str]:
    return cast("ListAttribute[str]", ListAttribute(of=UnicodeAttribute, default=list))


class CouponRecord(Model):
    Meta = table_meta("coupons_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="META")
    code = UnicodeAttribute()
    kind = UnicodeAttribute()
    percent_off = NumberAttribute(null=True)
    amounts_off: MapAttribute[str, Any] = MapAttribute(default=dict)
    resource_ids = _strings()
    categories = _strings()
    creator_ids = _strings()
    minimum_amounts: MapAttribute[str, Any] = MapAttribute(default=dict)
    valid_from = UnicodeAttribute(null=True)
    valid_until = UnicodeAttribute(null=True)
    max_redemptions = NumberAttribute(null=True)
    max_per_user = NumberAttribute(default=1)
    first_purchase_only = BooleanAttribute(default=False)
    active = BooleanAttribute(default=True)
    redeemed = NumberAttribute(default=0)
    reserved = NumberAttribute(default=0)
    claimed = NumberAttribute(default=0)
    created_by = UnicodeAttribute()
    created_at = UnicodeAttribute()
    gsi1pk = UnicodeAttribute(default=ALL)
    gsi1sk = UnicodeAttribute()
    version = VersionAttribute()
    by_created = global_index("gsi1")

    @staticmethod
    def key(code: str) -> str:
        return f"COUPON#{code}"


class Redemption(Model):
    Meta = table_meta("coupons_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    order_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    status = UnicodeAttribute()
    discount = NumberAttribute()
    currency = UnicodeAttribute()
    at = UnicodeAttribute()

    @staticmethod
    def sort_key(order_id: str) -> str:
        return f"RED#{order_id}"


PREFIX_REDEMPTION = "RED#"


class CouponUse(Model):
    """How many orders of one buyer hold the coupon (reserved or redeemed)."""

    Meta = table_meta("coupons_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    uses = NumberAttribute(default=0)

    @staticmethod
    def sort_key(user_id: str) -> str:
        return f"USER#{user_id}"


class Buyer(Model):
    """BUYER#<user>/FIRST: written when the buyer's first order is paid."""

    Meta = table_meta("coupons_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="FIRST")
    order_id = UnicodeAttribute()
    paid_at = UnicodeAttribute()

    @staticmethod
    def key(user_id: str) -> str:
        return f"BUYER#{user_id}"


def raw_key(pk: str, sk: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def new_coupon(code: str, **fields: Any) -> CouponRecord:
    return CouponRecord(pk=CouponRecord.key(code), code=code,
                        gsi1sk=f"{fields['created_at']}#{code}", **fields)


def get(code: str) -> CouponRecord | None:
    try:
        return CouponRecord.get(CouponRecord.key(code), "META", consistent_read=True)
    except CouponRecord.DoesNotExist:
        return None


def page_all(limit: int, start: dict | None) -> Any:
    return CouponRecord.by_created.query(ALL, scan_index_forward=False, limit=limit,
                                         last_evaluated_key=start)


def page_redemptions(code: str, limit: int, start: dict | None) -> Any:
    return Redemption.query(CouponRecord.key(code),
                            Redemption.sk.startswith(PREFIX_REDEMPTION),
                            scan_index_forward=False, limit=limit, last_evaluated_key=start)
