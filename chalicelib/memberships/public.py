"""The memberships context as checkout and delivery use it, without its models: the part of
a `db.batch_read` that reads a buyer's membership, and what the membership found gives now
(its level and purchase discount, nothing once it lapsed)."""
from __future__ import annotations

from typing import Any, NamedTuple

from chalicelib import db
from chalicelib.memberships import store
from chalicelib.memberships.billing import is_live
from chalicelib.memberships.store import Membership


class Benefits(NamedTuple):
    level: int  # 0: not a member
    discount_percent: int


NONE = Benefits(0, 0)


def read(user_id: str) -> db.Read:
    return store.membership_read(user_id)


def benefits_in(items: list[dict], now_iso: str) -> Benefits:
    """What the membership a `read` part found gives at `now_iso`."""
    m = store.membership_in(items)
    if not is_live(m, now_iso):
        return NONE
    assert m is not None
    return Benefits(int(m.level), int(m.discount_percent))


def started_in(items: list[dict]) -> str:
    m = store.membership_in(items)
    return m.started_at if m else ""


def add_access_check(tx: Any, user_id: str, level: int, now_iso: str) -> None:
    """In an open `db.transaction()`: the buyer's membership still opens `level` at
    `now_iso` (so a download by membership cannot outlive a lapse that raced it)."""
    tx.condition_check(Membership, Membership.key(user_id), "CURRENT",
                       condition=(Membership.access_until > now_iso)
                       & (Membership.level >= level))
