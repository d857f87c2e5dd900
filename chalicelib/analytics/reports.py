"""The behaviour reports, from the rollup's daily counters: the funnel (views → checkouts →
paid), memberships (active members, MRR, churn) and users (new users, searches, downloads).
Each reads one Query per scope of counters (every metric of a scope's day is one item), and
one per gauge, whatever the range (at most two years)."""
from __future__ import annotations

from datetime import date, timedelta

from chalicelib.analytics import periods, rollup
from chalicelib.analytics.schemas import (
    FunnelReport,
    FunnelRow,
    MembershipsReport,
    MembershipsRow,
    UsersReport,
    UsersRow,
)


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def funnel(first: str, last: str, granularity: str, resource_id: str | None) -> FunnelReport:
    """Views, checkouts and paid orders of the platform, or of one resource."""
    periods.check_range(first, last)
    scope = f"resource#{resource_id}" if resource_id else "platform"
    series, viewers = rollup.scope_days(scope, first, last, ("views", "checkouts", "paid"))
    rows = periods.summed(first, last, granularity, series)
    views, checkouts, paid = (sum(values.values()) for values in series.values())
    return FunnelReport(
        scope=scope, granularity=granularity, date_from=first, date_to=last, views=views,
        unique_viewers=viewers, checkouts=checkouts, paid=paid,
        view_to_checkout=_rate(checkouts, views), checkout_to_paid=_rate(paid, checkouts),
        view_to_paid=_rate(paid, views),
        rows=[FunnelRow(period=period, **row) for period, row in rows.items()])


def memberships(first: str, last: str, currency: str, granularity: str) -> MembershipsReport:
    """Active members and MRR at the end of each period (gauges), members started, renewed
    and cancelled in it, and the range's churn."""
    periods.check_range(first, last)
    before = (date.fromisoformat(first) - timedelta(days=1)).isoformat()
    active = rollup.gauge("members", before, last)
    mrr = rollup.gauge(f"mrr#{currency}", first, last)
    flows = rollup.dailies(("members_started", "members_renewed", "members_cancelled"),
                           first, last)
    sums = periods.summed(first, last, granularity, flows)
    ends = periods.last_days(first, last, granularity)
    cancelled = sum(flows["members_cancelled"].values())
    return MembershipsReport(
        currency=currency, granularity=granularity, date_from=first, date_to=last,
        active_at_start=active[before], active_at_end=active[last], mrr_at_end=mrr[last],
        started=sum(flows["members_started"].values()), cancelled=cancelled,
        churn_rate=_rate(cancelled, active[before]),
        rows=[MembershipsRow(period=period, active=active[ends[period]], mrr=mrr[ends[period]],
                             started=row["members_started"], renewed=row["members_renewed"],
                             cancelled=row["members_cancelled"])
              for period, row in sums.items()])


def users(first: str, last: str, granularity: str) -> UsersReport:
    """New users per period, and what users did: searches and downloads."""
    periods.check_range(first, last)
    series = rollup.dailies(("signups", "searches", "downloads"), first, last)
    rows = periods.summed(first, last, granularity, series)
    return UsersReport(
        granularity=granularity, date_from=first, date_to=last,
        new_users=sum(series["signups"].values()),
        rows=[UsersRow(period=period, new_users=row["signups"], searches=row["searches"],
                       downloads=row["downloads"]) for period, row in rows.items()])
