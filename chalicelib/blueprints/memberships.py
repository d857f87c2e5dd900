"""Membership plans, a buyer's membership, and their administration."""
from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.memberships.schemas import (
    ChangeIn,
    MembershipEnvelope,
    PlanEnvelope,
    PlanIn,
    PlanList,
    PlanPatch,
)
from chalicelib.web import ADMIN, USER, Ctx, Router, lazy

if TYPE_CHECKING:  # the modules themselves load on first use (see web.lazy)
    from chalicelib.memberships import billing, plans
else:
    billing = lazy("chalicelib.memberships.billing")
    plans = lazy("chalicelib.memberships.plans")

bp = Blueprint(__name__)
api = Router(bp)
TAGS = ("memberships",)


@api.route("/membership/plans", "GET", role=USER, tags=TAGS, response=PlanList,
           errors=(401,), summary="The membership plans on offer, by level")
def list_plans(ctx: Ctx) -> PlanList:
    return plans.list_plans(include_inactive=False)


@api.route("/me/membership", "GET", role=USER, tags=TAGS, response=MembershipEnvelope,
           errors=(401,), summary="Your membership (null when you have none)")
def my_membership(ctx: Ctx) -> MembershipEnvelope:
    return MembershipEnvelope(membership=billing.mine(ctx.user_id))


@api.route("/me/membership/cancel", "POST", role=USER, tags=TAGS,
           response=MembershipEnvelope, errors=(401, 404, 422, 502),
           summary="Cancel at the end of the paid period")
def cancel_membership(ctx: Ctx) -> MembershipEnvelope:
    return MembershipEnvelope(membership=billing.cancel(ctx.user_id))


@api.route("/me/membership/resume", "POST", role=USER, tags=TAGS,
           response=MembershipEnvelope, errors=(401, 404, 422, 502),
           summary="Take back a cancellation before the period ends")
def resume_membership(ctx: Ctx) -> MembershipEnvelope:
    return MembershipEnvelope(membership=billing.resume(ctx.user_id))


@api.route("/me/membership/change", "POST", role=USER, tags=TAGS, body=ChangeIn,
           response=MembershipEnvelope, errors=(400, 401, 404, 409, 422, 502),
           summary="Move to another plan or interval now, prorated by Stripe")
def change_membership(ctx: Ctx) -> MembershipEnvelope:
    b = ctx.body
    return MembershipEnvelope(membership=billing.change(ctx.user_id, b.plan_id, b.interval))


@api.route("/admin/plans", "GET", role=ADMIN, tags=TAGS, response=PlanList,
           errors=(401, 403), summary="Every plan, inactive ones too")
def admin_plans(ctx: Ctx) -> PlanList:
    return plans.list_plans(include_inactive=True)


@api.route("/admin/plans", "POST", role=ADMIN, tags=TAGS, body=PlanIn, status=201,
           response=PlanEnvelope, errors=(400, 401, 403, 409), summary="Make a plan")
def create_plan(ctx: Ctx) -> PlanEnvelope:
    return PlanEnvelope(plan=plans.create(ctx.body))


@api.route("/admin/plans/{plan_id}", "PATCH", role=ADMIN, tags=TAGS, body=PlanPatch,
           response=PlanEnvelope, errors=(400, 401, 403, 404), summary="Change a plan")
def patch_plan(ctx: Ctx, plan_id: str) -> PlanEnvelope:
    return PlanEnvelope(plan=plans.update(plan_id, ctx.body))


@api.route("/admin/plans/{plan_id}/sync", "POST", role=ADMIN, tags=TAGS,
           response=PlanEnvelope, errors=(401, 403, 404, 502),
           summary="Give each of the plan's prices its Stripe Price")
def sync_plan(ctx: Ctx, plan_id: str) -> PlanEnvelope:
    return PlanEnvelope(plan=plans.sync(plan_id))
