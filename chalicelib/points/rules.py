"""The arithmetic of points, pure: no storage and no clock. `points.service` loads a `Book`
from storage, applies the moves of one event to it and writes back what changed, so the
rules here are the rules the storage keeps (tests/unit/test_points_rules.py checks them as a
hypothesis state machine).

The account: `balance` is every unexpired point the user owns (the sum of the lots'
`remaining`), `held` the part of it reserved by checkouts in progress, `available` =
`balance - held` (what a checkout may hold or a deduction may take), `debt` what was taken
back (a refund's clawback) or spent beyond what the user had: later earnings repay it before
they become a lot. None is ever negative.

Each move that changes what the user is worth is a ledger entry whose `delta` is the change
of `balance - debt`, so the deltas of the ledger always add up to `balance - debt`:
- credit(n): `debt` repaid first, the rest a new lot (expiring 12 months later); delta +n;
- debit(n): taken from `available`, out of the lots that expire first; what `available`
  lacks becomes `debt` where that is allowed (a clawback, points spent at a checkout whose
  hold was released), else refused; delta -n;
- expire(lot): what of the lot no hold needs off the balance (holds count against the
  lots that expire first; never more than available); delta minus that;
- hold(n) / release(n): `available` to `held` and back; the balance does not change, so a
  release's entry has delta 0 (and a hold has none).
"""
from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from chalicelib.errors import Refused

EXPIRY_MONTHS = 12
# 1 point per whole major unit (100 minor units) of a paid amount, times the configured rate.
MINOR_PER_MAJOR = 100


class InsufficientPoints(Refused):
    code = "insufficient_points"
    message = "Not enough points."


# (the ledger key of a credit, when it was earned) -> the key of the lot it makes
LotKey = Callable[[str, str], str]


@dataclass(frozen=True)
class Account:
    balance: int = 0
    available: int = 0
    held: int = 0
    debt: int = 0

    @property
    def worth(self) -> int:
        """What the ledger's deltas add up to."""
        return self.balance - self.debt

    def problems(self) -> list[str]:
        """The invariants this account breaks (none, always)."""
        found = [f"{name} < 0" for name in ("balance", "available", "held", "debt")
                 if getattr(self, name) < 0]
        if self.available != self.balance - self.held:
            found.append("available != balance - held")
        return found


@dataclass(frozen=True)
class Move:
    """One ledger entry: `delta` is the change of balance - debt it made."""

    reason: str
    key: str
    delta: int
    balance_after: int
    debt_after: int
    order_id: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class NewLot:
    points: int
    earned_at: str
    expires_at: str
    reason: str


def earned_for(amount_minor: int, per_major: int) -> int:
    """Points earned on a paid amount: 1 per whole major unit, times the rate."""
    return max(0, amount_minor) // MINOR_PER_MAJOR * max(0, per_major)


def refund_targets(earned: int, used: int, paid: int, refunded: int) -> tuple[int, int]:
    """(points clawed back, points returned) in total once `refunded` of `paid` has been
    refunded: each in proportion, rounded down. Cumulative, so a replay or an older refund
    arriving late asks for nothing more."""
    if paid <= 0:
        return 0, 0
    refunded = min(max(0, refunded), paid)
    return earned * refunded // paid, used * refunded // paid


def expiry_of(earned_at: str) -> str:
    """`earned_at` (ISO UTC, as stored) plus 12 months; 29 February becomes 28 February."""
    moment = datetime.fromisoformat(earned_at.replace("Z", "+00:00"))
    months = moment.month - 1 + EXPIRY_MONTHS
    year, month = moment.year + months // 12, months % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    text = moment.replace(year=year, month=month, day=day).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


@dataclass
class Book:
    """One user's account and lots (`lots`: lot key → remaining; keys sort by expiry, as the
    lots' sort keys do), with the moves applied to them. Only the lots a move may touch need
    be loaded: debits take the lots that expire first, an expiry only its own lot."""

    account: Account
    lots: dict[str, int] = field(default_factory=dict)
    moves: list[Move] = field(default_factory=list)
    new_lots: dict[str, NewLot] = field(default_factory=dict)

    @classmethod
    def of(cls, account: Account, lots: Mapping[str, int] | None = None) -> Book:
        return cls(account=account, lots=dict(lots or {}))

    def _move(self, reason: str, key: str, delta: int, order_id: str | None,
              note: str | None) -> Move:
        move = Move(reason=reason, key=key, delta=delta, balance_after=self.account.balance,
                    debt_after=self.account.debt, order_id=order_id, note=note)
        self.moves.append(move)
        return move

    def credit(self, points: int, reason: str, key: str, lot_key: str, earned_at: str,
               order_id: str | None = None, note: str | None = None) -> Move:
        """`points` earned: what is owed is repaid first, the rest becomes lot `lot_key`."""
        if points <= 0:
            raise ValueError("a credit is positive")
        a = self.account
        repaid = min(a.debt, points)
        rest = points - repaid
        self.account = replace(a, balance=a.balance + rest, available=a.available + rest,
                               debt=a.debt - repaid)
        if rest and lot_key in self.lots:
            self.lots[lot_key] += rest  # the same key again (a replay its marker will stop)
        elif rest:
            self.lots[lot_key] = rest
            self.new_lots[lot_key] = NewLot(points=rest, earned_at=earned_at,
                                            expires_at=expiry_of(earned_at), reason=reason)
        return self._move(reason, key, points, order_id, note)

    def debit(self, points: int, reason: str, key: str, allow_debt: bool,
              order_id: str | None = None, note: str | None = None) -> Move:
        """`points` taken from `available`, out of the lots that expire first; what is missing
        becomes debt if `allow_debt`, else the debit is refused and nothing changes."""
        if points <= 0:
            raise ValueError("a debit is positive")
        a = self.account
        taken = min(a.available, points)
        missing = points - taken
        if missing and not allow_debt:
            raise InsufficientPoints(details={"available": a.available, "requested": points})
        self._take_from_lots(taken)
        self.account = replace(a, balance=a.balance - taken, available=a.available - taken,
                               debt=a.debt + missing)
        return self._move(reason, key, -points, order_id, note)

    def _take_from_lots(self, points: int) -> None:
        left = points
        for lot_key in sorted(self.lots):
            if not left:
                break
            cut = min(self.lots[lot_key], left)
            self.lots[lot_key] -= cut
            left -= cut
        if left:
            raise ValueError(f"the loaded lots lack {left} of {points} points")

    def hold(self, points: int) -> None:
        a = self.account
        if points <= 0 or points > a.available:
            raise InsufficientPoints(details={"available": a.available, "requested": points})
        self.account = replace(a, available=a.available - points, held=a.held + points)

    def release(self, points: int, key: str | None = None, order_id: str | None = None,
                reason: str = "release_hold") -> None:
        """A hold of `points` ended: they are available again. With `key`, a ledger entry
        (delta 0) says so."""
        a = self.account
        points = min(points, a.held)
        self.account = replace(a, available=a.available + points, held=a.held - points)
        if key:
            self._move(reason, key, 0, order_id, f"{points} points released")

    def expire(self, lot_key: str, key: str) -> int:
        """Lot `lot_key` is due: what of it no checkout holds leaves the balance. Held points
        count against the lots that expire first (a hold's points are spent from them), so
        every lot expiring before this one must be loaded. What is held stays in the lot
        until its checkout ends. How many points expired (never more than available)."""
        a = self.account
        remaining = self.lots.get(lot_key, 0)
        older = sum(r for k, r in self.lots.items() if k < lot_key)
        gone = remaining - min(remaining, max(0, a.held - older))
        if gone:
            self.lots[lot_key] -= gone
            self.account = replace(a, balance=a.balance - gone, available=a.available - gone)
            self._move("expire", key, -gone, None, None)
        return gone


def pay(book: Book, order_id: str, held: int, used: int, earned: int, paid_at: str,
        lot_key: LotKey) -> None:
    """An order paid: the `held` points of its hold (0: none, or no longer held) are
    released and the `used` points spent (what is no longer available becomes debt), then
    the `earned` points credited."""
    if held > 0:
        book.release(held)
    if used > 0:
        book.debit(used, "redeem_order", f"redeem_order#{order_id}", allow_debt=True,
                   order_id=order_id)
    if earned > 0:
        key = f"earn_order#{order_id}"
        book.credit(earned, "earn_order", key, lot_key(key, paid_at), paid_at,
                    order_id=order_id)


def refund(book: Book, order_id: str, earned: int, used: int, paid: int, refunded: int,
           clawed: int, returned: int, now: str, lot_key: LotKey) -> tuple[int, int]:
    """`refunded` of `paid` refunded so far, after `clawed` points were taken back and
    `returned` given back: the used points' share given back first (a new lot, repaying
    debt first), then the earned points' share taken back (debt where not available). The
    new totals (clawed, returned)."""
    claw_to, return_to = refund_targets(earned, used, paid, refunded)
    if return_to > returned:
        key = f"return_order#{order_id}#{return_to}"
        book.credit(return_to - returned, "return_order", key, lot_key(key, now), now,
                    order_id=order_id)
    if claw_to > clawed:
        book.debit(claw_to - clawed, "clawback_order", f"clawback_order#{order_id}#{claw_to}",
                   allow_debt=True, order_id=order_id)
    return max(claw_to, clawed), max(return_to, returned)
