"""Administration of coupons."""
from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.coupons.schemas import (
    CouponEnvelope,
    CouponIn,
    CouponList,
    CouponPatch,
    CouponsQuery,
    RedemptionList,
)
from chalicelib.web import ADMIN, Ctx, Router, lazy

if TYPE_CHECKING:  # the module itself loads on first use (see web.lazy)
    from chalicelib.coupons import service as coupons
else:
    coupons = lazy("chalicelib.coupons.service")

bp = Blueprint(__name__)
api = Router(bp)
TAGS = ("coupons",)


@api.route("/admin/coupons", "GET", role=ADMIN, tags=TAGS, query=CouponsQuery,
           response=CouponList, errors=(400, 401, 403), summary="Coupons, newest first")
def list_coupons(ctx: Ctx) -> CouponList:
    return coupons.list_all(ctx.query.limit, ctx.query.cursor)


@api.route("/admin/coupons", "POST", role=ADMIN, tags=TAGS, body=CouponIn, status=201,
           response=CouponEnvelope, errors=(400, 401, 403, 409, 422),
           summary="Make a coupon (percent or fixed per currency, scope, window, limits)")
def create_coupon(ctx: Ctx) -> CouponEnvelope:
    return CouponEnvelope(coupon=coupons.create(ctx.user_id, ctx.body))


@api.route("/admin/coupons/{code}", "GET", role=ADMIN, tags=TAGS, response=CouponEnvelope,
           errors=(401, 403, 404), summary="One coupon with its counters")
def get_coupon(ctx: Ctx, code: str) -> CouponEnvelope:
    return CouponEnvelope(coupon=coupons.get(code))


@api.route("/admin/coupons/{code}", "PATCH", role=ADMIN, tags=TAGS, body=CouponPatch,
           response=CouponEnvelope, errors=(400, 401, 403, 404),
           summary="Change a coupon's window, limits or whether it is active")
def patch_coupon(ctx: Ctx, code: str) -> CouponEnvelope:
    return CouponEnvelope(coupon=coupons.update(code, ctx.body))


@api.route("/admin/coupons/{code}/redemptions", "GET", role=ADMIN, tags=TAGS,
           query=CouponsQuery, response=RedemptionList, errors=(400, 401, 403, 404),
           summary="A coupon's redemptions")
def coupon_redemptions(ctx: Ctx, code: str) -> RedemptionList:
    return coupons.redemptions(code, ctx.query.limit, ctx.query.cursor)
