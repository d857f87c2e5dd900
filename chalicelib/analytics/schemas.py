"""Reports as the API shows and takes them."""
from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct, field

# Any ISO 4217 code: counters exist for the currencies orders were paid in (analytics never
# imports the catalog, which publishes analytics events).
Currency = Annotated[str, Meta(pattern=r"^[a-z]{3}$", description="ISO 4217, lower case")]
Day = Annotated[str, Meta(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
                          description="A day, YYYY-MM-DD (UTC)")]


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
    rows: list[RevenueRow]
