"""Points: earned on paid orders (once), held at checkout and then spent or released, taken
back and given back in proportion on refunds (never below zero: debt, repaid by the next
earning), expired by lots after 12 months, adjusted by admins; `GET /me/points` is one Query."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)
from pynamodb.exceptions import TransactWriteError

from chalicelib import db, outbox
from chalicelib.points import events, public, rules, service, store
from tests.support import assert_envelope, operations_made


def event(kind: str, **payload) -> outbox.DomainEvent:
    return outbox.DomainEvent(event_id=uuid.uuid4().hex, type=kind, at=db.now_iso(),
                              payload=payload)


def paid(order_id: str, user_id: str, amount: int, points_used: int | None = None,
         at: str | None = None) -> outbox.DomainEvent:
    payload = {"order_id": order_id, "user_id": user_id, "currency": "cny", "amount": amount,
               "resource_ids": ["r1"], "lines": [{"resource_id": "r1", "creator_id": "c1",
                                                   "unit_amount": amount}]}
    if points_used is not None:
        payload["points_used"] = points_used
    e = event("order.paid", **payload)
    return outbox.DomainEvent(e.event_id, e.type, at or e.at, e.payload)


def refunded(order_id: str, user_id: str, paid_amount: int, so_far: int) -> outbox.DomainEvent:
    return event("order.refunded", order_id=order_id, user_id=user_id, currency="cny",
                 amount_paid=paid_amount, amount_refunded=so_far)


def ended(order_id: str, user_id: str) -> outbox.DomainEvent:
    return event("order.ended", order_id=order_id, user_id=user_id, status="expired")


def hold(user_id: str, order_id: str, points: int) -> None:
    with db.transaction() as tx:
        public.add_hold(tx, user_id, order_id, points)


def numbers(user_id: str) -> tuple[int, int, int, int]:
    a = service.account(user_id)
    return a.balance, a.available, a.held, a.debt


def ledger(user_id: str) -> list[tuple[str, int]]:
    """(reason, delta) of every entry, oldest first."""
    page = service.mine(user_id, 100, None)
    return [(e.reason, e.delta) for e in reversed(page.items)]


def check_invariants(user_id: str) -> None:
    balance, available, held, debt = numbers(user_id)
    assert min(balance, available, held, debt) >= 0
    assert available == balance - held
    assert sum(delta for _, delta in ledger(user_id)) == balance - debt
    assert sum(int(lot.remaining) for lot in store.lots(user_id)) == balance


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).timestamp()


@pytest.fixture
def user(aws):
    return f"u-{uuid.uuid4().hex[:8]}"


def test_a_paid_order_earns_one_point_per_whole_yuan_once(user):
    events.on_order_paid(paid("o1", user, 4999))  # ¥49.99: 49 points
    again = paid("o1", user, 4999)
    events.on_order_paid(again)
    events.on_order_paid(again)  # the same event redelivered, and a second event of it
    assert numbers(user) == (49, 49, 0, 0)
    assert ledger(user) == [("earn_order", 49)]
    lot = next(iter(store.lots(user)))
    assert (int(lot.remaining), lot.gsi1pk) == (49, f"LOTS#{lot.expires_at[:10]}")
    check_invariants(user)


def test_the_rate_is_configurable(user, monkeypatch):
    from chalicelib.config import settings

    monkeypatch.setenv("POINTS_EARN_PER_MAJOR", "3")
    settings.cache_clear()
    try:
        events.on_order_paid(paid("o1", user, 1000))
    finally:
        monkeypatch.undo()
        settings.cache_clear()
    assert numbers(user)[0] == 30


def test_a_generic_earning_happens_once_per_key(user):
    assert service.earn(user, 200, "member_bonus", f"member_bonus#{user}#2026-05")
    assert not service.earn(user, 200, "member_bonus", f"member_bonus#{user}#2026-05")
    assert numbers(user) == (200, 200, 0, 0)


def test_a_hold_is_spent_when_its_order_is_paid(user):
    service.earn(user, 500, "member_bonus", "b1")
    hold(user, "o1", 300)
    assert numbers(user) == (500, 200, 300, 0)
    assert store.hold(user, "o1").status == "held"
    events.on_order_paid(paid("o1", user, 1000, points_used=300))  # earns 10 on ¥10.00
    events.on_order_paid(paid("o1", user, 1000, points_used=300))
    assert numbers(user) == (210, 210, 0, 0)
    assert ledger(user) == [("member_bonus", 500), ("redeem_order", -300), ("earn_order", 10)]
    assert store.hold(user, "o1").status == "consumed"
    check_invariants(user)


def test_a_hold_beyond_what_is_available_is_refused_and_its_code_found(user):
    service.earn(user, 100, "member_bonus", "b1")
    with pytest.raises(TransactWriteError) as refused:
        with db.transaction() as tx:
            tx.condition_check(store.HoldRecord, store.partition(user),  # the caller's own
                               store.HoldRecord.sort_key("other"),
                               condition=store.HoldRecord.sk.does_not_exist())
            public.add_hold(tx, user, "o1", 101)
    codes = db.cancellation_codes(refused.value)
    assert len(codes) == 1 + public.HOLD_ITEMS
    assert public.hold_refused(codes, 1) and not public.hold_exists(codes, 1)
    with pytest.raises(TransactWriteError) as nobody:
        hold("someone-without-points", "o2", 1)
    assert public.hold_refused(db.cancellation_codes(nobody.value), 0)
    hold(user, "o1", 60)
    with pytest.raises(TransactWriteError) as twice:
        hold(user, "o1", 10)
    codes = db.cancellation_codes(twice.value)
    assert public.hold_exists(codes, 0) and not public.hold_refused(codes, 0)
    assert numbers(user) == (100, 40, 60, 0)


def test_checkout_reads_available_points_as_a_part_of_its_batch(user):
    service.earn(user, 70, "member_bonus", "b1")
    hold(user, "o1", 20)
    found, nobody = db.batch_read(public.account_read(user)), \
        db.batch_read(public.account_read("nobody"))
    assert public.available_in(found[0]) == 50
    assert public.available_in(nobody[0]) == 0


def test_a_hold_is_released_when_its_order_ends_unpaid(user):
    service.earn(user, 500, "member_bonus", "b1")
    hold(user, "o1", 300)
    events.on_order_ended(ended("o1", user))
    events.on_order_ended(ended("o1", user))
    assert numbers(user) == (500, 500, 0, 0)
    assert store.hold(user, "o1").status == "released"
    assert ledger(user) == [("member_bonus", 500), ("release_hold", 0)]
    # Paid after all (a late payment): the points it used come out of what is available.
    events.on_order_paid(paid("o1", user, 1000, points_used=300))
    assert numbers(user) == (210, 210, 0, 0)
    check_invariants(user)


def test_a_refund_takes_back_earned_points_in_proportion_counting_nothing_twice(user):
    events.on_order_paid(paid("o1", user, 10_000))  # 100 points
    events.on_order_paid(paid("o2", user, 3_000))   # 30 points
    events.on_order_refunded(refunded("o1", user, 10_000, 2_500))  # a quarter: 25
    events.on_order_refunded(refunded("o1", user, 10_000, 2_500))  # replayed
    assert numbers(user) == (105, 105, 0, 0)
    events.on_order_refunded(refunded("o1", user, 10_000, 7_500))  # three quarters: 50 more
    events.on_order_refunded(refunded("o1", user, 10_000, 5_000))  # older, late: nothing
    assert numbers(user) == (55, 55, 0, 0)
    facts = store.facts(user, "o1")
    assert (int(facts.clawed), int(facts.refunded)) == (75, 7_500)
    assert [r for r in ledger(user) if r[0] == "clawback_order"] == \
        [("clawback_order", -25), ("clawback_order", -50)]
    check_invariants(user)


def test_what_was_spent_before_the_refund_becomes_debt_repaid_by_the_next_earning(user):
    events.on_order_paid(paid("o1", user, 10_000))  # 100
    hold(user, "o2", 80)
    events.on_order_paid(paid("o2", user, 900, points_used=80))  # spends 80, earns 9: 29
    events.on_order_refunded(refunded("o1", user, 10_000, 10_000))  # takes back 100
    assert numbers(user) == (0, 0, 0, 71)
    check_invariants(user)
    events.on_order_paid(paid("o3", user, 5_000))  # 50: all to the debt
    assert numbers(user) == (0, 0, 0, 21)
    events.on_order_paid(paid("o4", user, 3_000))  # 30: 21 to the debt, 9 a lot
    assert numbers(user) == (9, 9, 0, 0)
    assert [int(lot.remaining) for lot in store.lots(user)] == [9]
    check_invariants(user)


def test_a_refund_gives_back_used_points_in_proportion(user):
    service.earn(user, 1000, "member_bonus", "b1")
    hold(user, "o1", 400)
    events.on_order_paid(paid("o1", user, 2_000, points_used=400))  # 600 + 20
    events.on_order_refunded(refunded("o1", user, 2_000, 1_000))  # half: -10, +200
    assert numbers(user) == (810, 810, 0, 0)
    events.on_order_refunded(refunded("o1", user, 2_000, 1_000))
    assert numbers(user) == (810, 810, 0, 0)
    assert ledger(user)[-2:] == [("return_order", 200), ("clawback_order", -10)]
    check_invariants(user)


def test_a_refund_that_arrives_before_the_payment_is_applied_by_the_payment(user):
    events.on_order_refunded(refunded("o1", user, 10_000, 5_000))
    assert numbers(user) == (0, 0, 0, 0)
    events.on_order_paid(paid("o1", user, 10_000))
    assert numbers(user) == (50, 50, 0, 0)
    check_invariants(user)


def test_lots_expire_after_twelve_months_the_oldest_first(user):
    service.earn(user, 100, "member_bonus", "jan", at="2025-01-10T08:00:00.000Z")
    service.earn(user, 50, "member_bonus", "feb", at="2025-02-10T08:00:00.000Z")
    hold(user, "o1", 120)  # the January lot, and 20 of February's, are needed by a checkout
    assert service.expire_due(epoch("2026-01-10T07:00:00.000Z"))["points_expired"] == 0
    run = service.expire_due(epoch("2026-01-11T00:00:00.000Z"))
    assert run["points_expired"] == 0  # held: the January lot waits for its checkout
    events.on_order_ended(ended("o1", user))
    run = service.expire_due(epoch("2026-01-12T00:00:00.000Z"))
    assert (run["lots_due"], run["points_expired"]) == (1, 100)
    assert service.expire_due(epoch("2026-01-12T00:00:00.000Z"))["points_expired"] == 0
    assert numbers(user) == (50, 50, 0, 0)
    assert [lot.earned_at[:7] for lot in store.lots(user)] == ["2025-02"]
    assert service.expire_due(epoch("2026-02-10T09:00:00.000Z"))["points_expired"] == 50
    assert numbers(user) == (0, 0, 0, 0)
    assert ledger(user)[-2:] == [("expire", -100), ("expire", -50)]
    check_invariants(user)


def test_a_partly_held_lot_expires_what_no_checkout_needs(user):
    service.earn(user, 100, "member_bonus", "jan", at="2025-01-10T08:00:00.000Z")
    hold(user, "o1", 30)
    assert service.expire_due(epoch("2026-01-11T00:00:00.000Z"))["points_expired"] == 70
    assert numbers(user) == (30, 0, 30, 0)
    events.on_order_paid(paid("o1", user, 0, points_used=30))  # spends the held 30
    assert numbers(user) == (0, 0, 0, 0)
    assert not list(store.lots(user))
    check_invariants(user)


def test_my_points_are_one_query_and_paged_with_a_cursor(api, user):
    for n in range(5):
        service.earn(user, 10 + n, "member_bonus", f"b{n}")
    with operations_made() as ops:
        first = service.mine(user, 3, None)
    assert ops == ["Query"]
    assert (first.balance, [e.delta for e in first.items]) == (60, [14, 13, 12])
    rest = service.mine(user, 3, first.next_cursor)
    assert (rest.balance, [e.delta for e in rest.items]) == (60, [11, 10])
    assert rest.next_cursor is None


def test_my_points_over_http(api):
    me, pair = api.user_session()
    token = pair["access_token"]
    empty = api.get("/me/points", token=token)
    assert empty.status == 200, empty.body
    assert empty.body == {"balance": 0, "available": 0, "held": 0, "debt": 0, "items": [],
                          "next_cursor": None}
    events.on_order_paid(paid("o1", me["id"], 2_500))
    events.on_order_paid(paid("o2", me["id"], 1_000))
    page = api.get("/me/points?limit=1", token=token).body
    assert (page["balance"], page["items"][0]["delta"], page["items"][0]["order_id"]) == \
        (35, 10, "o2")
    rest = api.get(f"/me/points?limit=1&cursor={page['next_cursor']}", token=token).body
    assert [e["order_id"] for e in rest["items"]] == ["o1"]
    assert_envelope(api.get(f"/me/points?cursor={page['next_cursor']}",
                            token=api.user_session()[1]["access_token"]), 400, "invalid_cursor")
    assert_envelope(api.get("/me/points"), 401)


def test_an_admin_adjusts_points_once_per_key_and_never_below_zero(api, admin):
    member, pair = api.user_session()
    token = admin[1]["access_token"]
    path = f"/admin/users/{member['id']}/points"
    body = {"delta": 150, "reason": "Goodwill", "idempotency_key": "ticket-1"}
    added = api.post(path, body, token=token)
    assert added.status == 200, added.body
    assert added.body["account"] == {"user_id": member["id"], "balance": 150, "available": 150,
                                     "held": 0, "debt": 0,
                                     "updated_at": added.body["account"]["updated_at"]}
    assert api.post(path, body, token=token).body["account"]["balance"] == 150
    assert_envelope(api.post(path, {**body, "delta": 10}, token=token), 409,
                    "idempotency_key_reused")
    assert_envelope(api.post(path, {"delta": -151, "reason": "Too much"}, token=token), 422,
                    "insufficient_points")
    taken = api.post(path, {"delta": -50, "reason": "Correction"}, token=token)
    assert taken.body["account"]["available"] == 100
    assert_envelope(api.post(path, {"delta": 0, "reason": "Nothing"}, token=token), 400)
    assert_envelope(api.post(path, {"delta": 5, "reason": "x", "extra": 1}, token=token), 400)
    assert_envelope(api.post("/admin/users/nobody/points", {"delta": 5, "reason": "x"},
                             token=token), 404, "user_not_found")
    assert_envelope(api.post(path, {"delta": 5, "reason": "x"},
                             token=pair["access_token"]), 403)
    entries = api.get("/me/points", token=pair["access_token"]).body["items"]
    assert [(e["reason"], e["delta"], e["note"]) for e in entries] == \
        [("admin_adjust", -50, "Correction"), ("admin_adjust", 150, "Goodwill")]
    check_invariants(member["id"])


def test_the_analytics_consumer_hands_order_events_to_points(user):
    import msgspec

    from chalicelib.analytics.rollup import handle

    e = paid("o1", user, 1_000)
    record = {"messageId": "m1", "body": msgspec.json.encode(e).decode()}
    assert handle([record]) == {"batchItemFailures": []}
    assert numbers(user)[0] == 10


class Stored(RuleBasedStateMachine):
    """The service on moto, step by step beside the pure rules: the same numbers, and the
    invariants held by what is stored. Few examples (each step is several DynamoDB calls)."""

    orders = Bundle("orders")
    paid_orders = Bundle("paid_orders")

    def __init__(self) -> None:
        super().__init__()
        self.user = f"sm-{uuid.uuid4().hex[:8]}"
        self.model = rules.Book.of(rules.Account())
        self.clock = datetime(2025, 1, 1, tzinfo=UTC)
        self.serial = 0
        self.holds: dict[str, int] = {}
        self.facts: dict[str, dict[str, int]] = {}

    def _next(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def _lot_key(self, key: str, earned_at: str) -> str:
        return f"E#{rules.expiry_of(earned_at)}#{self._next('lot')}"

    @property
    def now(self) -> str:
        return db.iso_at(self.clock.timestamp())

    @rule(days=st.integers(min_value=30, max_value=400))
    def time_passes(self, days: int) -> None:
        self.clock += timedelta(days=days)

    @rule(n=st.integers(min_value=1, max_value=500))
    def earn(self, n: int) -> None:
        key = self._next("bonus#")
        assert service.earn(self.user, n, "member_bonus", key, at=self.now)
        self.model.credit(n, "member_bonus", key, self._lot_key(key, self.now), self.now)

    @rule(target=orders, n=st.integers(min_value=1, max_value=400))
    def checkout(self, n: int) -> str:
        order = self._next("o")
        if n <= self.model.account.available:
            hold(self.user, order, n)
            self.model.hold(n)
            self.holds[order] = n
        else:
            with pytest.raises(TransactWriteError) as refused:
                hold(self.user, order, n)
            assert public.hold_refused(db.cancellation_codes(refused.value), 0)
        return order

    @rule(target=paid_orders, order=consumes(orders),
          amount=st.integers(min_value=100, max_value=50_000), twice=st.booleans())
    def pay(self, order: str, amount: int, twice: bool) -> str:
        used = self.holds.pop(order, 0)
        e = paid(order, self.user, amount, points_used=used, at=self.now)
        for _ in range(2 if twice else 1):
            events.on_order_paid(e)
        earned = rules.earned_for(amount, 1)
        rules.pay(self.model, order, used, used, earned, self.now, self._lot_key)
        self.facts[order] = {"earned": earned, "used": used, "paid": amount, "clawed": 0,
                             "returned": 0, "refunded": 0}
        return order

    @rule(order=consumes(orders))
    def end_unpaid(self, order: str) -> None:
        events.on_order_ended(ended(order, self.user))
        held = self.holds.pop(order, 0)
        if held:
            self.model.release(held, key=f"release_hold#{order}", order_id=order)

    @rule(order=paid_orders, share=st.sampled_from([0.1, 0.5, 1.0]))
    def refund(self, order: str, share: float) -> None:
        f = self.facts[order]
        so_far = max(f["refunded"], int(f["paid"] * share))
        events.on_order_refunded(refunded(order, self.user, f["paid"], so_far))
        f["clawed"], f["returned"] = rules.refund(
            self.model, order, f["earned"], f["used"], f["paid"], so_far, f["clawed"],
            f["returned"], self.now, self._lot_key)
        f["refunded"] = so_far

    @rule()
    def expire_due(self) -> None:
        tomorrow = (self.clock + timedelta(days=1)).date().isoformat()
        for lot in list(store.lots(self.user)):
            if lot.expires_at <= self.now:
                service.expire_lot(self.user, lot.sk, self.now, tomorrow)
        for lot_key in sorted(self.model.lots):
            if lot_key[2:26] <= self.now and self.model.lots[lot_key] > 0:
                self.model.expire(lot_key, f"expire#{lot_key}")

    @invariant()
    def stored_as_computed(self) -> None:
        a = self.model.account
        assert numbers(self.user) == (a.balance, a.available, a.held, a.debt)
        check_invariants(self.user)


def test_the_stored_account_follows_the_rules_whatever_happens(aws):
    run_state_machine_as_test(Stored, settings=settings(
        max_examples=12, stateful_step_count=12, deadline=None,
        suppress_health_check=list(HealthCheck)))


def test_a_hold_made_while_an_earning_is_computed_is_not_lost(user, monkeypatch):
    service.earn(user, 100, "member_bonus", "b1")
    load, raced = service._load, []

    def load_then_hold(user_id, *args, **kwargs):
        state = load(user_id, *args, **kwargs)
        if not raced:  # checkout's hold lands between the read and the write
            raced.append(True)
            hold(user, "o1", 60)
        return state

    monkeypatch.setattr(service, "_load", load_then_hold)
    assert service.earn(user, 20, "member_bonus", "b2")
    assert numbers(user) == (120, 60, 60, 0)
    check_invariants(user)
