"""Reports from the analytics counters: the platform's for admins, a creator's own for them.
Every report also comes as CSV (`?format=csv`, see `web.Csv`). Titles and names of top lists
and statements are resolved here, through the catalog's and accounts' ports, with one
BatchGetItem (analytics never imports the catalog)."""
from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.analytics.schemas import (
    CreatorTopQuery,
    EarningsReport,
    FunnelQuery,
    FunnelReport,
    MembershipsQuery,
    MembershipsReport,
    RangeQuery,
    RevenueQuery,
    RevenueReport,
    Statement,
    TopQuery,
    TopReport,
    UsersReport,
)
from chalicelib.web import ADMIN, CREATOR, Csv, Ctx, Router, lazy

if TYPE_CHECKING:  # the modules themselves load on first use (see web.lazy)
    from chalicelib import db
    from chalicelib.accounts import profiles as accounts
    from chalicelib.analytics import reports, revenue
    from chalicelib.catalog import public as catalog
else:
    accounts = lazy("chalicelib.accounts.profiles")
    catalog = lazy("chalicelib.catalog.public")
    db = lazy("chalicelib.db")
    reports = lazy("chalicelib.analytics.reports")
    revenue = lazy("chalicelib.analytics.revenue")

bp = Blueprint(__name__)
api = Router(bp)
TAGS = ("reports",)
TOP_CSV = Csv("top", rows=("items",))


def _titles(resource_ids: list[str]) -> dict[str, str]:
    """Resources' titles, 100 to a BatchGetItem (a top list is one)."""
    ids, titles = sorted(set(resource_ids)), {}
    for n in range(0, len(ids), 100):
        [found] = db.batch_read(catalog.resources_read(ids[n:n + 100]))
        titles.update({i: offer.title for i, offer in catalog.offers_in(found).items()})
    return titles


def _named(report: TopReport) -> TopReport:
    ids = [item.id for item in report.items]
    if report.kind == "creators":
        names = accounts.names_in(db.batch_read(accounts.names_read(ids))[0]) if ids else {}
    else:
        names = _titles(ids)
    for item in report.items:
        item.name = names.get(item.id)
    return report


@api.route("/admin/reports/revenue", "GET", role=ADMIN, tags=TAGS, csv=Csv("revenue"),
           query=RevenueQuery, response=RevenueReport, errors=(400, 401, 403, 422),
           summary="Gross, refunds, net and paid orders by day, week or month, per currency")
def revenue_report(ctx: Ctx) -> RevenueReport:
    q = ctx.query
    return revenue.report("platform", q.currency, q.date_from, q.date_to, q.granularity)


@api.route("/admin/reports/top", "GET", role=ADMIN, tags=TAGS, csv=TOP_CSV, query=TopQuery,
           response=TopReport, errors=(400, 401, 403, 422),
           summary="The resources or creators that sold most over whole months, by gross")
def top_report(ctx: Ctx) -> TopReport:
    q = ctx.query
    return _named(revenue.top("platform", q.kind, q.currency, q.month_from, q.month_to,
                              q.limit))


@api.route("/creator/reports/earnings", "GET", role=CREATOR, tags=TAGS, csv=Csv("earnings"),
           query=RevenueQuery, response=EarningsReport, errors=(400, 401, 403, 422),
           summary="Your gross, refunds, platform fee and net by day, week or month")
def earnings_report(ctx: Ctx) -> EarningsReport:
    q = ctx.query
    return revenue.earnings(ctx.user_id, q.currency, q.date_from, q.date_to, q.granularity)


@api.route("/creator/reports/top", "GET", role=CREATOR, tags=TAGS, csv=TOP_CSV,
           query=CreatorTopQuery, response=TopReport, errors=(400, 401, 403, 422),
           summary="Your resources that sold most over whole months, by gross")
def creator_top_report(ctx: Ctx) -> TopReport:
    q = ctx.query
    return _named(revenue.top(f"creator#{ctx.user_id}", "resources", q.currency,
                              q.month_from, q.month_to, q.limit))


@api.route("/creator/statements/{month}", "GET", role=CREATOR, tags=TAGS,
           csv=Csv("statement", rows=("totals", "lines")), response=Statement,
           errors=(400, 401, 403, 422),
           summary="Your statement of a month (YYYY-MM): totals per currency, a line per "
                   "resource")
def creator_statement(ctx: Ctx, month: str) -> Statement:
    statement = revenue.statement(ctx.user_id, month, db.now_iso())
    titles = _titles([line.resource_id for line in statement.lines])
    for line in statement.lines:
        line.title = titles.get(line.resource_id)
    return statement


@api.route("/admin/reports/funnel", "GET", role=ADMIN, tags=TAGS, csv=Csv("funnel"),
           query=FunnelQuery, response=FunnelReport, errors=(400, 401, 403, 422),
           summary="Views, checkouts and paid orders, and the conversion between them")
def funnel_report(ctx: Ctx) -> FunnelReport:
    q = ctx.query
    return reports.funnel(q.date_from, q.date_to, q.granularity, q.resource_id)


@api.route("/admin/reports/memberships", "GET", role=ADMIN, tags=TAGS,
           csv=Csv("memberships"), query=MembershipsQuery, response=MembershipsReport,
           errors=(400, 401, 403, 422), summary="Active members, MRR and churn")
def memberships_report(ctx: Ctx) -> MembershipsReport:
    q = ctx.query
    return reports.memberships(q.date_from, q.date_to, q.currency, q.granularity)


@api.route("/admin/reports/users", "GET", role=ADMIN, tags=TAGS, csv=Csv("users"),
           query=RangeQuery, response=UsersReport, errors=(400, 401, 403, 422),
           summary="New users, searches and downloads by day, week or month")
def users_report(ctx: Ctx) -> UsersReport:
    q = ctx.query
    return reports.users(q.date_from, q.date_to, q.granularity)
