"""Reports as the API shows and takes them."""
from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct, field

# Any ISO 4217 code: counters exist for the currencies orders were paid in (analytics never
# imports the catalog, which publishes analytics events).
Currency = Annotated[str, Meta(pattern=r"^[a-z]{3}$", description="ISO 4217, lower case")]
Day = Annotated[str, Meta(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
                          description="A day, YYYY-MM-DD (UTC)")]
Month = Annotated[str, Meta(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$",
                            description="A month, YYYY-MM (UTC)")]
Limit = Annotated[int, Meta(ge=1, le=100)]


class RevenueQuery(Struct, forbid_unknown_fields=True):
    date_from: Day = field(name="from")
    date_to: Day = field(name="to")
    currency: Currency
    granularity: Literal["day", "week", "month"] = "day"


class RevenueRow(Struct):
    period: str  # the day, the week's Monday, or YYYY-MM
    gross: int  # minor units
    refunds: int
    net: int
    orders: int


class RevenueReport(Struct):
    currency: str
    granularity: str
    date_from: str = field(name="from")
    date_to: str = field(name="to")
    rows: list[RevenueRow]


class EarningsRow(Struct):
    period: str  # the day, the week's Monday, or YYYY-MM
    gross: int  # minor units: the creator's share of what buyers paid
    refunds: int  # their share of what was refunded
    fee: int  # the platform's fee, counted at the rate of each sale
    net: int  # payable: gross - refunds - fee
    orders: int


class EarningsReport(Struct):
    """A creator's earnings in one currency; money in minor units."""

    currency: str
    granularity: str
    date_from: str = field(name="from")
    date_to: str = field(name="to")
    rows: list[EarningsRow]


class TopQuery(Struct, forbid_unknown_fields=True):
    month_from: Month = field(name="from")
    month_to: Month = field(name="to")
    currency: Currency
    kind: Literal["resources", "creators"] = "resources"
    limit: Limit = 10


class CreatorTopQuery(Struct, forbid_unknown_fields=True):
    month_from: Month = field(name="from")
    month_to: Month = field(name="to")
    currency: Currency
    limit: Limit = 10


class TopItem(Struct):
    rank: int
    id: str  # a resource's or a creator's id
    gross: int  # minor units
    refunds: int
    orders: int  # paid orders with it
    name: str | None = None  # the resource's title or the creator's display name


class TopReport(Struct):
    """What sold most over whole months (`from`..`to`, YYYY-MM), by gross."""

    kind: str
    currency: str
    date_from: str = field(name="from")
    date_to: str = field(name="to")
    items: list[TopItem]


class StatementTotal(Struct):
    currency: str
    gross: int  # minor units
    refunds: int  # refunds made this month (of any month's sales)
    fee: int  # the platform's fee (net of the fee refunds give back)
    net: int  # payable: gross - refunds - fee
    orders: int


class StatementLine(Struct):
    currency: str
    resource_id: str
    gross: int
    refunds: int
    orders: int
    title: str | None = None


class Statement(Struct):
    """A creator's month: totals per currency and a line per resource."""

    month: str
    date_from: str = field(name="from")  # the month's first day
    date_to: str = field(name="to")  # its last day
    totals: list[StatementTotal]
    lines: list[StatementLine]


class RangeQuery(Struct, forbid_unknown_fields=True):
    date_from: Day = field(name="from")
    date_to: Day = field(name="to")
    granularity: Literal["day", "week", "month"] = "day"


class FunnelQuery(Struct, forbid_unknown_fields=True):
    date_from: Day = field(name="from")
    date_to: Day = field(name="to")
    granularity: Literal["day", "week", "month"] = "day"
    resource_id: Annotated[str, Meta(min_length=1, max_length=64)] | None = None


class FunnelRow(Struct):
    period: str  # the day, the week's Monday, or YYYY-MM
    views: int
    checkouts: int  # checkout sessions opened (per line)
    paid: int  # paid orders (per line, for one resource)


class FunnelReport(Struct):
    """Views → checkouts → paid, with the conversion between the steps (0..1)."""

    scope: str  # `platform` or `resource#<id>`
    granularity: str
    date_from: str = field(name="from")
    date_to: str = field(name="to")
    views: int
    unique_viewers: int  # estimated (a sketch), over the whole range
    checkouts: int
    paid: int
    view_to_checkout: float
    checkout_to_paid: float
    view_to_paid: float
    rows: list[FunnelRow]


class MembershipsQuery(Struct, forbid_unknown_fields=True):
    date_from: Day = field(name="from")
    date_to: Day = field(name="to")
    currency: Currency
    granularity: Literal["day", "week", "month"] = "day"


class MembershipsRow(Struct):
    period: str  # the day, the week's Monday, or YYYY-MM
    active: int  # active members at the end of the period
    mrr: int  # monthly recurring revenue at the end of the period, minor units
    started: int
    renewed: int
    cancelled: int


class MembershipsReport(Struct):
    """Active members, MRR and churn; churn = cancelled in the range over the members active
    when it began (0 when there were none)."""

    currency: str
    granularity: str
    date_from: str = field(name="from")
    date_to: str = field(name="to")
    active_at_start: int
    active_at_end: int
    mrr_at_end: int
    started: int
    cancelled: int
    churn_rate: float
    rows: list[MembershipsRow]


class UsersRow(Struct):
    period: str
    new_users: int
    searches: int
    downloads: int


class UsersReport(Struct):
    granularity: str
    date_from: str = field(name="from")
    date_to: str = field(name="to")
    new_users: int
    rows: list[UsersRow]
