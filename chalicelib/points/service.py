"""Points: earned on paid orders and for other reasons (`earn`), held at checkout
(`points.public`), spent when the order is paid, released when it ends unpaid, taken back
and given back in proportion on refunds, expired by lots 12 months after they were earned,
adjusted by admins. The arithmetic is `points.rules`; this module loads a user's `Book`,
applies one change to it and writes what changed in ONE transaction: the account (under
the version read), each ledger entry with its once-only marker `K#<key>`, the lots, and the
hold or order facts involved. A replay finds its marker (or the hold's or the order's state)
and changes nothing; a concurrent change makes the write fail its version, and it is
computed again on fresh state."""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from pynamodb.exceptions import TransactWriteError, UpdateError

from chalicelib import cursor, db
from chalicelib.config import settings
from chalicelib.errors import Conflict
from chalicelib.observability import logger
from chalicelib.points import rules, store
from chalicelib.points.schemas import PointsAccountOut, PointsEntryOut, PointsOut
from chalicelib.points.store import (
    AccountRecord,
    EntryRecord,
    ExpiryCursor,
    FactsRecord,
    HoldRecord,
    LotRecord,
    MarkerRecord,
)

ATTEMPTS = 8
# The expiry run's first day when it has never run: lots due this long ago are still found.
LOOKBACK_DAYS = 31
FAILED = "ConditionalCheckFailed"

InsufficientPoints = rules.InsufficientPoints


class PointsBusy(Conflict):
    code = "points_busy"
    message = "The points account is changing; try again."


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"
    message = "This idempotency key was used for another adjustment."


# ------------------------------------------------------------------ reading

def _account(record: AccountRecord | None) -> rules.Account:
    if record is None:
        return rules.Account()
    return rules.Account(balance=int(record.balance), available=int(record.available),
                         held=int(record.held), debt=int(record.debt))


def account_out(user_id: str, record: AccountRecord | None) -> PointsAccountOut:
    a = _account(record)
    return PointsAccountOut(user_id=user_id, balance=a.balance, available=a.available,
                            held=a.held, debt=a.debt,
                            updated_at=record.updated_at if record else None)


def account(user_id: str) -> PointsAccountOut:
    """A user's account (zeros when they never had points). One GetItem."""
    return account_out(user_id, store.account(user_id))


def _entry_out(e: EntryRecord) -> PointsEntryOut:
    return PointsEntryOut(at=e.at, reason=e.reason, delta=int(e.delta),
                          balance_after=int(e.balance_after), debt_after=int(e.debt_after),
                          order_id=e.order_id, note=e.note)


def mine(user_id: str, limit: int, cursor_text: str | None) -> PointsOut:
    """The account and the newest ledger entries: ONE Query (descending, from the account
    down the ledger). A later page is that Query from the cursor, plus the account's GetItem."""
    scope = f"points:{user_id}"
    start = cursor.decode(cursor_text, scope)
    items, position = store.page(user_id, limit, start)
    record, entries = None, []
    for item in items:
        if item["sk"]["S"] == store.ACCOUNT:
            record = store.account_from_raw(item)
        else:
            entries.append(store.entry_from_raw(item))
    if start:
        record = store.account(user_id)
    a = _account(record)
    return PointsOut(balance=a.balance, available=a.available, held=a.held, debt=a.debt,
                     items=[_entry_out(e) for e in entries[:limit]],
                     next_cursor=cursor.encode(position, scope))


# ------------------------------------------------------------------ writing

class _Stale(Exception):
    """Another write changed what this one was computed from."""


Extra = Callable[[Any], None]  # adds an item to the transaction


@dataclass
class _State:
    """What one write was computed from, and what it does."""

    user_id: str
    record: AccountRecord | None
    book: rules.Book
    lots: dict[str, LotRecord] = field(default_factory=dict)
    extras: list[Extra] = field(default_factory=list)
    requeue: dict[str, str] = field(default_factory=dict)  # lot sk -> day it is due again
    actor: str | None = None
    fingerprint: str | None = None


def _load(user_id: str, lots: Iterable[LotRecord] = (), every_lot: bool = False) -> _State:
    """The account (GetItem, consistent) and `lots`, or with `every_lot` all the user's lots
    (one Query, only when there is a balance to take them from)."""
    record = store.account(user_id)
    if every_lot and record is not None and int(record.balance):
        lots = store.lots(user_id)
    loaded = {lot.sk: lot for lot in lots}
    book = rules.Book.of(_account(record), {sk: int(lot.remaining) for sk, lot in loaded.items()})
    return _State(user_id=user_id, record=record, book=book, lots=loaded)


def _load_with_lots(user_id: str) -> _State:
    return _load(user_id, every_lot=True)


def _lot_key(key: str, earned_at: str) -> str:
    return LotRecord.sort_key(rules.expiry_of(earned_at), store.lot_id_of(key))


def _commit(state: _State, now: str) -> bool:
    """Write the state's moves, account, lots and extras in one transaction. False when a
    move's marker exists (this change was made already); _Stale when another write won."""
    pk = store.partition(state.user_id)
    book, moves = state.book, state.book.moves
    try:
        with db.transaction() as tx:
            for n, move in enumerate(moves):
                entry_sk = EntryRecord.sort_key(now, move.key, n)
                tx.save(MarkerRecord(pk=pk, sk=MarkerRecord.sort_key(move.key),
                                     entry_sk=entry_sk, fingerprint=state.fingerprint),
                        condition=MarkerRecord.sk.does_not_exist())
                tx.save(EntryRecord(pk=pk, sk=entry_sk, key=move.key, reason=move.reason,
                                    delta=move.delta, balance_after=move.balance_after,
                                    debt_after=move.debt_after, order_id=move.order_id,
                                    note=move.note, actor=state.actor, at=now))
            if moves or book.account != _account(state.record):
                _write_account(tx, state, now)
            _write_lots(tx, state)
            for extra in state.extras:
                extra(tx)
    except TransactWriteError as exc:
        codes = db.cancellation_codes(exc)
        if any(code == FAILED for code in codes[:2 * len(moves):2]):
            return False
        if any(code == FAILED for code in codes):
            raise _Stale() from None
        raise
    return True


def _write_account(tx: Any, state: _State, now: str) -> None:
    a, record = state.book.account, state.record
    version = int(record.version) if record is not None else 0
    tx.update(AccountRecord(pk=store.partition(state.user_id), sk=store.ACCOUNT), actions=[
        AccountRecord.user_id.set(state.user_id), AccountRecord.balance.set(a.balance),
        AccountRecord.available.set(a.available), AccountRecord.held.set(a.held),
        AccountRecord.debt.set(a.debt), AccountRecord.updated_at.set(now),
        AccountRecord.version.set(version + 1)],
        condition=AccountRecord.version == version if record is not None
        else AccountRecord.sk.does_not_exist())


def _write_lots(tx: Any, state: _State) -> None:
    pk = store.partition(state.user_id)
    for sk, remaining in state.book.lots.items():
        before = state.lots.get(sk)
        if before is None:
            new = state.book.new_lots.get(sk)
            if new is None or remaining <= 0:
                continue
            lot_id = sk.rsplit("#", 1)[1]
            tx.save(LotRecord(pk=pk, sk=sk, lot_id=lot_id, user_id=state.user_id,
                              points=new.points, remaining=remaining, reason=new.reason,
                              earned_at=new.earned_at, expires_at=new.expires_at,
                              gsi1pk=LotRecord.day_key(new.expires_at[:10]),
                              gsi1sk=f"{new.expires_at}#{state.user_id}#{lot_id}"),
                    condition=LotRecord.sk.does_not_exist())
        elif remaining <= 0:
            tx.delete(before)
        elif remaining != int(before.remaining) or sk in state.requeue:
            actions = [LotRecord.remaining.set(remaining)]
            if sk in state.requeue:
                actions.append(LotRecord.gsi1pk.set(LotRecord.day_key(state.requeue[sk])))
            tx.update(before, actions=actions)


def _run(plan: Callable[[], _State | None], now: str) -> bool:
    """Plan and commit, again on fresh state when another write got there first. False when
    there was nothing (more) to do."""
    for _ in range(ATTEMPTS):
        state = plan()
        if state is None:
            return False
        try:
            return _commit(state, now)
        except _Stale:
            continue
    raise PointsBusy()


def earn(user_id: str, points: int, reason: str, key: str, at: str | None = None,
         order_id: str | None = None, note: str | None = None) -> bool:
    """`points` (> 0) earned for `reason` (member_bonus, review…) once per `key`: debt repaid
    first, the rest a lot expiring 12 months after `at`. False when `key` was used already."""
    now = db.now_iso()
    earned_at = at or now

    def plan() -> _State:
        state = _load(user_id)
        state.book.credit(points, reason, key, _lot_key(key, earned_at), earned_at,
                          order_id=order_id, note=note)
        return state

    return _run(plan, now)


def take_back(user_id: str, points: int, reason: str, key: str, order_id: str | None = None,
              note: str | None = None) -> bool:
    """`points` (> 0) taken back once per `key` (a reward reversed): out of what is
    available, the lots that expire first first; what is missing becomes debt. False when
    `key` was used already."""
    now = db.now_iso()

    def plan() -> _State:
        state = _load_with_lots(user_id)
        state.book.debit(points, reason, key, allow_debt=True, order_id=order_id, note=note)
        return state

    return _run(plan, now)


def adjust(admin_id: str, user_id: str, delta: int, reason: str,
           idempotency_key: str | None) -> PointsAccountOut:
    """An admin's adjustment of a user's points (the user must exist): added points repay
    debt first, taken points come out of what is available (never below 0). The same
    idempotency key again answers the account and changes nothing."""
    from chalicelib.accounts import profiles

    profiles.get_user(user_id)
    key = f"admin#{idempotency_key or uuid.uuid4().hex}"
    fingerprint = f"{delta}:{reason}"
    now = db.now_iso()

    def replayed() -> bool:
        found = store.marker(user_id, key)
        if found is None:
            return False
        if found.fingerprint != fingerprint:
            raise IdempotencyKeyReused()
        return True

    def plan() -> _State | None:
        if idempotency_key and replayed():
            return None
        state = _load_with_lots(user_id) if delta < 0 else _load(user_id)
        state.actor, state.fingerprint = admin_id, fingerprint
        if delta > 0:
            state.book.credit(delta, "admin_adjust", key, _lot_key(key, now), now, note=reason)
        else:
            state.book.debit(-delta, "admin_adjust", key, allow_debt=False, note=reason)
        return state

    if not _run(plan, now):
        replayed()
    return account(user_id)


# ------------------------------------------------------------------ orders

def order_paid(order_id: str, user_id: str, currency: str | None, amount: int,
               points_used: int, paid_at: str) -> bool:
    """An order was paid: its hold is consumed (the points it used are spent; were they
    released meanwhile, they come out of what is available, and what is missing becomes
    debt), then points are earned on the amount paid (debt first, the rest a lot). The
    order's facts are recorded (once: a replay changes nothing). A refund that arrived first
    is applied next."""
    earned = rules.earned_for(amount, settings().points_earn_per_major)
    now = db.now_iso()

    def plan() -> _State | None:
        facts = store.facts(user_id, order_id)
        if facts is not None and facts.paid_at:
            return None
        hold = store.hold(user_id, order_id)
        state = _load_with_lots(user_id) if points_used > 0 else _load(user_id)
        held = 0
        if hold is not None and hold.status == "held":
            held = int(hold.points)
            state.extras.append(_hold_to("consumed" if points_used else "released", hold, now))
        rules.pay(state.book, order_id, held, points_used, earned, paid_at, _lot_key)
        state.extras.append(lambda tx: tx.update(
            FactsRecord(pk=store.partition(user_id), sk=FactsRecord.sort_key(order_id)),
            actions=[FactsRecord.order_id.set(order_id), FactsRecord.paid_at.set(paid_at),
                     FactsRecord.currency.set(currency or "unknown"),
                     FactsRecord.amount_paid.set(max(0, amount)),
                     FactsRecord.earned.set(earned), FactsRecord.used.set(max(0, points_used)),
                     FactsRecord.clawed.set(0), FactsRecord.returned.set(0),
                     FactsRecord.updated_at.set(now)],
            condition=FactsRecord.paid_at.does_not_exist()))
        return state

    applied = _run(plan, now)
    if applied:
        facts = store.facts(user_id, order_id)
        if facts is not None and int(facts.refunded):
            order_refunded(order_id, user_id, int(facts.amount_paid), int(facts.refunded))
    return applied


def _hold_to(status: str, hold: HoldRecord, now: str) -> Extra:
    return lambda tx: tx.update(hold, actions=[HoldRecord.status.set(status),
                                               HoldRecord.updated_at.set(now)],
                                condition=HoldRecord.status == "held")


def order_ended(order_id: str, user_id: str) -> bool:
    """An order ended unpaid (expired, failed): its hold, if still held, is released."""
    now = db.now_iso()

    def plan() -> _State | None:
        hold = store.hold(user_id, order_id)
        if hold is None or hold.status != "held":
            return None
        state = _load(user_id)
        state.book.release(int(hold.points), key=f"release_hold#{order_id}", order_id=order_id)
        state.extras.append(_hold_to("released", hold, now))
        return state

    return _run(plan, now)


def order_refunded(order_id: str, user_id: str, amount_paid: int, refunded: int) -> bool:
    """`refunded` (cumulative) of an order was refunded: the points it earned are taken back
    and those it used given back, each in proportion (rounded down) and net of what earlier
    refunds did, so replays and late deliveries count nothing twice. Points given back are
    a new lot and repay debt first; points taken back come out of what is available, and
    what is missing becomes debt. Before the order's payment is known, the refund is only
    remembered; the payment applies it."""
    now = db.now_iso()

    def plan() -> _State | None:
        facts = store.facts(user_id, order_id)
        if facts is None or not facts.paid_at:
            if _remember_refund(order_id, user_id, refunded, now):
                return None
            facts = store.facts(user_id, order_id)
            if facts is None or not facts.paid_at:
                return None  # remembered already, with as much or more
        paid = int(facts.amount_paid) or amount_paid
        total = max(refunded, int(facts.refunded))
        claw_to, return_to = rules.refund_targets(int(facts.earned), int(facts.used), paid, total)
        clawed, returned = int(facts.clawed), int(facts.returned)
        if claw_to <= clawed and return_to <= returned:
            return None
        state = _load_with_lots(user_id) if claw_to > clawed else _load(user_id)
        claw_to, return_to = rules.refund(state.book, order_id, int(facts.earned),
                                          int(facts.used), paid, total, clawed, returned, now,
                                          _lot_key)
        state.extras.append(lambda tx: tx.update(facts, actions=[
            FactsRecord.clawed.set(claw_to), FactsRecord.returned.set(return_to),
            FactsRecord.refunded.set(total), FactsRecord.updated_at.set(now)],
            condition=(FactsRecord.clawed == clawed) & (FactsRecord.returned == returned)))
        return state

    return _run(plan, now)


def _remember_refund(order_id: str, user_id: str, refunded: int, now: str) -> bool:
    """A refund of an order whose payment has not arrived: its amount kept on the order's
    facts (if larger than one kept). False when the payment is there after all, or a larger
    refund was kept."""
    facts = FactsRecord(pk=store.partition(user_id), sk=FactsRecord.sort_key(order_id))
    try:
        facts.update(actions=[FactsRecord.order_id.set(order_id),
                              FactsRecord.refunded.set(refunded),
                              FactsRecord.updated_at.set(now)],
                     condition=FactsRecord.paid_at.does_not_exist()
                     & (FactsRecord.refunded.does_not_exist() | (FactsRecord.refunded < refunded)))
    except UpdateError as exc:
        if db.is_condition_failure(exc):
            return False
        raise
    logger.info("points: refund before payment kept", extra={"order_id": order_id})
    return True


# ------------------------------------------------------------------ expiry

def expire_lot(user_id: str, lot_sk: str, now_iso: str, due_again: str) -> int:
    """A due lot: what of it no checkout holds leaves the balance (holds are counted against
    the lots that expire first). What is held stays in the lot, due again on `due_again`
    (yyyy-mm-dd). The points expired."""
    expired = 0

    def plan() -> _State | None:
        nonlocal expired
        lot = store.lot(user_id, lot_sk)
        if lot is None or int(lot.remaining) <= 0 or lot.expires_at > now_iso:
            return None
        state = _load(user_id, store.lots_until(user_id, lot_sk))
        expired = state.book.expire(lot_sk, f"expire#{lot.lot_id}#{int(lot.remaining)}")
        if state.book.lots.get(lot_sk, 0) > 0:
            state.requeue[lot_sk] = due_again
        if not expired and not state.requeue:
            return None
        return state

    return expired if _run(plan, db.now_iso()) else 0


def expire_due(now: float | None = None) -> dict[str, int]:
    """Every lot due by `now`: one Query of `gsi1` per day since the last day the run
    finished (`EXPIRY`/`CURSOR`; the first run looks back LOOKBACK_DAYS). Called by the
    15-minute schedule and `make reconcile`; running it twice expires nothing twice."""
    now_iso = db.iso_at(now if now is not None else time.time())
    today = date.fromisoformat(now_iso[:10])
    done = store.expiry_cursor()
    day = date.fromisoformat(done.day) + timedelta(days=1) if done else \
        today - timedelta(days=LOOKBACK_DAYS)
    first = day
    tomorrow = (today + timedelta(days=1)).isoformat()
    seen = expired = failed = 0
    while day <= today:
        for lot in list(store.due_lots(day.isoformat(), now_iso)):
            seen += 1
            try:
                expired += expire_lot(lot.user_id, lot.sk, now_iso, tomorrow)
            except Exception:  # noqa: BLE001 - the others still expire; this one next run
                failed += 1
                logger.exception("points lot not expired", extra={"lot": lot.sk})
        day += timedelta(days=1)
    yesterday = today - timedelta(days=1)
    if first <= yesterday and not failed:
        ExpiryCursor(day=yesterday.isoformat()).save()
    return {"lots_due": seen, "points_expired": expired, "failed": failed}
