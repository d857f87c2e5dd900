"""Storage of points (PynamoDB), the points table. One partition per user, `PTS#<user>`:

- `Z#ACCOUNT` the account: balance, available, held, debt, version (every write but a hold
  is conditioned on the version read; a hold ADDs to it, so those writes notice it);
- `L#<at>#<n>#<key>` a ledger entry (`n`: its place among the entries of one write);
  `K#<key>` its once-only marker (put, condition absent, in the entry's transaction);
- `E#<expires_at>#<lot>` a lot, and while it has points left, `gsi1` =
  `LOTS#<day of expiry>` / `<expires_at>#<user>#<lot>` so the expiry run finds it;
- `H#<order>` a checkout's hold; `F#<order>` the order's points facts (earned, used, paid,
  refunded so far, clawed back and returned so far).

The account sorts last and the ledger just before it, so `GET /me/points` is one Query
(descending, `sk BETWEEN "L#" AND "Z#~"`): the account, then the newest entries. Every other
prefix sorts before `L#`. `EXPIRY` / `CURSOR` keeps the last day the expiry run finished."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib import aws
from chalicelib.config import settings
from chalicelib.db import global_index, table_meta

ACCOUNT = "Z#ACCOUNT"
ENTRY, MARKER, LOT, HOLD, FACTS = "L#", "K#", "E#", "H#", "F#"
PAGE_FROM, PAGE_TO = "L#", "Z#~"


def partition(user_id: str) -> str:
    return f"PTS#{user_id}"


def user_of(pk: str) -> str:
    return pk.removeprefix("PTS#")


class AccountRecord(Model):
    Meta = table_meta("points_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=ACCOUNT)
    user_id = UnicodeAttribute()
    balance = NumberAttribute(default=0)
    available = NumberAttribute(default=0)
    held = NumberAttribute(default=0)
    debt = NumberAttribute(default=0)
    version = NumberAttribute(default=0)
    updated_at = UnicodeAttribute(null=True)


class EntryRecord(Model):
    Meta = table_meta("points_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    key = UnicodeAttribute()
    reason = UnicodeAttribute()
    delta = NumberAttribute()
    balance_after = NumberAttribute()
    debt_after = NumberAttribute(default=0)
    order_id = UnicodeAttribute(null=True)
    note = UnicodeAttribute(null=True)
    actor = UnicodeAttribute(null=True)
    at = UnicodeAttribute()

    @staticmethod
    def sort_key(at: str, key: str, n: int = 0) -> str:
        """`n`: the entry's place among those one write makes (they share `at`)."""
        return f"{ENTRY}{at}#{n}#{key}"


class MarkerRecord(Model):
    Meta = table_meta("points_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    entry_sk = UnicodeAttribute()
    # What the write was asked to do (an admin's delta and reason): a key reused for another
    # change is told apart from a replay.
    fingerprint = UnicodeAttribute(null=True)

    @staticmethod
    def sort_key(key: str) -> str:
        return f"{MARKER}{key}"


class LotRecord(Model):
    Meta = table_meta("points_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    lot_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    points = NumberAttribute()
    remaining = NumberAttribute()
    reason = UnicodeAttribute()
    earned_at = UnicodeAttribute()
    expires_at = UnicodeAttribute()
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    due = global_index("gsi1")

    @staticmethod
    def sort_key(expires_at: str, lot_id: str) -> str:
        return f"{LOT}{expires_at}#{lot_id}"

    @staticmethod
    def day_key(day: str) -> str:
        return f"LOTS#{day}"


class HoldRecord(Model):
    Meta = table_meta("points_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    order_id = UnicodeAttribute()
    points = NumberAttribute()
    status = UnicodeAttribute()  # held | consumed | released
    at = UnicodeAttribute()
    updated_at = UnicodeAttribute(null=True)

    @staticmethod
    def sort_key(order_id: str) -> str:
        return f"{HOLD}{order_id}"


class FactsRecord(Model):
    Meta = table_meta("points_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    order_id = UnicodeAttribute()
    currency = UnicodeAttribute(null=True)
    paid_at = UnicodeAttribute(null=True)
    amount_paid = NumberAttribute(default=0)
    earned = NumberAttribute(default=0)
    used = NumberAttribute(default=0)
    refunded = NumberAttribute(default=0)
    clawed = NumberAttribute(default=0)
    returned = NumberAttribute(default=0)
    updated_at = UnicodeAttribute(null=True)

    @staticmethod
    def sort_key(order_id: str) -> str:
        return f"{FACTS}{order_id}"


class ExpiryCursor(Model):
    Meta = table_meta("points_table")
    pk = UnicodeAttribute(hash_key=True, default="EXPIRY")
    sk = UnicodeAttribute(range_key=True, default="CURSOR")
    day = UnicodeAttribute()


HOLD_STATUSES = ("held", "consumed", "released")


def lot_id_of(key: str) -> str:
    """A lot's id, from the idempotency key of the ledger write that made it."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _get(model: Any, user_id: str, sk: str) -> Any:
    try:
        return model.get(partition(user_id), sk, consistent_read=True)
    except model.DoesNotExist:
        return None


def account(user_id: str) -> AccountRecord | None:
    return _get(AccountRecord, user_id, ACCOUNT)


def hold(user_id: str, order_id: str) -> HoldRecord | None:
    return _get(HoldRecord, user_id, HoldRecord.sort_key(order_id))


def facts(user_id: str, order_id: str) -> FactsRecord | None:
    return _get(FactsRecord, user_id, FactsRecord.sort_key(order_id))


def marker(user_id: str, key: str) -> MarkerRecord | None:
    return _get(MarkerRecord, user_id, MarkerRecord.sort_key(key))


def lot(user_id: str, sk: str) -> LotRecord | None:
    return _get(LotRecord, user_id, sk)


def lots(user_id: str) -> Iterator[LotRecord]:
    """Every lot with points left, the soonest to expire first (exhausted lots are deleted).
    One Query (paged by PynamoDB)."""
    return LotRecord.query(partition(user_id), LotRecord.sk.startswith(LOT),
                           consistent_read=True)


def lots_until(user_id: str, sk: str) -> Iterator[LotRecord]:
    """The lots that expire no later than lot `sk`, that one included. One Query."""
    return LotRecord.query(partition(user_id), LotRecord.sk.between(LOT, sk),
                           consistent_read=True)


def due_lots(day: str, until_iso: str) -> Iterator[LotRecord]:
    """The lots with points left that expire on `day` (yyyy-mm-dd), up to `until_iso`:
    one Query of `gsi1` (paged)."""
    return LotRecord.due.query(LotRecord.day_key(day), LotRecord.gsi1sk <= f"{until_iso}~")


def expiry_cursor() -> ExpiryCursor | None:
    try:
        return ExpiryCursor.get("EXPIRY", "CURSOR", consistent_read=True)
    except ExpiryCursor.DoesNotExist:
        return None


def page(user_id: str, limit: int, start: dict | None) -> tuple[list[dict], dict | None]:
    """One Query, newest first, of the account and the ledger (`L#` … `Z#~`): raw items and
    the position to resume from. The first page asks one item more, for the account."""
    request: dict[str, Any] = {
        "TableName": settings().points_table,
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :from AND :to",
        "ExpressionAttributeValues": {":pk": {"S": partition(user_id)},
                                      ":from": {"S": PAGE_FROM}, ":to": {"S": PAGE_TO}},
        "ScanIndexForward": False, "ConsistentRead": True,
        "Limit": limit if start else limit + 1}
    if start:
        request["ExclusiveStartKey"] = start
    reply = aws.dynamodb().query(**request)
    return reply.get("Items", []), reply.get("LastEvaluatedKey")


def account_from_raw(item: dict) -> AccountRecord:
    return AccountRecord.from_raw_data(item)


def entry_from_raw(item: dict) -> EntryRecord:
    return EntryRecord.from_raw_data(item)


def account_key(user_id: str) -> dict:
    """The raw key of a user's account item, for another context's `db.batch_read`."""
    return {"pk": {"S": partition(user_id)}, "sk": {"S": ACCOUNT}}
