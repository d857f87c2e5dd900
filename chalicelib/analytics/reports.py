"""The behaviour reports, from the rollup's daily counters: the funnel (views → checkouts →
paid), memberships (active members, MRR, churn) and users (new users, searches, downloads).
Each reads one Query per counter family, whatever the range (at most two years)."""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from chalicelib.analytics import rollup
from chalicelib.analytics.revenue import _bucket, _check_range, _days
from chalicelib.analytics.schemas import (
    FunnelReport,
    FunnelRow,
    MembershipsReport,
    MembershipsRow,
    UsersReport,
    UsersRow,
)


def _periods(first: str, last: str, granularity: str,
             series: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Daily series summed into days, weeks (from Monday) or months."""
    rows: dict[str, dict[str, int]] = {}
    for day in _days(first, last):
        row = rows.setdefault(_bucket(day, granularity), dict.fromkeys(series, 0))
        for name, values in series.items():
            row[name] += values.get(day, 0)
    return rows


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def funnel(first: str, last: str, granularity: str, resource_id: str | None) -> FunnelReport:
    """Views, checkouts and paid orders of the platform, or of one resource."""
    _check_range(first, last)
    scope = f"resource#{resource_id}" if resource_id else "platform"
    series = {name: rollup.daily(name, first, last, scope)
              for name in ("views", "checkouts", "paid")}
    rows = _periods(first, last, granularity, series)
    views, checkouts, paid = (sum(values.values()) for values in series.values())
    return FunnelReport(
        scope=scope, granularity=granularity, date_from=first, date_to=last, views=views,
        unique_viewers=rollup.unique(scope, first, last), checkouts=checkouts, paid=paid,
        view_to_checkout=_rate(checkouts, views), checkout_to_paid=_rate(paid, checkouts),
        view_to_paid=_rate(paid, views),
        rows=[FunnelRow(period=period, **row) for period, row in rows.items()])


def _last_of(period_days: dict[str, list[str]], values: dict[str, int]) -> Callable[[str], int]:
    return lambda period: values[period_days[period][-1]]


def memberships(first: str, last: str, currency: str, granularity: str) -> MembershipsReport:
    """Active members and MRR at the end of each period (gauges), members started, renewed
    and cancelled in it, and the range's churn."""
    _check_range(first, last)
    before = (date.fromisoformat(first) - timedelta(days=1)).isoformat()
    active = rollup.gauge("members", before, last)
    mrr = rollup.gauge(f"mrr#{currency}", first, last)
    flows = {name: rollup.daily(name, first, last)
             for name in ("members_started", "members_renewed", "members_cancelled")}
    sums = _periods(first, last, granularity, flows)
    period_days: dict[str, list[str]] = {}
    for day in _days(first, last):
        period_days.setdefault(_bucket(day, granularity), []).append(day)
    active_at, mrr_at = _last_of(period_days, active), _last_of(period_days, mrr)
    cancelled = sum(flows["members_cancelled"].values())
    return MembershipsReport(
        currency=currency, granularity=granularity, date_from=first, date_to=last,
        active_at_start=active[before], active_at_end=active[last], mrr_at_end=mrr[last],
        started=sum(flows["members_started"].values()), cancelled=cancelled,
        churn_rate=_rate(cancelled, active[before]),
        rows=[MembershipsRow(period=period, active=active_at(period), mrr=mrr_at(period),
                             started=row["members_started"], renewed=row["members_renewed"],
                             cancelled=row["members_cancelled"])
              for period, row in sums.items()])


def users(first: str, last: str, granularity: str) -> UsersReport:
    """New users per period, and what users did: searches and downloads."""
    _check_range(first, last)
    series = {name: rollup.daily(name, first, last)
              for name in ("signups", "searches", "downloads")}
    rows = _periods(first, last, granularity, series)
    return UsersReport(
        granularity=granularity, date_from=first, date_to=last,
        new_users=sum(series["signups"].values()),
        rows=[UsersRow(period=period, new_users=row["signups"], searches=row["searches"],
                       downloads=row["downloads"]) for period, row in rows.items()])
