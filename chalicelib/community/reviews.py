"""Ratings and reviews. Only a buyer with an active purchase of the resource (or a member
whose membership opens a members-only resource) may review it, once; the check is a
condition of the review's own transaction, so a refund that races it wins. The resource's
rating sum and count move by atomic ADDs in the same transaction, by exactly what the stored
review held (each change is conditioned on the version read), so the average is exact
under any concurrency. Only visible reviews count: hiding one takes its rating out."""
from __future__ import annotations

import hashlib
from typing import Any

from pynamodb.exceptions import TransactWriteError

from chalicelib import cursor, db
from chalicelib.accounts import profiles
from chalicelib.catalog import public as catalog
from chalicelib.community import notifications, store, text
from chalicelib.community.schemas import Author, ReviewList, ReviewOut, ReviewReply
from chalicelib.community.store import ReviewRecord
from chalicelib.errors import Conflict, Forbidden, NotFound
from chalicelib.memberships import public as memberships
from chalicelib.payments import library

ATTEMPTS = 5
_FAILED = "ConditionalCheckFailed"


class ReviewNotFound(NotFound):
    code = "review_not_found"
    message = "No such review."


class Busy(Conflict):
    code = "concurrent_update"
    message = "The review changed meanwhile; try again."


def review_id(resource_id: str, user_id: str) -> str:
    """The one review a user may write of a resource has this id."""
    return hashlib.blake2b(f"{resource_id}|{user_id}".encode(), digest_size=10).hexdigest()


def out(r: ReviewRecord) -> ReviewOut:
    reply = ReviewReply(body=r.reply_body, html=text.render(r.reply_body) or "",
                        at=r.reply_at or r.updated_at) if r.reply_body else None
    return ReviewOut(id=r.review_id, resource_id=r.resource_id,
                     author=Author(id=r.user_id, display_name=r.author_name),
                     rating=int(r.rating), body=r.body, html=text.render(r.body),
                     status="hidden" if r.status == "hidden" else "visible",
                     created_at=r.created_at, updated_at=r.updated_at, reply=reply)


def _published(resource_id: str, found: list[dict]) -> catalog.Offer:
    offer = catalog.offers_in(found).get(resource_id)
    if offer is None or offer.status != "published":
        raise NotFound("No such resource.", code="resource_not_found")
    return offer


def post(user_id: str, resource_id: str, rating: int, body: str | None) -> ReviewOut:
    """A buyer's (or entitled member's) one review of a published resource: the review, the
    resource's rating counters, the check that the buyer still holds it and the creator's
    notification, in one transaction."""
    now = db.now_iso()
    resources, owned, membership, names = db.batch_read(
        catalog.resources_read([resource_id]), library.owned_read(user_id, [resource_id]),
        memberships.read(user_id), profiles.names_read([user_id]))
    offer = _published(resource_id, resources)
    if offer.creator_id == user_id:
        raise Forbidden("You cannot review your own resource.", code="own_resource")
    by_purchase = resource_id in library.owned_in(owned)
    by_membership = offer.members_only and \
        memberships.benefits_in(membership, now).level >= offer.member_level
    if not by_purchase and not by_membership:
        raise Forbidden("Only buyers of this resource may review it.", code="purchase_required")
    rid = review_id(resource_id, user_id)
    record = ReviewRecord(
        pk=store.resource_partition(resource_id), sk=ReviewRecord.sort_key(rid), review_id=rid,
        resource_id=resource_id, user_id=user_id,
        author_name=profiles.names_in(names).get(user_id, "")[:80] or "user",
        rating=rating, body=body, status="visible", created_at=now, updated_at=now, version=1,
        gsi1pk=ReviewRecord.listing(resource_id), gsi1sk=f"{now}#{rid}")
    try:
        with db.transaction() as tx:
            tx.save(record, condition=ReviewRecord.sk.does_not_exist())
            catalog.add_rating_change(tx, resource_id, rating, 1)
            if by_purchase:
                library.add_ownership_check(tx, user_id, resource_id)
            else:
                memberships.add_access_check(tx, user_id, offer.member_level, now)
            notifications.add(tx, offer.creator_id, "new_review",
                              f"{rating}★ for {offer.title}", body=(body or "")[:300] or None,
                              link=f"/resources/{resource_id}#review-{rid}", at=now)
    except TransactWriteError as exc:
        codes = db.cancellation_codes(exc)
        if codes[:1] == [_FAILED]:
            raise Conflict("You have reviewed this resource already; edit your review.",
                           code="already_reviewed", details={"review_id": rid}) from None
        if codes[1:2] == [_FAILED]:
            raise NotFound("No such resource.", code="resource_not_found") from None
        if codes[2:3] == [_FAILED]:
            raise Forbidden("Only buyers of this resource may review it.",
                            code="purchase_required") from None
        raise
    catalog.rating_changed(resource_id)
    return out(record)


def _own(user_id: str, resource_id: str, rid: str) -> ReviewRecord:
    record = store.review(resource_id, rid)
    if record is None or record.user_id != user_id:
        raise ReviewNotFound()
    return record


def _write(record: ReviewRecord, actions: list | None, rating_delta: tuple[int, int],
           extra: Any = None) -> bool:
    """Update (or with `actions` None, delete) a review under the version read, moving the
    resource's counters by `rating_delta` (sum, count). False when the version changed."""
    try:
        with db.transaction() as tx:
            condition = ReviewRecord.version == int(record.version)
            if actions is None:
                tx.delete(record, condition=condition)
            else:
                tx.update(record, actions=[*actions, ReviewRecord.version.add(1)],
                          condition=condition)
            if rating_delta != (0, 0):
                catalog.add_rating_change(tx, record.resource_id, *rating_delta)
            if extra is not None:
                extra(tx)
    except TransactWriteError as exc:
        if db.cancellation_codes(exc)[:1] == [_FAILED]:
            return False
        raise
    return True


def edit(user_id: str, resource_id: str, rid: str, rating: int | None,
         body: str | None) -> ReviewOut:
    """The author changes their rating or words; the counters move by the difference."""
    for _ in range(ATTEMPTS):
        record = _own(user_id, resource_id, rid)
        actions = [ReviewRecord.updated_at.set(db.now_iso())]
        delta = 0
        if rating is not None:
            actions.append(ReviewRecord.rating.set(rating))
            delta = rating - int(record.rating)
        if body is not None:
            actions.append(ReviewRecord.body.set(body))
        counted = record.status == "visible"
        if _write(record, actions, (delta, 0) if counted and delta else (0, 0)):
            if counted and delta:
                catalog.rating_changed(resource_id)
            return out(_own(user_id, resource_id, rid))
    raise Busy()


def delete(user_id: str, resource_id: str, rid: str) -> None:
    """The author removes their review (and its rating); they may review again later."""
    for _ in range(ATTEMPTS):
        record = _own(user_id, resource_id, rid)
        counted = record.status == "visible"
        if _write(record, None, (-int(record.rating), -1) if counted else (0, 0)):
            if counted:
                catalog.rating_changed(resource_id)
            return
    raise Busy()


def reply(creator_id: str, resource_id: str, rid: str, body: str) -> ReviewOut:
    """The resource's creator answers a review (again: the answer is replaced); the
    reviewer is notified of the first answer."""
    [resources] = db.batch_read(catalog.resources_read([resource_id]))
    offer = catalog.offers_in(resources).get(resource_id)
    if offer is None:
        raise NotFound("No such resource.", code="resource_not_found")
    if offer.creator_id != creator_id:
        raise ReviewNotFound()  # as for anyone else's review: nothing of it is shown
    for _ in range(ATTEMPTS):
        record = store.review(resource_id, rid)
        if record is None:
            raise ReviewNotFound()
        now = db.now_iso()
        first = not record.reply_body

        def notify(tx: Any, record: ReviewRecord = record, now: str = now) -> None:
            notifications.add(tx, record.user_id, "review_reply",
                              f"{offer.creator_name or 'The creator'} answered your review",
                              body=body[:300], link=f"/resources/{resource_id}#review-{rid}",
                              at=now)

        if _write(record, [ReviewRecord.reply_body.set(body), ReviewRecord.reply_at.set(now)],
                  (0, 0), notify if first else None):
            return out(store.review(resource_id, rid) or record)
    raise Busy()


def listing(resource_id: str, limit: int, cursor_text: str | None) -> ReviewList:
    """Visible reviews, newest first: one Query."""
    scope = f"reviews:{resource_id}"
    results = store.reviews_page(resource_id, limit, cursor.decode(cursor_text, scope))
    items, position = db.page(results)
    return ReviewList(items=[out(r) for r in items], next_cursor=cursor.encode(position, scope))


def set_visible(record: ReviewRecord, visible: bool, extra: Any = None) -> bool:
    """Hide a visible review or show a hidden one (its rating out of or back into the
    counters), under the version read, with `extra(tx)` in the same transaction. False when
    it is so already or changed meanwhile."""
    if (record.status == "visible") == visible:
        return False
    rating = int(record.rating)
    if visible:
        actions = [ReviewRecord.status.set("visible"),
                   ReviewRecord.gsi1pk.set(ReviewRecord.listing(record.resource_id)),
                   ReviewRecord.gsi1sk.set(f"{record.created_at}#{record.review_id}")]
    else:
        actions = [ReviewRecord.status.set("hidden"), ReviewRecord.gsi1pk.remove(),
                   ReviewRecord.gsi1sk.remove()]
    done = _write(record, actions, (rating, 1) if visible else (-rating, -1), extra)
    if done:
        catalog.rating_changed(record.resource_id)
    return done
