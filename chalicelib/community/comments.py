"""Comments on resource pages: any signed-in user, one level of replies, an edit window,
soft delete (a deleted comment keeps its place so its replies still make sense). Posting is
one transaction: the comment, the poster's rate window (at most RATE_LIMIT per RATE_WINDOW
seconds, else 429), the check that they are not banned from commenting, the parent's reply
count and the parent author's notification."""
from __future__ import annotations

import secrets
import time
from datetime import datetime

from pynamodb.exceptions import TransactWriteError

from chalicelib import cursor, db
from chalicelib.accounts import profiles
from chalicelib.catalog import public as catalog
from chalicelib.community import notifications, store, text
from chalicelib.community.schemas import Author, CommentList, CommentOut
from chalicelib.community.store import BanRecord, CommentRecord, RateWindow
from chalicelib.errors import Conflict, Forbidden, NotFound, Refused, Throttled

RATE_LIMIT = 5
RATE_WINDOW = 60
EDIT_WINDOW = 15 * 60
_FAILED = "ConditionalCheckFailed"
# Ids of top-level comments start with this minus the time in ms: newest sorts first.
_CLOCK = 10**13 - 1


class CommentNotFound(NotFound):
    code = "comment_not_found"
    message = "No such comment."


def out(c: CommentRecord) -> CommentOut:
    shown = c.status == "visible"
    return CommentOut(id=c.comment_id, resource_id=c.resource_id, parent_id=c.parent_id,
                      author=Author(id=c.user_id, display_name=c.author_name),
                      body=c.body if shown else None,
                      html=text.render(c.body) if shown else None,
                      status="hidden" if c.status == "hidden" else
                      "deleted" if c.status == "deleted" else "visible",
                      created_at=c.created_at, edited_at=c.edited_at, replies=int(c.replies))


def _new_id(parent_id: str | None, now_ms: int) -> str:
    own = secrets.token_hex(4)
    if parent_id is None:
        return f"{_CLOCK - now_ms:013d}{own}"
    return f"{parent_id}.{now_ms:013d}{own}"


def rate_window_update(tx, user_id: str, action: str, limit: int, window: int,
                       now: float) -> int:
    """In an open `db.transaction()`: one more `action` in the user's current window,
    condition: fewer than `limit` so far. The seconds until the window ends."""
    start = int(now) // window * window
    tx.update(RateWindow(pk=RateWindow.key(user_id), sk=f"{action}#{start}"),
              actions=[RateWindow.n.add(1), RateWindow.expires_at.set(start + window + 60)],
              condition=RateWindow.n.does_not_exist() | (RateWindow.n < limit))
    return start + window - int(now)


def post(user_id: str, resource_id: str, body: str, parent_id: str | None) -> CommentOut:
    """A comment on a published resource, or a reply to a visible top-level comment."""
    resources, names = db.batch_read(catalog.resources_read([resource_id]),
                                     profiles.names_read([user_id]))
    offer = catalog.offers_in(resources).get(resource_id)
    if offer is None or offer.status != "published":
        raise NotFound("No such resource.", code="resource_not_found")
    parent = None
    if parent_id is not None:
        parent = store.comment(resource_id, parent_id)
        if parent is None:
            raise CommentNotFound(details={"parent_id": parent_id})
        if parent.parent_id:
            raise Refused("Replies take no replies: answer the comment they reply to.",
                          code="reply_depth", details={"parent_id": parent.parent_id})
    now = time.time()
    now_iso = db.iso_at(now)
    comment_id = _new_id(parent_id, int(now * 1000))
    record = CommentRecord(
        pk=store.resource_partition(resource_id), sk=CommentRecord.sort_key(comment_id),
        comment_id=comment_id, parent_id=parent_id, resource_id=resource_id, user_id=user_id,
        author_name=profiles.names_in(names).get(user_id, "")[:80] or "user", body=body,
        status="visible", created_at=now_iso, replies=0)
    try:
        with db.transaction() as tx:
            tx.condition_check(BanRecord, BanRecord.key(user_id), "COMMENTS",
                               condition=BanRecord.pk.does_not_exist())
            wait = rate_window_update(tx, user_id, "comment", RATE_LIMIT, RATE_WINDOW, now)
            tx.save(record, condition=CommentRecord.sk.does_not_exist())
            if parent is not None:
                tx.update(parent, actions=[CommentRecord.replies.add(1)],
                          condition=CommentRecord.status == "visible")
                if parent.user_id != user_id:
                    notifications.add(tx, parent.user_id, "comment_reply",
                                      f"New reply on {offer.title}", body=body[:300],
                                      link=f"/resources/{resource_id}#comment-{comment_id}",
                                      at=now_iso)
    except TransactWriteError as exc:
        codes = db.cancellation_codes(exc)
        if codes[:1] == [_FAILED]:
            raise Forbidden("You may not comment.", code="comment_banned") from None
        if codes[1:2] == [_FAILED]:
            raise Throttled(wait, f"At most {RATE_LIMIT} comments a minute; try again soon.",
                            code="comment_rate_limited") from None
        if codes[3:4] == [_FAILED]:
            raise Conflict("That comment takes no replies now.", code="comment_closed") from None
        raise
    return out(record)


def _own(user_id: str, resource_id: str, comment_id: str) -> CommentRecord:
    record = store.comment(resource_id, comment_id)
    if record is None or record.user_id != user_id or record.status == "deleted":
        raise CommentNotFound()
    return record


def _elapsed(since_iso: str) -> float:
    return time.time() - datetime.fromisoformat(since_iso.replace("Z", "+00:00")).timestamp()


def _update(record: CommentRecord, actions: list, condition) -> None:
    from pynamodb.exceptions import UpdateError

    try:
        record.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if db.is_condition_failure(exc):
            raise Conflict("The comment changed meanwhile.", code="comment_changed") from None
        raise


def edit(user_id: str, resource_id: str, comment_id: str, body: str) -> CommentOut:
    """The author rewords their comment within EDIT_WINDOW of posting it."""
    record = _own(user_id, resource_id, comment_id)
    if record.status != "visible":
        raise Conflict("A hidden comment cannot be edited.", code="comment_hidden")
    if _elapsed(record.created_at) > EDIT_WINDOW:
        raise Conflict(f"Comments can be edited for {EDIT_WINDOW // 60} minutes.",
                       code="edit_window_closed")
    _update(record, [CommentRecord.body.set(body), CommentRecord.edited_at.set(db.now_iso())],
            (CommentRecord.status == "visible") & (CommentRecord.user_id == user_id))
    return out(_own(user_id, resource_id, comment_id))


def delete(user_id: str, resource_id: str, comment_id: str) -> None:
    """The author deletes their comment: its words go, its place (and replies) stay."""
    record = _own(user_id, resource_id, comment_id)
    _update(record, [CommentRecord.status.set("deleted"), CommentRecord.body.set(""),
                     CommentRecord.edited_at.set(db.now_iso())],
            (CommentRecord.status != "deleted") & (CommentRecord.user_id == user_id))


def listing(resource_id: str, limit: int, cursor_text: str | None) -> CommentList:
    """Threads in order (newest comment first, its replies after it): one Query."""
    scope = f"comments:{resource_id}"
    results = store.comments_page(resource_id, limit, cursor.decode(cursor_text, scope))
    items, position = db.page(results)
    return CommentList(items=[out(c) for c in items], next_cursor=cursor.encode(position, scope))


def set_visible(record: CommentRecord, visible: bool, extra=None) -> bool:
    """Hide a visible comment or show a hidden one again, with `extra(tx)` in the same
    transaction. False when it is so already, deleted, or changed meanwhile."""
    if record.status == "deleted" or (record.status == "visible") == visible:
        return False
    try:
        with db.transaction() as tx:
            tx.update(record, actions=[CommentRecord.status.set(
                "visible" if visible else "hidden")],
                condition=CommentRecord.status == record.status)
            if extra is not None:
                extra(tx)
    except TransactWriteError as exc:
        if db.cancellation_codes(exc)[:1] == [_FAILED]:
            return False
        raise
    return True
