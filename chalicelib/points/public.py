"""What the payments context's checkout uses of points, without their storage: the buyer's
available points as a part of its own BatchGetItem, and the hold it writes in its own
checkout transaction.

    read = public.account_read(user_id)            # one part of db.batch_read(...)
    available = public.available_in(items_of_that_part)
    with db.transaction() as tx:                   # the checkout's transaction
        ...                                        # its own items: say `start` of them
        public.add_hold(tx, user_id, order_id, points)   # adds HOLD_ITEMS items, in order:
        ...                                        #  [start]   Update Z#ACCOUNT
                                                   #  [start+1] Put H#<order>
    except TransactWriteError as exc:
        codes = db.cancellation_codes(exc)
        if public.hold_refused(codes, start): ...  # 422 insufficient_points
        if public.hold_exists(codes, start): ...   # this order holds points already

The hold is consumed by the order's `order.paid` event (its `points_used`), released by its
`order.ended` event (chalicelib.points.events)."""
from __future__ import annotations

from typing import Any

from chalicelib import db
from chalicelib.config import settings
from chalicelib.points import store
from chalicelib.points.store import AccountRecord, HoldRecord

# The number of items add_hold adds to a transaction: the account's update, then the hold.
HOLD_ITEMS = 2
_FAILED = "ConditionalCheckFailed"


def account_read(user_id: str) -> db.Read:
    """The part of a `db.batch_read` that reads the user's available points."""
    return db.Read(settings().points_table, [store.account_key(user_id)],
                   projection="#available", names={"#available": "available"})


def available_in(items: list[dict]) -> int:
    """The available points an `account_read` part found (0 when the user has no account)."""
    for item in items:
        if "available" in item:
            return int(item["available"]["N"])
    return 0


def add_hold(tx: Any, user_id: str, order_id: str, points: int, at: str | None = None) -> None:
    """Add to an open `db.transaction()` a hold of `points` (> 0) for `order_id`, as
    HOLD_ITEMS items in this order:
    1. Update the account `PTS#<user>`/`Z#ACCOUNT`: available -= points, held += points,
       version += 1; condition available >= points (fails too when there is no account);
    2. Put `PTS#<user>`/`H#<order>` {points, status: held}; condition: absent."""
    if points <= 0:
        raise ValueError("a hold is of at least 1 point")
    now = at or db.now_iso()
    tx.update(AccountRecord(pk=store.partition(user_id), sk=store.ACCOUNT), actions=[
        AccountRecord.available.add(-points), AccountRecord.held.add(points),
        AccountRecord.version.add(1), AccountRecord.updated_at.set(now)],
        condition=AccountRecord.available >= points)
    tx.save(HoldRecord(pk=store.partition(user_id), sk=HoldRecord.sort_key(order_id),
                       order_id=order_id, points=points, status="held", at=now),
            condition=HoldRecord.sk.does_not_exist())


def hold_refused(codes: list[str | None], start: int) -> bool:
    """Whether a transaction failed because the buyer has fewer available points than the
    hold added at position `start` asked for (`codes`: db.cancellation_codes)."""
    return len(codes) > start and codes[start] == _FAILED


def hold_exists(codes: list[str | None], start: int) -> bool:
    """Whether it failed because the order holds points already."""
    return len(codes) > start + 1 and codes[start + 1] == _FAILED
