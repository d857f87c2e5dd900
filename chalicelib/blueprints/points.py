"""Points: your own account and ledger; admins' adjustments."""
from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.points.schemas import (
    PointsAccountEnvelope,
    PointsAdjustIn,
    PointsOut,
    PointsQuery,
)
from chalicelib.web import ADMIN, USER, Ctx, Router, lazy

if TYPE_CHECKING:  # the module itself loads on first use (see web.lazy)
    from chalicelib.points import service as points
else:
    points = lazy("chalicelib.points.service")

bp = Blueprint(__name__)
api = Router(bp)
TAGS = ("points",)


@api.route("/me/points", "GET", role=USER, tags=TAGS, query=PointsQuery, response=PointsOut,
           errors=(400, 401),
           summary="Your points (balance, available, held, debt) and ledger, newest first")
def my_points(ctx: Ctx) -> PointsOut:
    return points.mine(ctx.user_id, ctx.query.limit, ctx.query.cursor)


@api.route("/admin/users/{user_id}/points", "POST", role=ADMIN, tags=TAGS, body=PointsAdjustIn,
           response=PointsAccountEnvelope, errors=(400, 401, 403, 404, 409, 422),
           summary="Add or take a user's points (never below 0 available)")
def adjust_points(ctx: Ctx, user_id: str) -> PointsAccountEnvelope:
    b = ctx.body
    return PointsAccountEnvelope(account=points.adjust(ctx.user_id, user_id, b.delta, b.reason,
                                                       b.idempotency_key))
