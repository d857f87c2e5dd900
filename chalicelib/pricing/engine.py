"""The one pricing engine: what a basket costs after a member discount, a coupon and points,
line by line. Pure arithmetic on integer minor units (no storage, no clock): quote, checkout
and refunds call the same function, so a quote is the checkout's price by construction.

Order of the steps, each on what the previous one left (docs/pricing.md has worked examples):
1. member discount: a percentage off each line, rounded half up per line;
2. coupon: a percentage off each eligible line (half up per line), or a fixed amount shared
   over the eligible lines in proportion to them (largest remainder, so the shares sum to
   it exactly), never more than they cost;
3. points: at most `max_share_percent` of what is left (rounded down, so the cap holds),
   shared over the lines the same way;
then the total is the sum of the lines, never below zero. A total above zero but below the
provider's minimum charge for the currency is refused; exactly zero is the free path."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from chalicelib.errors import Refused


@dataclass(frozen=True)
class Item:
    """One line of the basket at its list price."""

    resource_id: str
    list_amount: int
    category_path: tuple[str, ...] = ()
    creator_id: str = ""


@dataclass(frozen=True)
class CouponTerms:
    """What a coupon takes off, and what it applies to (an empty scope: everything)."""

    code: str
    percent_off: int = 0          # 1..100, or 0 for a fixed coupon
    amount_off: int = 0           # minor units of the order's currency, for a fixed coupon
    resource_ids: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    creator_ids: frozenset[str] = frozenset()
    minimum_amount: int = 0       # of the eligible lines after the member discount

    def applies_to(self, item: Item) -> bool:
        if not (self.resource_ids or self.categories or self.creator_ids):
            return True
        return (item.resource_id in self.resource_ids or item.creator_id in self.creator_ids
                or bool(self.categories.intersection(item.category_path)))


@dataclass(frozen=True)
class PointsRule:
    """`value_points` points are worth `value_minor` minor units; at most `max_share_percent`
    of what is left after the coupon may be paid with points."""

    value_points: int = 100
    value_minor: int = 100
    max_share_percent: int = 50

    @property
    def step(self) -> int:
        """The smallest number of points worth a whole minor unit."""
        return self.value_points // math.gcd(self.value_points, self.value_minor)

    def worth(self, points: int) -> int:
        return points * self.value_minor // self.value_points

    def points_for(self, minor: int) -> int:
        """The fewest points worth at least `minor` (rounded to whole steps)."""
        return math.ceil(minor * self.value_points / self.value_minor / self.step) * self.step


@dataclass
class PricedLine:
    resource_id: str
    list_amount: int
    member_discount: int = 0
    coupon_discount: int = 0
    points_discount: int = 0

    @property
    def total(self) -> int:
        return self.list_amount - self.member_discount - self.coupon_discount \
            - self.points_discount


@dataclass
class Priced:
    currency: str
    lines: list[PricedLine]
    coupon_code: str | None = None
    points_used: int = 0
    minimum_charge: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def list_total(self) -> int:
        return sum(line.list_amount for line in self.lines)

    @property
    def member_discount(self) -> int:
        return sum(line.member_discount for line in self.lines)

    @property
    def coupon_discount(self) -> int:
        return sum(line.coupon_discount for line in self.lines)

    @property
    def points_discount(self) -> int:
        return sum(line.points_discount for line in self.lines)

    @property
    def total(self) -> int:
        return sum(line.total for line in self.lines)


class CouponMinimumNotMet(Refused):
    code = "coupon_minimum_not_met"
    message = "The order is below the coupon's minimum amount."


class CouponNotApplicable(Refused):
    code = "coupon_not_applicable"
    message = "The coupon does not apply to any item of this order."


class InsufficientPoints(Refused):
    code = "insufficient_points"
    message = "Not enough points."


class BelowMinimumCharge(Refused):
    code = "below_minimum_charge"
    message = "The total is above zero but below the smallest amount that can be charged."


# The smallest charge Stripe accepts, per presentment currency, in minor units. Stripe states
# its minimums in the settlement currency (USD 0.50 for a US account); for a presentment
# currency it does not settle in we take a round amount above 0.50 USD at any recent rate.
MINIMUM_CHARGE = {"usd": 50, "eur": 50, "gbp": 30, "cny": 400, "hkd": 400}


def half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, for non-negative integers."""
    return (2 * numerator + denominator) // (2 * denominator)


def share(amount: int, weights: Sequence[int]) -> list[int]:
    """`amount` split in proportion to `weights` (largest remainder, ties to the earlier
    line): the parts sum to `amount` exactly and none exceeds its weight when
    amount <= sum(weights)."""
    whole = sum(weights)
    if whole == 0 or amount == 0:
        return [0] * len(weights)
    parts = [amount * w // whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % whole), i))
    for i in order[:amount - sum(parts)]:
        parts[i] += 1
    return parts


def price(currency: str, items: Sequence[Item], *, member_percent: int = 0,
          coupon: CouponTerms | None = None, points: int = 0, points_balance: int = 0,
          rule: PointsRule | None = None) -> Priced:
    """The priced basket. Refuses a coupon that applies to nothing or whose minimum is not
    met, points beyond the balance, and a total between zero and the minimum charge."""
    rule = rule or PointsRule()
    lines = [PricedLine(i.resource_id, i.list_amount) for i in items]
    if member_percent:
        for line in lines:
            line.member_discount = half_up(line.list_amount * member_percent, 100)
    priced = Priced(currency=currency, lines=lines,
                    minimum_charge=MINIMUM_CHARGE.get(currency, 50))
    if coupon is not None:
        _apply_coupon(priced, items, coupon)
    if points:
        _apply_points(priced, points, points_balance, rule)
    if 0 < priced.total < priced.minimum_charge:
        raise BelowMinimumCharge(details={"total": priced.total,
                                          "minimum": priced.minimum_charge})
    return priced


def _apply_coupon(priced: Priced, items: Sequence[Item], coupon: CouponTerms) -> None:
    eligible = [line for line, item in zip(priced.lines, items, strict=True)
                if coupon.applies_to(item)]
    if not eligible:
        raise CouponNotApplicable()
    base = [line.total for line in eligible]
    if sum(base) < coupon.minimum_amount:
        raise CouponMinimumNotMet(details={"minimum": coupon.minimum_amount})
    if coupon.percent_off:
        cuts = [half_up(b * coupon.percent_off, 100) for b in base]
    else:
        cuts = share(min(coupon.amount_off, sum(base)), base)
    for line, cut in zip(eligible, cuts, strict=True):
        line.coupon_discount = cut
    priced.coupon_code = coupon.code


def _apply_points(priced: Priced, points: int, balance: int, rule: PointsRule) -> None:
    if points > balance:
        raise InsufficientPoints(details={"balance": balance, "requested": points})
    base = [line.total for line in priced.lines]
    cap = sum(base) * rule.max_share_percent // 100
    usable = points - points % rule.step  # only whole minor units are redeemed
    value = min(rule.worth(usable), cap)
    if value < rule.worth(usable):
        priced.notes.append(f"points capped at {rule.max_share_percent}% of the order")
    for line, cut in zip(priced.lines, share(value, base), strict=True):
        line.points_discount = cut
    priced.points_used = rule.points_for(value) if value else 0
