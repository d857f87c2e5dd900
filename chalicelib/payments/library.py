"""What a buyer owns, and delivery: a short-lived presigned GET of the current file version.
The access check and the file lookup are one BatchGetItem; counting the download against the
optional cap and logging it for anti-piracy review is one transaction. What the catalog holds
(cards, the live file, the cap) comes from its service as plain values."""
from __future__ import annotations

import time

from pynamodb.exceptions import TransactWriteError

from chalicelib import cursor, db
from chalicelib.analytics import events as analytics
from chalicelib.catalog import public
from chalicelib.config import settings
from chalicelib.errors import Forbidden, NotFound, Throttled
from chalicelib.memberships import public as memberships
from chalicelib.payments.schemas import DownloadOut, LibraryItem, LibraryList
from chalicelib.payments.states import Access
from chalicelib.payments.store import DownloadLog, Entitlement
from chalicelib.uploads import presign

LOG_DAYS = 400


def library(user_id: str, limit: int, cursor_text: str | None,
            source: str = "purchases") -> LibraryList:
    """Resources the user may download (and ones suspended by a dispute). One Query and one
    BatchGetItem for the page's resources. `source=membership`: the members-only resources
    the user's membership opens (one GetItem and one Query; none once it lapsed)."""
    if source == "membership":
        return _membership_library(user_id, limit, cursor_text)
    scope = f"library:{user_id}"
    results = Entitlement.query(Entitlement.key(user_id), limit=limit,
                                last_evaluated_key=cursor.decode(cursor_text, scope),
                                filter_condition=Entitlement.status != Access.REVOKED)
    entitlements, position = db.page(results)
    cards = public.cards([e.resource_id for e in entitlements])
    items = [LibraryItem(resource=cards[e.resource_id], source=e.source,
                         status=e.status, order_id=e.order_id, granted_at=e.granted_at,
                         downloads=int(e.downloads))
             for e in entitlements if e.resource_id in cards]
    return LibraryList(items=items, next_cursor=cursor.encode(position, scope))


def _membership_library(user_id: str, limit: int, cursor_text: str | None) -> LibraryList:
    [found] = db.batch_read(memberships.read(user_id))
    level = memberships.benefits_in(found, db.now_iso()).level
    if level < 1:
        return LibraryList(items=[], next_cursor=None)
    page = public.members_catalog(limit, cursor_text)
    since = memberships.started_in(found)
    return LibraryList(items=[LibraryItem(resource=card, source="membership",
                                          status=Access.ACTIVE, order_id=None,
                                          granted_at=since, downloads=0)
                              for card in page.items if card.member_level <= level],
                       next_cursor=page.next_cursor)


def download(user_id: str, resource_id: str, source_ip: str | None) -> DownloadOut:
    """A presigned GET of the resource's current file for an entitled user, or for a member
    while the membership lasts (members-only resources)."""
    now_iso = db.now_iso()
    held, resources, membership = db.batch_read(
        Entitlement.read(user_id, [resource_id]), public.resources_read([resource_id]),
        memberships.read(user_id))
    ent, delivery = Entitlement.first_in(held), public.delivery_in(resources)
    if (ent is None or ent.status == Access.REVOKED) and delivery is not None and \
            delivery.members_only and \
            memberships.benefits_in(membership, now_iso).level >= delivery.member_level:
        return _deliver(user_id, resource_id, delivery, source_ip, None, now_iso)
    if ent is None or delivery is None:
        raise NotFound("You have no access to this resource.", code="not_entitled")
    if ent.status == Access.REVOKED:
        raise NotFound("You have no access to this resource.", code="not_entitled")
    if ent.status == Access.SUSPENDED:
        raise Forbidden("Access is suspended while a payment dispute is open.",
                        code="access_suspended")
    return _deliver(user_id, resource_id, delivery, source_ip, ent, now_iso)


def _deliver(user_id: str, resource_id: str, delivery: public.Delivery,
             source_ip: str | None, ent: Entitlement | None, now_iso: str) -> DownloadOut:
    """Count and log the download (an entitlement's, against its cap; a member's, under the
    condition that the membership still opens it), then sign the link."""
    cfg = settings()
    live = delivery.file
    if live is None:
        raise NotFound("The resource has no file to download.", code="no_file")
    cap = delivery.download_cap
    now = int(time.time())
    try:
        with db.transaction() as tx:
            if ent is None:
                memberships.add_access_check(tx, user_id, delivery.member_level, now_iso)
            else:
                condition = Entitlement.status == Access.ACTIVE
                if cap:
                    condition &= Entitlement.downloads < cap
                tx.update(ent, actions=[Entitlement.downloads.add(1)], condition=condition)
            tx.save(DownloadLog(pk=DownloadLog.key(user_id, resource_id),
                                sk=DownloadLog.sort_key(db.now_iso()),
                                source_ip=source_ip, file_version=live.version,
                                expires_at=now + LOG_DAYS * 86400))
    except TransactWriteError as exc:
        if db.cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
            if ent is None:
                raise NotFound("You have no access to this resource.",
                               code="not_entitled") from None
            raise Throttled(24 * 3600, f"The download limit of {cap} is reached.",
                            code="download_limit_reached") from None
        raise
    analytics.track("download.made", resource_id=resource_id, creator_id=delivery.creator_id,
                    category=delivery.category, viewer=user_id)
    seconds = cfg.download_url_seconds
    url = presign.get_url(cfg.uploads_bucket, live.key, seconds, filename=live.filename,
                          version_id=live.version_id)
    return DownloadOut(url=url, expires_at=presign.expiry(seconds), filename=live.filename,
                       version=live.version)


def owned_read(user_id: str, resource_ids: list[str]) -> db.Read:
    """The part of another context's `db.batch_read` that reads whether the user owns these
    resources (their entitlements' sort key and status only)."""
    return Entitlement.read(user_id, resource_ids, status_only=True)


def owned_in(items: list[dict]) -> set[str]:
    """The resources an `owned_read` part found the user entitled to (active, or held back
    while a dispute is open: still theirs)."""
    prefix = len(Entitlement.sort_key(""))
    return {item["sk"]["S"][prefix:] for item in items
            if item.get("status", {}).get("S") in (Access.ACTIVE, Access.SUSPENDED)}


def add_ownership_check(tx, user_id: str, resource_id: str) -> None:
    """In an open `db.transaction()` of another context: the user holds an active
    entitlement of the resource (bought and not refunded, or claimed free), so what the
    transaction writes cannot outlive a refund that raced it."""
    tx.condition_check(Entitlement, Entitlement.key(user_id), Entitlement.sort_key(resource_id),
                       condition=Entitlement.status == Access.ACTIVE)
