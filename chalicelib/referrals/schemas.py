"""Referrals and sharing as the API shows and takes them."""
from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from chalicelib.accounts.schemas import Input
from chalicelib.catalog.schemas import Money

# As `GET /me/referral` hands it out: 8 of Crockford's base-32 letters, any case.
REFERRAL_CODE = r"^[0-9A-Za-z]{8}$"
ReferralCode = Annotated[str, Meta(min_length=8, max_length=8, pattern=REFERRAL_CODE,
                                   description="A referral code (`?ref=` of a share URL)")]
RewardKind = Literal["points", "commission"]


class AttributionIn(Input):
    """The referral link the user came by: its code and, when the storefront kept it from a
    visit before signing in, when that was (at most 30 days ago; default now)."""

    code: ReferralCode
    visited_at: Annotated[str, Meta(
        pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
                r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?Z$",
        description="When, in UTC: YYYY-MM-DDThh:mm:ss[.ffffff]Z")] | None = None
    resource_id: Annotated[str, Meta(min_length=1, max_length=64)] | None = None


class AttributionOut(Struct):
    """The referral your next purchases are credited to (the last link visited wins)."""

    code: str
    referrer_name: str
    visited_at: str
    expires_at: str


class AttributionEnvelope(Struct):
    attribution: AttributionOut


class RewardTerms(Struct):
    """What a referrer earns on a referred buyer's first paid order."""

    kind: RewardKind
    points: int | None
    commission_percent: float | None


class CommissionTotal(Struct):
    earned: Money
    reversed: Money
    net: Money


class RewardOut(Struct):
    order_id: str
    referee_name: str | None
    kind: RewardKind
    points: int | None
    commission: Money | None
    reversed: int
    at: str


class ReferralOut(Struct):
    """Your code, your link, the terms, your totals and your newest rewards."""

    code: str
    link: str
    terms: RewardTerms
    referred: int
    points_earned: int
    points_reversed: int
    commission: list[CommissionTotal]
    items: list[RewardOut]
    next_cursor: str | None


class OpenGraph(Struct):
    """Open Graph properties for a link preview (`og:` + each name)."""

    title: str
    description: str
    image: str | None
    url: str
    type: str
    site_name: str


class ShareOut(Struct):
    """A share link carrying your referral code, and its preview."""

    url: str
    code: str
    open_graph: OpenGraph
    price: Money
