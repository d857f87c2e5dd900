"""Sharing and referrals (分销): your code and rewards, the attribution of a referral link's
visit, share links with their previews."""
from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.catalog.schemas import PageQuery
from chalicelib.referrals.schemas import (
    AttributionEnvelope,
    AttributionIn,
    ReferralOut,
    ShareOut,
)
from chalicelib.web import USER, Ctx, Router, lazy

if TYPE_CHECKING:  # the module loads on first use (see web.lazy)
    from chalicelib.referrals import service
else:
    service = lazy("chalicelib.referrals.service")

bp = Blueprint(__name__)
api = Router(bp)
TAGS = ("referrals",)


@api.route("/me/referral", "GET", role=USER, tags=TAGS, query=PageQuery,
           response=ReferralOut, errors=(400, 401),
           summary="Your referral code and link, the reward terms, your totals and rewards")
def my_referral(ctx: Ctx) -> ReferralOut:
    return service.mine(ctx.user_id, ctx.query.limit, ctx.query.cursor)


@api.route("/me/referral/attribution", "PUT", role=USER, tags=TAGS, body=AttributionIn,
           response=AttributionEnvelope, errors=(400, 401, 404, 422),
           summary="Credit your purchases to the referral link you came by (30 days)")
def attribute(ctx: Ctx) -> AttributionEnvelope:
    b = ctx.body
    return AttributionEnvelope(attribution=service.attribute(ctx.user_id, b.code, b.visited_at,
                                                             b.resource_id))


@api.route("/resources/{resource_id}/share", "GET", role=USER, tags=TAGS, response=ShareOut,
           errors=(401, 404), summary="A share link carrying your referral code, and its preview")
def share(ctx: Ctx, resource_id: str) -> ShareOut:
    return service.share(ctx.user_id, resource_id)
