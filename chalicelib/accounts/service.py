"""Accounts and sessions: registration, login with throttling, refresh-token rotation with
family revocation, logout, password reset, profile, creator requests and admin management.

Functions take primitives and return records or schema objects; they never see HTTP. Every
write that depends on earlier state carries a condition or runs in a transaction.
"""
from __future__ import annotations

import re
import time
import unicodedata
import uuid
from collections.abc import Callable
from typing import Any

from pynamodb.exceptions import DeleteError, PutError, TransactWriteError, UpdateError

from chalicelib import cursor, db
from chalicelib.accounts import passwords, tokens
from chalicelib.accounts.schemas import TokenPair, UserList, UserOut
from chalicelib.accounts.sessions import AccountDisabled
from chalicelib.accounts.store import (
    EmailClaim,
    LoginThrottle,
    RefreshTokenRecord,
    ResetTokenRecord,
    TokenFamily,
    UserRecord,
    get,
)
from chalicelib.config import settings
from chalicelib.errors import (
    Conflict,
    Invalid,
    NotFound,
    Refused,
    Throttled,
    Unauthenticated,
    ValidationFailed,
)
from chalicelib.observability import logger, metrics

PENDING_CREATORS = "CREATOR#pending"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")


class EmailTaken(Conflict):
    code = "email_taken"
    message = "An account with this email already exists."


class InvalidCredentials(Unauthenticated):
    code = "invalid_credentials"
    message = "The email or password is wrong."


class InvalidRefreshToken(Unauthenticated):
    code = "invalid_refresh_token"
    message = "The refresh token is invalid, expired or revoked."


class InvalidResetToken(Invalid):
    code = "invalid_reset_token"
    message = "The reset link is invalid, expired or already used."


# ---------------------------------------------------------------- helpers

def normalise_email(raw: str) -> str:
    """NFKC, trimmed, lower-cased; refused unless it looks like an address."""
    email = unicodedata.normalize("NFKC", raw).strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise ValidationFailed("The email address is not valid.", code="invalid_email",
                               details={"fields": {"email": "not a valid address"}})
    return email


def _clean_name(raw: str) -> str:
    name = unicodedata.normalize("NFKC", raw).strip()
    if not name or any(unicodedata.category(ch).startswith("C") for ch in name):
        raise ValidationFailed("The display name is empty or has control characters.",
                               details={"fields": {"display_name": "invalid"}})
    return name


def user_out(user: UserRecord) -> UserOut:
    return UserOut(id=user.user_id, email=user.email, display_name=user.display_name,
                   roles=sorted(user.roles), status=user.status,
                   creator_status=user.creator_status, created_at=user.created_at)


def _load_user(user_id: str) -> UserRecord:
    user = get(UserRecord, UserRecord.key(user_id), "PROFILE")
    if user is None:
        raise NotFound("No such user.", code="user_not_found")
    return user


def _mutate(user_id: str, change: Callable[[UserRecord], list]) -> UserRecord:
    """Apply `change` to the user under optimistic concurrency (see db.mutate)."""
    def stamped(user: UserRecord) -> list:
        actions = change(user)
        return [*actions, UserRecord.updated_at.set(db.now_iso())] if actions else []

    return db.mutate(lambda: _load_user(user_id), stamped,
                     Conflict("The account changed concurrently; try again.",
                              code="concurrent_update"))


# ---------------------------------------------------------------- registration

def register(email: str, password: str, display_name: str,
             roles: frozenset[str] = frozenset({"buyer"})) -> UserRecord:
    """Create an account; the email is claimed in the same transaction (409 when taken)."""
    email = normalise_email(email)
    passwords.check_policy(password, email)
    now = db.now_iso()
    user_id = uuid.uuid4().hex
    user = UserRecord(pk=UserRecord.key(user_id), user_id=user_id, email=email,
                      display_name=_clean_name(display_name), roles=set(roles),
                      password_hash=passwords.hash_password(password), created_at=now,
                      updated_at=now, gsi1sk=f"{now}#{user_id}",
                      creator_status="approved" if "creator" in roles else "none")
    try:
        with db.transaction() as tx:
            tx.save(EmailClaim(pk=EmailClaim.key(email), user_id=user_id),
                    condition=EmailClaim.pk.does_not_exist())
            tx.save(user, condition=UserRecord.pk.does_not_exist())
    except TransactWriteError as exc:
        if "ConditionalCheckFailed" in db.cancellation_codes(exc):
            raise EmailTaken(details={"fields": {"email": "taken"}}) from None
        raise
    user.version = 1
    metrics.add_metric(name="Signups", unit="Count", value=1)
    from chalicelib.analytics import events

    events.publish("signups")
    return user


# ---------------------------------------------------------------- login and sessions

def _throttle_state(email: str, now: float) -> int:
    """Seconds until login is allowed again for `email` (0 when allowed)."""
    cfg = settings()
    rec = get(LoginThrottle, LoginThrottle.key(email), "THROTTLE")
    if rec is None or rec.window_start + cfg.login_window_seconds <= now:
        return 0
    if rec.failures >= cfg.login_max_failures:
        return int(rec.window_start + cfg.login_window_seconds - now) + 1
    return 0


def _record_failure(email: str, now: float) -> None:
    """Count a failed login in the current window, or open a new window."""
    cfg = settings()
    window = cfg.login_window_seconds
    key = LoginThrottle.key(email)
    for _ in range(4):
        try:
            LoginThrottle(pk=key).update(
                actions=[LoginThrottle.failures.add(1)],
                condition=LoginThrottle.window_start > int(now) - window)
            return
        except UpdateError as exc:
            if not db.is_condition_failure(exc):
                raise
        try:
            LoginThrottle(pk=key, failures=1, window_start=int(now),
                          expires_at=int(now) + window + 60).save(
                condition=LoginThrottle.pk.does_not_exist()
                | (LoginThrottle.window_start <= int(now) - window))
            return
        except PutError as exc:
            if not db.is_condition_failure(exc):
                raise
    logger.warning("login failure not recorded under contention")


def _start_session(user: UserRecord) -> TokenPair:
    cfg = settings()
    now = int(time.time())
    expires = now + cfg.refresh_token_days * 86400
    family_id = uuid.uuid4().hex
    refresh = tokens.new_opaque_token()
    with db.transaction() as tx:
        tx.save(TokenFamily(pk=TokenFamily.key(family_id), user_id=user.user_id,
                            epoch=user.session_epoch, created_at=db.now_iso(), expires_at=expires),
                condition=TokenFamily.pk.does_not_exist())
        tx.save(RefreshTokenRecord(pk=RefreshTokenRecord.key(tokens.digest(refresh)),
                                   user_id=user.user_id, family_id=family_id,
                                   created_at=db.now_iso(), expires_at=expires),
                condition=RefreshTokenRecord.pk.does_not_exist())
    access, ttl = tokens.issue_access_token(user.user_id, user.roles, user.session_epoch)
    return TokenPair(access_token=access, refresh_token=refresh, expires_in=ttl)


def login(email: str, password: str) -> TokenPair:
    """Check the password and open a session. After too many failures in the window, 429
    for that email whether or not an account has it."""
    now = time.time()
    try:
        email = normalise_email(email)
    except ValidationFailed:
        raise InvalidCredentials() from None
    wait = _throttle_state(email, now)
    if wait:
        metrics.add_metric(name="LoginThrottled", unit="Count", value=1)
        raise Throttled(wait, "Too many failed logins; try again later.", code="login_throttled")
    claim = get(EmailClaim, EmailClaim.key(email), "EMAIL")
    user = get(UserRecord, UserRecord.key(claim.user_id), "PROFILE") if claim else None
    if not passwords.verify_password(user.password_hash if user else None, password):
        _record_failure(email, now)
        metrics.add_metric(name="LoginFailures", unit="Count", value=1)
        raise InvalidCredentials()
    assert user is not None
    if user.status != "active":
        raise AccountDisabled()
    try:
        LoginThrottle(pk=LoginThrottle.key(email)).delete()
    except DeleteError:
        logger.warning("login throttle not cleared")
    if passwords.needs_rehash(user.password_hash):
        _mutate(user.user_id, lambda u: [UserRecord.password_hash.set(
            passwords.hash_password(password))])
    return _start_session(user)


def _revoke_family(family_id: str) -> None:
    try:
        TokenFamily(pk=TokenFamily.key(family_id)).update(
            actions=[TokenFamily.revoked.set(True)], condition=TokenFamily.pk.exists())
    except UpdateError as exc:
        if not db.is_condition_failure(exc):
            raise


def refresh(refresh_token: str) -> TokenPair:
    """Rotate a refresh token: the presented one dies, a new pair is returned. Presenting a
    token that was already rotated revokes its whole family (it has leaked)."""
    now = int(time.time())
    rec = get(RefreshTokenRecord, RefreshTokenRecord.key(tokens.digest(refresh_token)), "RT")
    if rec is None or rec.expires_at <= now:
        raise InvalidRefreshToken()
    if rec.state != "active":
        _revoke_family(rec.family_id)
        logger.warning("refresh token re-used; family revoked", extra={"user_id": rec.user_id})
        metrics.add_metric(name="RefreshTokenReuse", unit="Count", value=1)
        raise InvalidRefreshToken(code="refresh_token_reused")
    family = get(TokenFamily, TokenFamily.key(rec.family_id), "FAM")
    user = get(UserRecord, UserRecord.key(rec.user_id), "PROFILE")
    if (family is None or family.revoked or user is None or user.status != "active"
            or family.epoch != user.session_epoch):
        raise InvalidRefreshToken()
    new_token = tokens.new_opaque_token()
    try:
        with db.transaction() as tx:
            tx.update(rec, actions=[RefreshTokenRecord.state.set("used")],
                      condition=RefreshTokenRecord.state == "active")
            tx.condition_check(TokenFamily, family.pk, family.sk,
                               condition=TokenFamily.revoked == False)  # noqa: E712
            tx.condition_check(UserRecord, user.pk, user.sk,
                               condition=(UserRecord.session_epoch == family.epoch)
                               & (UserRecord.status == "active"))
            tx.save(RefreshTokenRecord(pk=RefreshTokenRecord.key(tokens.digest(new_token)),
                                       user_id=user.user_id, family_id=family.pk[4:],
                                       created_at=db.now_iso(), expires_at=rec.expires_at),
                    condition=RefreshTokenRecord.pk.does_not_exist())
    except TransactWriteError as exc:
        codes = db.cancellation_codes(exc)
        if codes[:1] == ["ConditionalCheckFailed"]:
            # Another request rotated this token first: the same token used twice.
            _revoke_family(rec.family_id)
            raise InvalidRefreshToken(code="refresh_token_reused") from None
        if "ConditionalCheckFailed" in codes:
            raise InvalidRefreshToken() from None
        raise
    access, ttl = tokens.issue_access_token(user.user_id, user.roles, user.session_epoch)
    return TokenPair(access_token=access, refresh_token=new_token, expires_in=ttl)


def logout(user_id: str, refresh_token: str) -> None:
    """End the session the refresh token belongs to, if it is the caller's. Idempotent."""
    rec = get(RefreshTokenRecord, RefreshTokenRecord.key(tokens.digest(refresh_token)), "RT")
    if rec is None or rec.user_id != user_id:
        return
    try:
        TokenFamily(pk=TokenFamily.key(rec.family_id)).update(
            actions=[TokenFamily.revoked.set(True)], condition=TokenFamily.user_id == user_id)
    except UpdateError as exc:
        if not db.is_condition_failure(exc):
            raise


# ---------------------------------------------------------------- password reset

def forgot_password(email: str) -> None:
    """Mail a single-use reset link when the account exists; silent otherwise."""
    try:
        email = normalise_email(email)
    except ValidationFailed:
        return
    claim = get(EmailClaim, EmailClaim.key(email), "EMAIL")
    user = get(UserRecord, UserRecord.key(claim.user_id), "PROFILE") if claim else None
    if user is None or user.status != "active":
        return
    cfg = settings()
    token = tokens.new_opaque_token()
    minutes = cfg.reset_token_minutes
    ResetTokenRecord(pk=ResetTokenRecord.key(tokens.digest(token)), user_id=user.user_id,
                     expires_at=int(time.time()) + minutes * 60).save(
        condition=ResetTokenRecord.pk.does_not_exist())
    from chalicelib import mail

    link = f"{cfg.storefront_url}/reset-password?token={token}"
    mail.send(user.email, "Reset your password",
              f"Hello {user.display_name},\n\nSomeone asked to reset the password of this "
              f"account. To choose a new one, open this link within {minutes} minutes:\n\n"
              f"{link}\n\nReset token: {token}\n\nIf it was not you, ignore this email.\n")


def reset_password(token: str, new_password: str) -> None:
    """Set a new password with a reset token: the token is consumed and every session ends."""
    now = int(time.time())
    rec = get(ResetTokenRecord, ResetTokenRecord.key(tokens.digest(token)), "RESET")
    if rec is None or rec.expires_at <= now:
        raise InvalidResetToken(details={"fields": {"token": "invalid or expired"}})
    user = _load_user(rec.user_id)
    passwords.check_policy(new_password, user.email)
    try:
        with db.transaction() as tx:
            tx.delete(rec, condition=ResetTokenRecord.expires_at > now)
            tx.update(user, actions=[
                UserRecord.password_hash.set(passwords.hash_password(new_password)),
                UserRecord.session_epoch.add(1),
                UserRecord.updated_at.set(db.now_iso())])
    except TransactWriteError as exc:
        codes = db.cancellation_codes(exc)
        if codes[:1] == ["ConditionalCheckFailed"]:
            raise InvalidResetToken(details={"fields": {"token": "already used"}}) from None
        if "ConditionalCheckFailed" in codes:
            raise Conflict("The account changed concurrently; try again.",
                           code="concurrent_update") from None
        raise


def change_password(user_id: str, current_password: str, new_password: str) -> TokenPair:
    """Change the password knowing the current one; other sessions end, this one goes on
    with the returned pair."""
    user = _load_user(user_id)
    if not passwords.verify_password(user.password_hash, current_password):
        raise ValidationFailed("The current password is wrong.", code="wrong_password",
                               details={"fields": {"current_password": "wrong"}})
    passwords.check_policy(new_password, user.email)
    new_hash = passwords.hash_password(new_password)
    user = _mutate(user_id, lambda u: [UserRecord.password_hash.set(new_hash),
                                       UserRecord.session_epoch.add(1)])
    return _start_session(_load_user(user_id))


# ---------------------------------------------------------------- profile and roles

def get_user(user_id: str) -> UserRecord:
    return _load_user(user_id)


def update_profile(user_id: str, display_name: str | None) -> UserRecord:
    def change(user: UserRecord) -> list:
        if display_name is None or display_name == user.display_name:
            return []
        return [UserRecord.display_name.set(_clean_name(display_name))]

    _mutate(user_id, change)
    return _load_user(user_id)


def request_creator(user_id: str) -> tuple[UserRecord, bool]:
    """Ask for the creator role: granted at once when auto-approval is on, otherwise queued
    for an admin. Returns the user and whether the role is held now."""
    auto = settings().creator_auto_approve

    def change(user: UserRecord) -> list:
        if "creator" in user.roles:
            return []
        if auto:
            return [UserRecord.roles.add({"creator"}), UserRecord.creator_status.set("approved"),
                    UserRecord.gsi2pk.remove(), UserRecord.gsi2sk.remove()]
        if user.creator_status == "pending":
            return []
        return [UserRecord.creator_status.set("pending"), UserRecord.gsi2pk.set(PENDING_CREATORS),
                UserRecord.gsi2sk.set(f"{db.now_iso()}#{user.user_id}")]

    _mutate(user_id, change)
    user = _load_user(user_id)
    return user, "creator" in user.roles


def list_users(limit: int, cursor_text: str | None, creator_status: str | None,
               email: str | None) -> UserList:
    """Admin listing: by exact email, pending creator requests (oldest first), or all users
    newest first. One Query (or two GetItems for an email)."""
    if email:
        claim = get(EmailClaim, EmailClaim.key(normalise_email(email)), "EMAIL")
        user = get(UserRecord, UserRecord.key(claim.user_id), "PROFILE") if claim else None
        return UserList(items=[user_out(user)] if user else [], next_cursor=None)
    scope = f"admin-users:{creator_status or 'all'}"
    start = cursor.decode(cursor_text, scope)
    if creator_status == "pending":
        results = UserRecord.by_creator_status.query(PENDING_CREATORS, limit=limit,
                                                     last_evaluated_key=start)
    else:
        results = UserRecord.by_creation.query("USERS", scan_index_forward=False, limit=limit,
                                               last_evaluated_key=start)
    items, position = db.page(results)
    return UserList(items=[user_out(u) for u in items],
                    next_cursor=cursor.encode(position, scope))


def admin_update_user(admin_id: str, user_id: str, roles: list[str] | None,
                      status: str | None, creator_status: str | None) -> UserRecord:
    """Change a user's roles, status or creator request. An admin cannot demote or disable
    themself (the platform must keep an admin). Removing a role or disabling ends sessions."""
    if user_id == admin_id and ((roles is not None and "admin" not in roles)
                                or status == "disabled"):
        raise Refused("You cannot remove your own admin role or disable yourself.",
                      code="self_lockout")

    def change(user: UserRecord) -> list[Any]:
        actions: list[Any] = []
        end_sessions = False
        if roles is not None:
            wanted = set(roles) | {"buyer"}
            if wanted != set(user.roles):
                end_sessions = bool(set(user.roles) - wanted)
                actions.append(UserRecord.roles.set(wanted))
                if "creator" in wanted:
                    actions += [UserRecord.creator_status.set("approved"),
                                UserRecord.gsi2pk.remove(), UserRecord.gsi2sk.remove()]
                elif "creator" in user.roles:
                    actions.append(UserRecord.creator_status.set("none"))
        if creator_status == "rejected" and user.creator_status == "pending" and (
                roles is None or "creator" not in roles):
            actions += [UserRecord.creator_status.set("rejected"),
                        UserRecord.gsi2pk.remove(), UserRecord.gsi2sk.remove()]
        if status is not None and status != user.status:
            actions.append(UserRecord.status.set(status))
            end_sessions = end_sessions or status == "disabled"
        if end_sessions:
            actions.append(UserRecord.session_epoch.add(1))
        return actions

    _mutate(user_id, change)
    logger.info("admin changed user", extra={"admin_id": admin_id, "user_id": user_id,
                                             "roles": roles, "status": status})
    return _load_user(user_id)


def ensure_admin(email: str, password: str, display_name: str) -> UserRecord:
    """Create the admin account if missing, or make the existing account an admin
    (local seeding and first-deployment bootstrap)."""
    try:
        return register(email, password, display_name, frozenset({"buyer", "admin"}))
    except EmailTaken:
        claim = get(EmailClaim, EmailClaim.key(normalise_email(email)), "EMAIL")
        return _mutate(claim.user_id, lambda u: [] if "admin" in u.roles
                       else [UserRecord.roles.add({"admin"})])
