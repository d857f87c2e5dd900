"""Reports for admins, from the analytics rollups."""
from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.analytics.schemas import RevenueQuery, RevenueReport
from chalicelib.web import ADMIN, Ctx, Router, lazy

if TYPE_CHECKING:  # the module itself loads on first use (see web.lazy)
    from chalicelib.analytics import revenue
else:
    revenue = lazy("chalicelib.analytics.revenue")

bp = Blueprint(__name__)
api = Router(bp)


@api.route("/admin/reports/revenue", "GET", role=ADMIN, tags=("reports",),
           query=RevenueQuery, response=RevenueReport, errors=(400, 401, 403, 422),
           summary="Gross, refunds, net and paid orders by day, week or month, per currency")
def revenue_report(ctx: Ctx) -> RevenueReport:
    q = ctx.query
    return revenue.report("platform", q.currency, q.date_from, q.date_to, q.granularity)
