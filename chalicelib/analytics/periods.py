"""The periods every report is cut into: the days of a range, and days summed into days,
weeks (from Monday) or months. One place, so every report answers the same range rules."""
from __future__ import annotations

from datetime import date, timedelta

from chalicelib.errors import Refused

MAX_DAYS = 732


def days(first: str, last: str) -> list[str]:
    """The days from `first` to `last`, inclusive."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def bucket(day: str, granularity: str) -> str:
    """The period a day falls in: itself, its week's Monday, or YYYY-MM."""
    if granularity == "month":
        return day[:7]
    if granularity == "week":
        d = date.fromisoformat(day)
        return (d - timedelta(days=d.weekday())).isoformat()
    return day


def check_range(first: str, last: str) -> None:
    """A range that ends before it starts, or longer than two years, is refused (422)."""
    try:
        span = (date.fromisoformat(last) - date.fromisoformat(first)).days
    except ValueError:
        raise Refused("Not a calendar day.", code="invalid_date") from None
    if span < 0 or span > MAX_DAYS:
        raise Refused("`to` must be on or after `from`, at most two years later.",
                      code="invalid_range")


def summed(first: str, last: str, granularity: str,
           series: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Daily series (name -> day -> value) summed per period, every period present."""
    rows: dict[str, dict[str, int]] = {}
    for day in days(first, last):
        row = rows.setdefault(bucket(day, granularity), dict.fromkeys(series, 0))
        for name, values in series.items():
            row[name] += values.get(day, 0)
    return rows


def last_days(first: str, last: str, granularity: str) -> dict[str, str]:
    """Each period's last day within the range (where a gauge is read)."""
    return {bucket(day, granularity): day for day in days(first, last)}
