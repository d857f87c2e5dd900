"""Storage of the community context (PynamoDB), the community table:

- `RES#<resource>` / `REV#<review>` a review (its id is derived from the resource and the
  author, so there is at most one per buyer and resource); while visible, `gsi1`
  `REVIEWS#<resource>` / `<created_at>#<review>` lists it, newest first (sparse: a hidden
  review leaves the index, so a page is one Query with nothing filtered out);
- `RES#<resource>` / `CMT#<comment>` a comment; a reply's id is its parent's id, `.`, and
  its own, so one Query over `CMT#` gives the threads in order: the newest comment first
  (its id starts with an inverted clock), each followed by its replies, oldest first;
- `BAN#<user>` / `COMMENTS` a ban from commenting (checked in the comment's transaction);
- `RATE#<user>` / `<action>#<window>` a fixed-window counter (conditioned, in the write's
  transaction), removed by TTL;
- `RPT#<target>` / `BY#<user>` one user's report of a target (distinct reporters by key);
  `RPT#<target>` / `SUMMARY` the target's case: count, state; while open, `gsi1`
  `MODQ#open` / `<first_at>#<target>` is the admin's queue (oldest first), once decided
  `MODQ#closed` / `<decided_at>#<target>`;
- `FAV#<user>` / `RES#<resource>` a favorite; `gsi1` `FAVS#<user>` / `<at>#<resource>`;
- `NOTE#<user>` / `N#<at>#<id>` a notification, while unread also in `gsi1`
  `UNREAD#<user>` / its sort key; `NOTE#<user>` / `~COUNT` the unread count. The counter sorts after
  every notification, so `GET /me/notifications` is one descending Query: the counter, then
  the newest notifications.
"""
from __future__ import annotations

from typing import Any

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib import aws
from chalicelib.config import settings
from chalicelib.db import global_index, table_meta

REVIEW, COMMENT, NOTE, COUNTER = "REV#", "CMT#", "N#", "~COUNT"
OPEN_QUEUE, CLOSED_QUEUE = "MODQ#open", "MODQ#closed"


def resource_partition(resource_id: str) -> str:
    return f"RES#{resource_id}"


class ReviewRecord(Model):
    Meta = table_meta("community_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    review_id = UnicodeAttribute()
    resource_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    author_name = UnicodeAttribute()
    rating = NumberAttribute()
    body = UnicodeAttribute(null=True)
    status = UnicodeAttribute(default="visible")  # visible | hidden
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    reply_body = UnicodeAttribute(null=True)
    reply_at = UnicodeAttribute(null=True)
    # Every change adds 1 and is conditioned on the version read, so the resource's rating
    # counters always move by what the stored review held.
    version = NumberAttribute(default=1)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    newest = global_index("gsi1")

    @staticmethod
    def sort_key(review_id: str) -> str:
        return f"{REVIEW}{review_id}"

    @staticmethod
    def listing(resource_id: str) -> str:
        return f"REVIEWS#{resource_id}"


class CommentRecord(Model):
    Meta = table_meta("community_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    comment_id = UnicodeAttribute()
    parent_id = UnicodeAttribute(null=True)
    resource_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    author_name = UnicodeAttribute()
    body = UnicodeAttribute()
    status = UnicodeAttribute(default="visible")  # visible | hidden | deleted
    created_at = UnicodeAttribute()
    edited_at = UnicodeAttribute(null=True)
    replies = NumberAttribute(default=0)

    @staticmethod
    def sort_key(comment_id: str) -> str:
        return f"{COMMENT}{comment_id}"


class BanRecord(Model):
    Meta = table_meta("community_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="COMMENTS")
    user_id = UnicodeAttribute()
    by = UnicodeAttribute()
    reason = UnicodeAttribute()
    at = UnicodeAttribute()

    @staticmethod
    def key(user_id: str) -> str:
        return f"BAN#{user_id}"


class RateWindow(Model):
    Meta = table_meta("community_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    n = NumberAttribute(default=0)
    expires_at = NumberAttribute()

    @staticmethod
    def key(user_id: str) -> str:
        return f"RATE#{user_id}"


class ReportRecord(Model):
    Meta = table_meta("community_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    user_id = UnicodeAttribute()
    reason = UnicodeAttribute()
    note = UnicodeAttribute(null=True)
    at = UnicodeAttribute()

    @staticmethod
    def key(target: str) -> str:
        return f"RPT#{target}"


class CaseRecord(Model):
    """A reported target's case: how many distinct users reported it, and what was decided."""

    Meta = table_meta("community_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="SUMMARY")
    target = UnicodeAttribute()
    target_type = UnicodeAttribute()
    resource_id = UnicodeAttribute()
    target_id = UnicodeAttribute()
    reports = NumberAttribute(default=0)
    state = UnicodeAttribute(default="open")  # open | closed
    auto_hidden = BooleanAttribute(default=False)
    outcome = UnicodeAttribute(null=True)  # hidden | dismissed | unhidden
    last_reason = UnicodeAttribute(null=True)
    first_at = UnicodeAttribute()
    last_at = UnicodeAttribute()
    decided_at = UnicodeAttribute(null=True)
    decided_by = UnicodeAttribute(null=True)
    version = NumberAttribute(default=0)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    queue = global_index("gsi1")


class FavoriteRecord(Model):
    Meta = table_meta("community_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    resource_id = UnicodeAttribute()
    at = UnicodeAttribute()
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    newest = global_index("gsi1")

    @staticmethod
    def key(user_id: str) -> str:
        return f"FAV#{user_id}"

    @staticmethod
    def listing(user_id: str) -> str:
        return f"FAVS#{user_id}"


class NotificationRecord(Model):
    Meta = table_meta("community_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    notification_id = UnicodeAttribute()
    type = UnicodeAttribute()
    title = UnicodeAttribute()
    body = UnicodeAttribute(null=True)
    link = UnicodeAttribute(null=True)
    at = UnicodeAttribute()
    read = BooleanAttribute(default=False)
    gsi1pk = UnicodeAttribute(null=True)  # UNREAD#<user> while unread
    gsi1sk = UnicodeAttribute(null=True)
    unread = global_index("gsi1")

    @staticmethod
    def key(user_id: str) -> str:
        return f"NOTE#{user_id}"

    @staticmethod
    def sort_key(at: str, notification_id: str) -> str:
        return f"{NOTE}{at}#{notification_id}"


class CounterRecord(Model):
    Meta = table_meta("community_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=COUNTER)
    unread = NumberAttribute(default=0)


def _get(model: Any, pk: str, sk: str) -> Any:
    try:
        return model.get(pk, sk, consistent_read=True)
    except model.DoesNotExist:
        return None


def review(resource_id: str, review_id: str) -> ReviewRecord | None:
    return _get(ReviewRecord, resource_partition(resource_id), ReviewRecord.sort_key(review_id))


def comment(resource_id: str, comment_id: str) -> CommentRecord | None:
    return _get(CommentRecord, resource_partition(resource_id),
                CommentRecord.sort_key(comment_id))


def case(target: str) -> CaseRecord | None:
    return _get(CaseRecord, ReportRecord.key(target), "SUMMARY")


def counter(user_id: str) -> CounterRecord | None:
    return _get(CounterRecord, NotificationRecord.key(user_id), COUNTER)


def notification(user_id: str, sk: str) -> NotificationRecord | None:
    return _get(NotificationRecord, NotificationRecord.key(user_id), sk)


def reviews_page(resource_id: str, limit: int, start: dict | None) -> Any:
    """Visible reviews, newest first: one Query of `gsi1`."""
    return ReviewRecord.newest.query(ReviewRecord.listing(resource_id), scan_index_forward=False,
                                     limit=limit, last_evaluated_key=start)


def comments_page(resource_id: str, limit: int, start: dict | None) -> Any:
    """Threads in order (see the module): one Query."""
    return CommentRecord.query(resource_partition(resource_id),
                               CommentRecord.sk.startswith(COMMENT), limit=limit,
                               last_evaluated_key=start)


def queue_page(state: str, limit: int, start: dict | None) -> Any:
    """Cases in the admin's queue: open ones oldest first, closed ones newest first."""
    key = OPEN_QUEUE if state == "open" else CLOSED_QUEUE
    return CaseRecord.queue.query(key, scan_index_forward=state == "open", limit=limit,
                                  last_evaluated_key=start)


def favorites_page(user_id: str, limit: int, start: dict | None) -> Any:
    return FavoriteRecord.newest.query(FavoriteRecord.listing(user_id), scan_index_forward=False,
                                       limit=limit, last_evaluated_key=start)


def notifications_page(user_id: str, limit: int,
                       start: dict | None) -> tuple[list[dict], dict | None]:
    """One Query, newest first, of the counter and the notifications: raw items and the
    position to resume from. The first page asks one item more, for the counter."""
    request: dict[str, Any] = {
        "TableName": settings().community_table,
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :from AND :to",
        "ExpressionAttributeValues": {":pk": {"S": NotificationRecord.key(user_id)},
                                      ":from": {"S": NOTE}, ":to": {"S": COUNTER}},
        "ScanIndexForward": False, "ConsistentRead": True,
        "Limit": limit if start else limit + 1}
    if start:
        request["ExclusiveStartKey"] = start
    reply = aws.dynamodb().query(**request)
    return reply.get("Items", []), reply.get("LastEvaluatedKey")


def counter_from_raw(item: dict) -> CounterRecord:
    return CounterRecord.from_raw_data(item)


def notification_from_raw(item: dict) -> NotificationRecord:
    return NotificationRecord.from_raw_data(item)
