"""The arithmetic of points (chalicelib/points/rules.py) as a state machine: whatever mix of
earnings, holds, payments, ended orders, refunds (cumulative, replayed, late), admin
deductions and expiries, nothing is ever negative, available is balance - held, the lots hold
the balance, and the ledger's deltas add up to balance - debt. The storage tests
(tests/integration/test_points.py) check that the service writes what these rules compute."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    precondition,
    rule,
)

from chalicelib.points import rules

START = datetime(2025, 1, 1, tzinfo=UTC)
points = st.integers(min_value=1, max_value=5_000)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Points(RuleBasedStateMachine):
    orders = Bundle("orders")
    paid_orders = Bundle("paid_orders")
    ended_orders = Bundle("ended_orders")

    def __init__(self) -> None:
        super().__init__()
        self.book = rules.Book.of(rules.Account())
        self.clock = START
        self.serial = self.lots_made = 0
        self.holds: dict[str, int] = {}        # order -> points still held
        self.released: dict[str, int] = {}     # ended order -> points its hold had
        self.facts: dict[str, dict[str, int]] = {}
        self.expired = 0

    def _key(self, reason: str) -> str:
        self.serial += 1
        return f"{reason}#{self.serial}"

    def _lot_key(self, key: str, earned_at: str) -> str:
        self.lots_made += 1
        return f"E#{rules.expiry_of(earned_at)}#{self.lots_made:06d}"

    @property
    def now(self) -> str:
        return iso(self.clock)

    @rule(days=st.integers(min_value=1, max_value=200))
    def time_passes(self, days: int) -> None:
        self.clock += timedelta(days=days)

    @rule(n=points)
    def earn(self, n: int) -> None:
        key = self._key("member_bonus")
        self.book.credit(n, "member_bonus", key, self._lot_key(key, self.now), self.now)

    @rule(target=orders, n=st.integers(min_value=0, max_value=3_000))
    def checkout(self, n: int) -> str:
        order = self._key("order")
        if n and n <= self.book.account.available:
            self.book.hold(n)
            self.holds[order] = n
        elif n:
            before = self.book.account
            with pytest.raises(rules.InsufficientPoints):
                self.book.hold(n)
            assert self.book.account == before
        return order

    @rule(target=paid_orders, order=consumes(orders),
          amount=st.integers(min_value=0, max_value=100_000))
    def pay(self, order: str, amount: int):
        used = self.holds.pop(order, 0)
        earned = rules.earned_for(amount, 1)
        rules.pay(self.book, order, used, used, earned, self.now, self._lot_key)
        self.facts[order] = {"earned": earned, "used": used, "paid": amount, "refunded": 0,
                             "clawed": 0, "returned": 0}
        return multiple(order) if amount else multiple()

    @rule(target=ended_orders, order=consumes(orders))
    def end_unpaid(self, order: str):
        held = self.holds.pop(order, 0)
        if not held:
            return multiple()
        self.book.release(held, key=f"release_hold#{order}", order_id=order)
        self.released[order] = held
        return multiple(order)

    @rule(target=paid_orders, order=consumes(ended_orders),
          amount=st.integers(min_value=1, max_value=100_000))
    def pay_late(self, order: str, amount: int):
        """Paid after its hold was released: the points it used come out of what is
        available, and what is not becomes debt."""
        used = self.released.pop(order)
        earned = rules.earned_for(amount, 1)
        rules.pay(self.book, order, 0, used, earned, self.now, self._lot_key)
        self.facts[order] = {"earned": earned, "used": used, "paid": amount, "refunded": 0,
                             "clawed": 0, "returned": 0}
        return order

    @rule(order=paid_orders, share=st.floats(min_value=0, max_value=1), late=st.booleans())
    def refund(self, order: str, share: float, late: bool) -> None:
        f = self.facts[order]
        so_far = max(f["refunded"], int(f["paid"] * share))
        # A late (older) delivery states less than was refunded already; a replay the same.
        stated = int(so_far * share) if late else so_far
        f["clawed"], f["returned"] = rules.refund(
            self.book, order, f["earned"], f["used"], f["paid"], max(stated, f["refunded"]),
            f["clawed"], f["returned"], self.now, self._lot_key)
        f["refunded"] = max(stated, f["refunded"])
        assert f["clawed"] <= f["earned"] and f["returned"] <= f["used"]

    @rule(n=points)
    def admin_takes(self, n: int) -> None:
        before = self.book.account
        if n <= before.available:
            self.book.debit(n, "admin_adjust", self._key("admin"), allow_debt=False)
        else:
            with pytest.raises(rules.InsufficientPoints):
                self.book.debit(n, "admin_adjust", self._key("admin"), allow_debt=False)
            assert self.book.account == before

    @precondition(lambda self: self.book.account.available > 0)
    @rule()
    def admin_takes_all(self) -> None:
        """So that refunds find nothing available, and make debt."""
        self.book.debit(self.book.account.available, "admin_adjust", self._key("admin"),
                        allow_debt=False)

    @precondition(lambda self: bool(self.book.lots))
    @rule()
    def expire_due(self) -> None:
        for lot_key in sorted(self.book.lots):
            if lot_key[2:26] <= self.now and self.book.lots[lot_key] > 0:
                self.expired += self.book.expire(lot_key, f"expire#{lot_key}")
        # What expired is gone from every lot already due but for what holds still need.
        due = sum(r for k, r in self.book.lots.items() if k[2:26] <= self.now)
        assert due <= self.book.account.held

    @invariant()
    def nothing_is_negative_and_available_is_balance_less_held(self) -> None:
        assert self.book.account.problems() == []
        assert all(r >= 0 for r in self.book.lots.values())

    @invariant()
    def the_lots_hold_the_balance(self) -> None:
        assert sum(self.book.lots.values()) == self.book.account.balance

    @invariant()
    def the_ledger_adds_up_to_balance_less_debt(self) -> None:
        assert sum(m.delta for m in self.book.moves) == self.book.account.worth
        if self.book.moves:
            last = self.book.moves[-1]
            assert (last.balance_after, last.debt_after) == \
                (self.book.account.balance, self.book.account.debt)

    @invariant()
    def holds_are_what_is_held(self) -> None:
        assert sum(self.holds.values()) == self.book.account.held


Points.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_points_state_machine = Points.TestCase


def test_earned_points_are_whole_major_units_times_the_rate():
    assert rules.earned_for(4999, 1) == 49
    assert rules.earned_for(99, 1) == 0
    assert rules.earned_for(10_000, 3) == 300
    assert rules.earned_for(-5, 1) == 0


def test_refund_targets_are_proportional_rounded_down_and_capped_at_the_payment():
    assert rules.refund_targets(100, 300, 10_000, 2_500) == (25, 75)
    assert rules.refund_targets(99, 0, 10_000, 3_333) == (32, 0)
    assert rules.refund_targets(100, 10, 10_000, 20_000) == (100, 10)
    assert rules.refund_targets(100, 10, 0, 100) == (0, 0)


def test_expiry_is_twelve_months_later_and_a_leap_day_becomes_the_28th():
    assert rules.expiry_of("2025-03-31T10:00:00.000Z") == "2026-03-31T10:00:00.000Z"
    assert rules.expiry_of("2024-02-29T00:00:00.000Z") == "2025-02-28T00:00:00.000Z"


def test_debt_is_repaid_before_a_credit_becomes_a_lot():
    book = rules.Book.of(rules.Account(balance=10, available=10))
    book.lots = {"E#a": 10}
    book.debit(25, "clawback_order", "c", allow_debt=True)
    assert book.account == rules.Account(debt=15)
    book.credit(20, "earn_order", "e", "E#b", "2025-01-01T00:00:00.000Z")
    assert (book.account, book.lots) == (rules.Account(balance=5, available=5),
                                         {"E#a": 0, "E#b": 5})
    assert [m.delta for m in book.moves] == [-25, 20]
