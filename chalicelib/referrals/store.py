"""Storage of referrals (PynamoDB), the referrals table:

- `CODE#<code>` / `OWNER` whose referral code it is (put once, condition absent: a code is
  never anyone else's);
- `USER#<user>` / `ATTR` the user's attribution: the referrer of the last referral link they
  visited, and when; it lapses 30 days after the visit (`expires_at`, also the TTL);
- `USER#<user>` / `REFERRED_BY` the referral that the user's first paid order rewarded: put
  once (condition absent), it is what makes the reward once per referred user, and what a
  loop is refused by (A referred by B may not refer B);
- `USER#<referrer>` / `W#<at>#<order>` a reward: its kind, points or commission, and how much
  of it refunds took back so far;
- `USER#<referee>` / `REFUNDED#<order>` a refund that arrived before the reward it reverses;
- `USER#<referrer>` / `~SUMMARY` the referrer's totals (ADD).

The summary sorts after every reward, so `GET /me/referral` is one descending Query: the
totals, then the newest rewards. The attribution and the referred-by item sort before `W#`.
"""
from __future__ import annotations

from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib import aws, db
from chalicelib.config import settings
from chalicelib.db import table_meta

ATTR, REFERRED_BY, REWARD, SUMMARY = "ATTR", "REFERRED_BY", "W#", "~SUMMARY"


def user_partition(user_id: str) -> str:
    return f"USER#{user_id}"


class CodeRecord(Model):
    Meta = table_meta("referrals_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="OWNER")
    code = UnicodeAttribute()
    user_id = UnicodeAttribute()
    at = UnicodeAttribute()

    @staticmethod
    def key(code: str) -> str:
        return f"CODE#{code}"


class AttributionRecord(Model):
    Meta = table_meta("referrals_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=ATTR)
    referrer_id = UnicodeAttribute()
    code = UnicodeAttribute()
    visited_at = UnicodeAttribute()
    resource_id = UnicodeAttribute(null=True)
    expires_at = NumberAttribute()  # epoch seconds: when it lapses (and the TTL)


class ReferredByRecord(Model):
    Meta = table_meta("referrals_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=REFERRED_BY)
    referrer_id = UnicodeAttribute()
    order_id = UnicodeAttribute()
    reward_sk = UnicodeAttribute()
    at = UnicodeAttribute()


class RewardRecord(Model):
    Meta = table_meta("referrals_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    referee_id = UnicodeAttribute()
    referee_name = UnicodeAttribute(null=True)
    order_id = UnicodeAttribute()
    kind = UnicodeAttribute()  # points | commission
    value = NumberAttribute()  # points, or minor units of `currency`
    currency = UnicodeAttribute(null=True)
    amount_paid = NumberAttribute()
    refunded = NumberAttribute(default=0)
    reversed = NumberAttribute(default=0)  # of `value`, taken back by refunds so far
    at = UnicodeAttribute()
    updated_at = UnicodeAttribute()

    @staticmethod
    def sort_key(at: str, order_id: str) -> str:
        return f"{REWARD}{at}#{order_id}"


class SummaryRecord(Model):
    """Totals of a referrer: `referred` buyers; points earned and reversed; commission
    earned and reversed, one attribute per currency (`commission_<currency>`,
    `reversed_<currency>`, minor units), so each is a plain ADD."""

    Meta = table_meta("referrals_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=SUMMARY)
    referred = NumberAttribute(default=0)
    points_earned = NumberAttribute(default=0)
    points_reversed = NumberAttribute(default=0)
    commission_cny = NumberAttribute(default=0)
    commission_usd = NumberAttribute(default=0)
    commission_eur = NumberAttribute(default=0)
    commission_gbp = NumberAttribute(default=0)
    reversed_cny = NumberAttribute(default=0)
    reversed_usd = NumberAttribute(default=0)
    reversed_eur = NumberAttribute(default=0)
    reversed_gbp = NumberAttribute(default=0)

    @classmethod
    def commission(cls, currency: str) -> NumberAttribute:
        return getattr(cls, f"commission_{currency}")

    @classmethod
    def reversal(cls, currency: str) -> NumberAttribute:
        return getattr(cls, f"reversed_{currency}")


class RefundNoteRecord(Model):
    """A refund of an attributed order that arrived before its payment's reward: applied
    when the reward is made (the queue does not keep order)."""

    Meta = table_meta("referrals_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    refunded = NumberAttribute()
    amount_paid = NumberAttribute()
    expires_at = NumberAttribute()  # TTL

    @staticmethod
    def sort_key(order_id: str) -> str:
        return f"REFUNDED#{order_id}"


def refund_note(user_id: str, order_id: str) -> RefundNoteRecord | None:
    try:
        return RefundNoteRecord.get(user_partition(user_id), RefundNoteRecord.sort_key(order_id),
                                    consistent_read=True)
    except RefundNoteRecord.DoesNotExist:
        return None


def code_owner(code: str) -> CodeRecord | None:
    try:
        return CodeRecord.get(CodeRecord.key(code), "OWNER")
    except CodeRecord.DoesNotExist:
        return None


def referred_by(user_id: str) -> ReferredByRecord | None:
    try:
        return ReferredByRecord.get(user_partition(user_id), REFERRED_BY, consistent_read=True)
    except ReferredByRecord.DoesNotExist:
        return None


def reward(referrer_id: str, sk: str) -> RewardRecord | None:
    try:
        return RewardRecord.get(user_partition(referrer_id), sk, consistent_read=True)
    except RewardRecord.DoesNotExist:
        return None


def page(user_id: str, limit: int, start: dict | None) -> tuple[list[dict], dict | None]:
    """The summary and the newest rewards (raw items), descending: ONE Query."""
    request: dict[str, Any] = {
        "TableName": settings().referrals_table,
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :from AND :to",
        "ExpressionAttributeValues": {":pk": {"S": user_partition(user_id)},
                                      ":from": {"S": REWARD}, ":to": {"S": SUMMARY}},
        "ScanIndexForward": False, "Limit": limit + (0 if start else 1)}
    if start:
        request["ExclusiveStartKey"] = start
    reply = aws.dynamodb().query(**request)
    return reply.get("Items", []), reply.get("LastEvaluatedKey")


def summary(user_id: str) -> SummaryRecord | None:
    try:
        return SummaryRecord.get(user_partition(user_id), SUMMARY)
    except SummaryRecord.DoesNotExist:
        return None


def summary_from_raw(item: dict) -> SummaryRecord:
    return SummaryRecord.from_raw_data(item)


def reward_from_raw(item: dict) -> RewardRecord:
    return RewardRecord.from_raw_data(item)


def attribution_read(user_id: str) -> db.Read:
    """The part of a `db.batch_read` that reads the user's attribution."""
    return db.Read(settings().referrals_table,
                   [{"pk": {"S": user_partition(user_id)}, "sk": {"S": ATTR}}],
                   projection="referrer_id, code, expires_at")
