"""Coupons: admins make and change them; checkout turns one into the pricing engine's terms
for an order (chalicelib.pricing.engine.CouponTerms). Counters (`reserved`, `redeemed`) are
kept by the reservation, consumption and release of redemptions."""
from __future__ import annotations

from typing import Any

from msgspec import UNSET
from pynamodb.exceptions import PutError, UpdateError
from pynamodb.expressions.update import Action

from chalicelib import cursor, db
from chalicelib.coupons import store
from chalicelib.coupons.schemas import (
    CouponIn,
    CouponList,
    CouponOut,
    CouponPatch,
    RedemptionList,
    RedemptionOut,
)
from chalicelib.coupons.store import CouponRecord
from chalicelib.errors import Conflict, NotFound, Refused
from chalicelib.pricing.engine import CouponTerms


class CouponExists(Conflict):
    code = "coupon_exists"
    message = "A coupon with this code exists."


class CouponNotFound(NotFound):
    code = "coupon_not_found"
    message = "No such coupon."


class CouponInvalid(Refused):
    code = "coupon_invalid"
    message = "The coupon is not valid."


def normalise(code: str) -> str:
    return code.strip().upper()


def _per_currency(amounts: Any) -> dict[str, int]:
    """A stored {currency: minor units} map (a PynamoDB raw map) as plain ints."""
    return {str(k): int(v) for k, v in db.plain_map(amounts).items()}


def out(c: CouponRecord) -> CouponOut:
    return CouponOut(
        code=c.code, kind=c.kind,  # type: ignore[arg-type]  # written from the Literal
        percent_off=int(c.percent_off) if c.percent_off is not None else None,
        amounts_off=_per_currency(c.amounts_off),
        resource_ids=list(c.resource_ids), categories=list(c.categories),
        creator_ids=list(c.creator_ids),
        minimum_amounts=_per_currency(c.minimum_amounts),
        valid_from=c.valid_from, valid_until=c.valid_until,
        max_redemptions=int(c.max_redemptions) if c.max_redemptions is not None else None,
        max_per_user=int(c.max_per_user), first_purchase_only=bool(c.first_purchase_only),
        active=bool(c.active), redeemed=int(c.redeemed), reserved=int(c.reserved),
        created_at=c.created_at)


def create(admin_id: str, body: CouponIn) -> CouponOut:
    """A new coupon; 409 when the code is taken (codes compare case-insensitively)."""
    if body.kind == "percent" and (body.percent_off is None or body.amounts_off):
        raise Refused("A percent coupon takes percent_off and no amounts_off.",
                      code="coupon_terms_invalid", details={"fields": {"percent_off": "required"}})
    if body.kind == "fixed" and (not body.amounts_off or body.percent_off is not None):
        raise Refused("A fixed coupon takes amounts_off and no percent_off.",
                      code="coupon_terms_invalid", details={"fields": {"amounts_off": "required"}})
    if body.valid_from and body.valid_until and body.valid_until <= body.valid_from:
        raise Refused("valid_until must be after valid_from.", code="coupon_terms_invalid",
                      details={"fields": {"valid_until": "before valid_from"}})
    code = normalise(body.code)
    record = store.new_coupon(
        code, kind=body.kind, percent_off=body.percent_off,
        amounts_off=dict(body.amounts_off or {}), resource_ids=list(body.resource_ids),
        categories=list(body.categories), creator_ids=list(body.creator_ids),
        minimum_amounts=dict(body.minimum_amounts or {}), valid_from=body.valid_from,
        valid_until=body.valid_until, max_redemptions=body.max_redemptions,
        max_per_user=body.max_per_user, first_purchase_only=body.first_purchase_only,
        created_by=admin_id, created_at=db.now_iso())
    try:
        record.save(condition=CouponRecord.pk.does_not_exist())
    except PutError as exc:
        if db.is_condition_failure(exc):
            raise CouponExists() from None
        raise
    return out(record)


def get(code: str) -> CouponOut:
    record = store.get(normalise(code))
    if record is None:
        raise CouponNotFound()
    return out(record)


def update(code: str, patch: CouponPatch) -> CouponOut:
    """Change a coupon's window, limits or activity; one conditional update."""
    actions: list[Action] = []
    for name in ("active", "valid_until", "max_redemptions", "max_per_user"):
        value = getattr(patch, name)
        if value is not UNSET:
            attribute = getattr(CouponRecord, name)
            actions.append(attribute.remove() if value is None else attribute.set(value))
    record = CouponRecord(pk=CouponRecord.key(normalise(code)), sk="META")
    if not actions:
        return get(code)
    try:
        record.update(actions=actions, condition=CouponRecord.pk.exists(),
                      add_version_condition=False)
    except UpdateError as exc:
        if db.is_condition_failure(exc):
            raise CouponNotFound() from None
        raise
    return get(code)


def list_all(limit: int, cursor_text: str | None) -> CouponList:
    """Every coupon, newest first. One Query of the `by_created` index."""
    scope = "coupons"
    items, position = db.page(store.page_all(limit, cursor.decode(cursor_text, scope)))
    return CouponList(items=[out(c) for c in items], next_cursor=cursor.encode(position, scope))


def redemptions(code: str, limit: int, cursor_text: str | None) -> RedemptionList:
    """A coupon's redemptions (reserved, consumed or released). One Query."""
    code = normalise(code)
    if store.get(code) is None:
        raise CouponNotFound()
    scope = f"redemptions:{code}"
    items, position = db.page(store.page_redemptions(code, limit,
                                                     cursor.decode(cursor_text, scope)))
    return RedemptionList(
        items=[RedemptionOut(order_id=r.order_id, user_id=r.user_id,
                             status=r.status,
                             discount=int(r.discount), currency=r.currency, at=r.at)
               for r in items],
        next_cursor=cursor.encode(position, scope))


def terms_for(record: CouponRecord | None, currency: str, now_iso: str) -> CouponTerms:
    """The engine's terms of a coupon for an order in `currency` at `now_iso`, refusing one
    that is unknown, inactive, outside its window, used up, or has no amount in `currency`.
    (Per-buyer limits and first purchases: coupons.public, which checkout uses.)"""
    if record is None or not record.active:
        raise CouponInvalid()
    if record.valid_from and now_iso < record.valid_from:
        raise CouponInvalid("The coupon is not valid yet.", code="coupon_not_started")
    if record.valid_until and now_iso >= record.valid_until:
        raise CouponInvalid("The coupon has expired.", code="coupon_expired")
    if record.max_redemptions is not None and \
            int(record.claimed or 0) >= int(record.max_redemptions):
        raise CouponInvalid("The coupon has been used up.", code="coupon_exhausted")
    amount_off = _per_currency(record.amounts_off).get(currency, 0)
    if record.kind == "fixed" and not amount_off:
        raise CouponInvalid(f"The coupon has no amount in {currency}.",
                            code="coupon_not_applicable")
    return CouponTerms(
        code=record.code, percent_off=int(record.percent_off or 0), amount_off=amount_off,
        resource_ids=frozenset(record.resource_ids), categories=frozenset(record.categories),
        creator_ids=frozenset(record.creator_ids),
        minimum_amount=_per_currency(record.minimum_amounts).get(currency, 0))
