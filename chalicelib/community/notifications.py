"""Notifications: what happened that concerns you (a reply to your review or comment, a
moderation outcome, your resource approved or rejected, a payment or refund, a referral
reward). Each is written in the transaction of what it reports, with the unread counter's
ADD, so the count is exact and reading it is one GetItem (the first item of the page's one
Query). An unread notification is also in the sparse index `gsi1` `UNREAD#<user>`, so
marking everything read touches only what is unread. Important ones are also emailed, once,
after the transaction that made them committed."""
from __future__ import annotations

import uuid
from typing import Any

from pynamodb.exceptions import TransactWriteError

from chalicelib import cursor, db
from chalicelib.community import store
from chalicelib.community.schemas import NotificationList, NotificationOut
from chalicelib.community.store import CounterRecord, NotificationRecord
from chalicelib.errors import NotFound
from chalicelib.observability import logger

MARK_BATCH = 25  # notifications marked read per transaction (each one's update + the counter)
_ID_PREFIX = len(store.NOTE)


def unread_key(user_id: str) -> str:
    return f"UNREAD#{user_id}"


def add(tx: Any, user_id: str, kind: str, title: str, body: str | None = None,
        link: str | None = None, at: str | None = None) -> NotificationRecord:
    """In an open `db.transaction()`: a new unread notification for `user_id` (2 items: the
    notification, the counter's ADD). Title and body are plain text, cut to fit."""
    now = at or db.now_iso()
    note_id = uuid.uuid4().hex[:12]
    record = NotificationRecord(
        pk=NotificationRecord.key(user_id), sk=NotificationRecord.sort_key(now, note_id),
        notification_id=note_id, type=kind, title=title[:200],
        body=body[:1000] if body else None, link=link, at=now, read=False)
    record.gsi1pk, record.gsi1sk = unread_key(user_id), record.sk
    tx.save(record)
    tx.update(CounterRecord(pk=NotificationRecord.key(user_id), sk=store.COUNTER),
              actions=[CounterRecord.unread.add(1)])
    return record


def _out(record: NotificationRecord) -> NotificationOut:
    return NotificationOut(id=record.sk[_ID_PREFIX:], type=record.type, title=record.title,
                           body=record.body, link=record.link, at=record.at,
                           read=bool(record.read))


def mine(user_id: str, limit: int, cursor_text: str | None) -> NotificationList:
    """The unread count and the newest notifications: one Query (the counter sorts last)."""
    scope = f"notifications:{user_id}"
    start = cursor.decode(cursor_text, scope)
    items, position = store.notifications_page(user_id, limit, start)
    unread = 0
    notes = []
    for item in items:
        if item["sk"]["S"] == store.COUNTER:
            unread = max(0, int(store.counter_from_raw(item).unread))
        else:
            notes.append(_out(store.notification_from_raw(item)))
    if start:
        counter = store.counter(user_id)
        unread = max(0, int(counter.unread)) if counter else 0
    return NotificationList(unread=unread, items=notes[:limit],
                            next_cursor=cursor.encode(position, scope))


def unread(user_id: str) -> int:
    """The unread count: one GetItem."""
    counter = store.counter(user_id)
    return max(0, int(counter.unread)) if counter else 0


def _mark(user_id: str, records: list[NotificationRecord]) -> int:
    """Mark these (unread when read) notifications read and take them off the counter, in
    one transaction; a notification marked meanwhile is left out and the rest tried again."""
    while records:
        try:
            with db.transaction() as tx:
                for record in records:
                    tx.update(record, actions=[NotificationRecord.read.set(True),
                                               NotificationRecord.gsi1pk.remove(),
                                               NotificationRecord.gsi1sk.remove()],
                              condition=NotificationRecord.read == False)  # noqa: E712
                tx.update(CounterRecord(pk=NotificationRecord.key(user_id), sk=store.COUNTER),
                          actions=[CounterRecord.unread.add(-len(records))])
            return len(records)
        except TransactWriteError as exc:
            codes = db.cancellation_codes(exc)
            if "ConditionalCheckFailed" not in codes[:len(records)]:
                raise
            records = [r for r, code in zip(records, codes, strict=False)
                       if code != "ConditionalCheckFailed"]
    return 0


def mark_read(user_id: str, ids: list[str], everything: bool) -> int:
    """Mark the named notifications read (an id that is not yours: 404), or every unread
    one (`everything`: through the unread index, MARK_BATCH at a time). The unread count."""
    if everything:
        while True:
            batch = list(NotificationRecord.unread.query(unread_key(user_id), limit=MARK_BATCH))
            if not batch:
                break
            _mark(user_id, [r for r in batch if not r.read])
    if ids:
        found = []
        for note_id in dict.fromkeys(ids):
            record = store.notification(user_id, store.NOTE + note_id)
            if record is None:
                raise NotFound("No such notification.", code="notification_not_found",
                               details={"id": note_id})
            if not record.read:
                found.append(record)
        for start in range(0, len(found), MARK_BATCH):
            _mark(user_id, found[start:start + MARK_BATCH])
    return unread(user_id)


def email(user_id: str, subject: str, text: str) -> None:
    """Email the user (best effort: the notification is stored already)."""
    from chalicelib import mail
    from chalicelib.accounts import profiles

    try:
        [found] = db.batch_read(profiles.email_read(user_id))
        address = profiles.email_in(found)
        if address:
            mail.send(address, subject, text)
    except Exception:  # noqa: BLE001 - the in-app notification is what counts
        logger.exception("notification email not sent", extra={"user_id": user_id})
