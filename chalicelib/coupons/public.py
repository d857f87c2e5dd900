"""The coupons context as checkout uses it, without its models: the part of checkout's one
BatchGetItem that reads a coupon with the buyer's uses of it and first-purchase marker, the
engine's terms from what that read found, and the items a reservation adds to the order's
transaction (so a coupon is reserved atomically with the order that uses it, or not at all).

A reservation adds, in this order: the coupon's counters (`claimed < max_redemptions`, still
active), the redemption (absent), the buyer's uses (`uses < max_per_user`), and for a
first-purchase coupon a check that the buyer has no paid order. `refusal` reads which of
them a cancelled transaction refused."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib import db
from chalicelib.config import settings
from chalicelib.coupons import store
from chalicelib.coupons.service import CouponInvalid, normalise, terms_for
from chalicelib.coupons.store import Buyer, CouponRecord, CouponUse, Redemption
from chalicelib.pricing.engine import CouponTerms


@dataclass(frozen=True)
class Found:
    """What `read` found: the coupon (None when unknown) and the buyer's facts."""

    code: str
    user_id: str
    coupon: CouponRecord | None
    uses: int
    bought_before: bool


def read(code: str, user_id: str) -> db.Read:
    """The part of a `db.batch_read` that reads the coupon, the buyer's uses of it and
    whether the buyer has paid an order before."""
    key = CouponRecord.key(normalise(code))
    return db.Read(settings().coupons_table, [
        store.raw_key(key, "META"), store.raw_key(key, CouponUse.sort_key(user_id)),
        store.raw_key(Buyer.key(user_id), "FIRST")])


def found_in(items: list[dict], code: str, user_id: str) -> Found:
    by_sk = {(item["pk"]["S"], item["sk"]["S"]): item for item in items}
    key = CouponRecord.key(normalise(code))
    meta = by_sk.get((key, "META"))
    use = by_sk.get((key, CouponUse.sort_key(user_id)))
    return Found(code=normalise(code), user_id=user_id,
                 coupon=CouponRecord.from_raw_data(meta) if meta else None,
                 uses=int(use["uses"]["N"]) if use and "uses" in use else 0,
                 bought_before=(Buyer.key(user_id), "FIRST") in by_sk)


def terms(found: Found, currency: str, now_iso: str) -> CouponTerms:
    """The engine's terms of the coupon for this buyer, refusing one they may not use."""
    result = terms_for(found.coupon, currency, now_iso)
    coupon = found.coupon
    assert coupon is not None  # terms_for refused an unknown one
    if found.uses >= int(coupon.max_per_user):
        raise CouponInvalid("You have used this coupon as often as it allows.",
                            code="coupon_limit_reached")
    if coupon.first_purchase_only and found.bought_before:
        raise CouponInvalid("The coupon is for a first purchase only.",
                            code="coupon_first_purchase_only")
    return result


def add_reservation(tx: Any, found: Found, order_id: str, discount: int, currency: str,
                    at: str) -> int:
    """Reserve the coupon for an order in an open `db.transaction()`; returns how many
    items it added (see the module's docstring for their order and conditions)."""
    coupon = found.coupon
    assert coupon is not None
    key = CouponRecord.key(found.code)
    limit = CouponRecord.active == True  # noqa: E712 - a DynamoDB condition, not a test
    if coupon.max_redemptions is not None:
        limit &= CouponRecord.claimed.does_not_exist() | \
            (CouponRecord.claimed < CouponRecord.max_redemptions)
    tx.update(CouponRecord(pk=key, sk="META"),
              actions=[CouponRecord.claimed.add(1), CouponRecord.reserved.add(1)],
              condition=CouponRecord.pk.exists() & limit, add_version_condition=False)
    tx.save(Redemption(pk=key, sk=Redemption.sort_key(order_id), order_id=order_id,
                       user_id=found.user_id, status="reserved", discount=discount,
                       currency=currency, at=at),
            condition=Redemption.sk.does_not_exist())
    tx.update(CouponUse(pk=key, sk=CouponUse.sort_key(found.user_id)),
              actions=[CouponUse.uses.add(1)],
              condition=CouponUse.uses.does_not_exist()
              | (CouponUse.uses < int(coupon.max_per_user)))
    if not coupon.first_purchase_only:
        return 3
    tx.condition_check(Buyer, Buyer.key(found.user_id), "FIRST",
                       condition=Buyer.pk.does_not_exist())
    return 4


def refusal(codes: list[str | None], start: int) -> CouponInvalid | None:
    """Why a cancelled transaction refused the reservation added at position `start`, or
    None when the reservation was not what failed."""
    mine = codes[start:start + 4]
    if not mine or "ConditionalCheckFailed" not in mine:
        return None
    failed = mine.index("ConditionalCheckFailed")
    return [CouponInvalid("The coupon has been used up.", code="coupon_exhausted"),
            CouponInvalid("The coupon is already reserved for this order."),
            CouponInvalid("You have used this coupon as often as it allows.",
                          code="coupon_limit_reached"),
            CouponInvalid("The coupon is for a first purchase only.",
                          code="coupon_first_purchase_only")][failed]
