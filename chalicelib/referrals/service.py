"""Referral codes, attribution, a referrer's page and share links. Every user has a code
(derived from their id with the platform's key, stored on first ask so it is never anyone
else's); a visit by a referral link attributes the visitor's purchases to its owner for 30
days, the last link visited winning; self-referral and loops (A, referred by B, referring B)
are refused. The rewards themselves are `referrals.rewards`, from the payments' events."""
from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from pynamodb.exceptions import PutError, TransactWriteError

from chalicelib import cursor, db, vault
from chalicelib.catalog.schemas import stored_price
from chalicelib.config import settings
from chalicelib.errors import Conflict, NotFound, Refused
from chalicelib.referrals import store
from chalicelib.referrals.schemas import (
    AttributionOut,
    CommissionTotal,
    OpenGraph,
    ReferralOut,
    RewardOut,
    RewardTerms,
    ShareOut,
)
from chalicelib.referrals.store import AttributionRecord, CodeRecord, ReferredByRecord

ATTRIBUTION_DAYS = 30
# A visit the storefront kept may be stamped by a clock a little ahead of ours.
CLOCK_SKEW = timedelta(minutes=5)
CODE_LENGTH = 8
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CURRENCIES = ("cny", "usd", "eur", "gbp")
_FAILED = "ConditionalCheckFailed"


class CodeNotFound(NotFound):
    code = "referral_code_not_found"
    message = "No such referral code."


class SelfReferral(Refused):
    code = "self_referral"
    message = "Your own referral link does not refer you."


class ReferralLoop(Refused):
    code = "referral_loop"
    message = "You were referred by this user; they cannot be referred by you."


class ReferralExpired(Refused):
    code = "referral_expired"
    message = "That visit is more than 30 days old (or in the future)."


class CodeUnavailable(Conflict):
    code = "referral_code_unavailable"
    message = "No referral code could be assigned; try again."


def _candidate(user_id: str, n: int) -> str:
    text = vault.load()["cursor_key"]
    key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    digest = hmac.new(key, f"referral:{user_id}:{n}".encode(), hashlib.sha256).digest()
    number = int.from_bytes(digest[:5], "big")  # 40 bits: 8 letters of 5 bits
    return "".join(CROCKFORD[(number >> (5 * i)) & 31] for i in reversed(range(CODE_LENGTH)))


def code_of(user_id: str) -> str:
    """The user's referral code: the first candidate derived from their id that is theirs
    (one GetItem), or that they can claim (a put, condition absent)."""
    for n in range(4):
        code = _candidate(user_id, n)
        owner = store.code_owner(code)
        if owner is None:
            try:
                CodeRecord(pk=CodeRecord.key(code), code=code, user_id=user_id,
                           at=db.now_iso()).save(condition=CodeRecord.pk.does_not_exist())
                return code
            except PutError as exc:
                if not db.is_condition_failure(exc):
                    raise
                owner = store.code_owner(code)
        if owner is not None and owner.user_id == user_id:
            return code
    raise CodeUnavailable()


def _link(code: str, resource_id: str | None = None) -> str:
    base = settings().storefront_url
    return f"{base}/resources/{resource_id}?ref={code}" if resource_id else f"{base}/?ref={code}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def attribute(user_id: str, code: str, visited_at: str | None,
              resource_id: str | None) -> AttributionOut:
    """Credit the user's purchases for 30 days from `visited_at` (default now) to the owner
    of `code`, unless a later visit is credited already (the last click wins; then that one
    is answered). The user's own code, a loop, a visit over 30 days ago or ahead of the
    clock, and a day the calendar lacks are refused (422)."""
    from chalicelib.accounts import profiles

    code = code.upper()
    owner = store.code_owner(code)
    if owner is None:
        raise CodeNotFound()
    if owner.user_id == user_id:
        raise SelfReferral()
    now = datetime.now(UTC)
    try:
        visited = now if visited_at is None else \
            datetime.fromisoformat(visited_at.replace("Z", "+00:00"))
    except ValueError:
        raise Refused("Not a calendar day.", code="invalid_date") from None
    if visited > now + CLOCK_SKEW or visited < now - timedelta(days=ATTRIBUTION_DAYS):
        raise ReferralExpired(details={"visited_at": visited.isoformat()})
    visited_iso = _iso(min(visited, now))
    expires = visited + timedelta(days=ATTRIBUTION_DAYS)
    record = AttributionRecord(pk=store.user_partition(user_id), referrer_id=owner.user_id,
                               code=code, visited_at=visited_iso, resource_id=resource_id,
                               expires_at=int(expires.timestamp()))
    try:
        with db.transaction() as tx:
            tx.save(record, condition=AttributionRecord.pk.does_not_exist()
                    | (AttributionRecord.visited_at <= visited_iso))
            # The loop check, in the write: the referrer was not referred by this user.
            tx.condition_check(ReferredByRecord, store.user_partition(owner.user_id),
                               store.REFERRED_BY,
                               condition=ReferredByRecord.pk.does_not_exist()
                               | (ReferredByRecord.referrer_id != user_id))
    except TransactWriteError as exc:
        codes = db.cancellation_codes(exc)
        if len(codes) > 1 and codes[1] == _FAILED:
            raise ReferralLoop() from None
        if codes[:1] != [_FAILED]:
            raise
        record = AttributionRecord.get(store.user_partition(user_id), store.ATTR,
                                       consistent_read=True)
        owner_id = record.referrer_id
    else:
        owner_id = owner.user_id
    name = profiles.get_user(owner_id).display_name
    return AttributionOut(code=record.code, referrer_name=name, visited_at=record.visited_at,
                          expires_at=_iso(datetime.fromtimestamp(int(record.expires_at), UTC)))


def terms() -> RewardTerms:
    """What a referrer earns, as configured."""
    cfg = settings()
    if cfg.referral_reward == "points":
        return RewardTerms(kind="points", points=cfg.referral_reward_points,
                           commission_percent=None)
    return RewardTerms(kind="commission", points=None,
                       commission_percent=cfg.referral_commission_bps / 100)


def _reward_out(r: store.RewardRecord) -> RewardOut:
    points = r.kind == "points"
    return RewardOut(order_id=r.order_id, referee_name=r.referee_name,
                     kind="points" if points else "commission",
                     points=int(r.value) if points else None,
                     commission=None if points else stored_price(int(r.value), r.currency),
                     reversed=int(r.reversed), at=r.at)


def mine(user_id: str, limit: int, cursor_text: str | None) -> ReferralOut:
    """The user's code and link, the terms, their totals and newest rewards: the code's
    GetItem and ONE Query (the totals, then the rewards)."""
    code = code_of(user_id)
    scope = f"referral:{user_id}"
    start = cursor.decode(cursor_text, scope)
    items, position = store.page(user_id, limit, start)
    summary = None
    rewards = []
    for item in items:
        if item["sk"]["S"] == store.SUMMARY:
            summary = store.summary_from_raw(item)
        else:
            rewards.append(store.reward_from_raw(item))
    if start:
        summary = store.summary(user_id)
    totals = []
    for currency in CURRENCIES:
        earned = int(getattr(summary, f"commission_{currency}", 0) or 0) if summary else 0
        back = int(getattr(summary, f"reversed_{currency}", 0) or 0) if summary else 0
        if earned or back:
            totals.append(CommissionTotal(earned=stored_price(earned, currency),
                                          reversed=stored_price(back, currency),
                                          net=stored_price(earned - back, currency)))
    return ReferralOut(
        code=code, link=_link(code), terms=terms(),
        referred=int(summary.referred) if summary else 0,
        points_earned=int(summary.points_earned) if summary else 0,
        points_reversed=int(summary.points_reversed) if summary else 0,
        commission=totals, items=[_reward_out(r) for r in rewards[:limit]],
        next_cursor=cursor.encode(position, scope))


def share(user_id: str, resource_id: str) -> ShareOut:
    """A link to a published resource carrying the user's code, with its Open Graph
    preview (title, a plain-text description, the cover)."""
    from chalicelib.catalog import public

    found = public.preview(resource_id)
    code = code_of(user_id)
    url = _link(code, resource_id)
    return ShareOut(url=url, code=code, price=found.price, open_graph=OpenGraph(
        title=found.title, description=found.description, image=found.image, url=url,
        type="product", site_name=settings().app_name))
