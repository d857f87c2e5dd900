"""Authentication: login with per-email throttling, refresh-token rotation with family
revocation on re-use, logout. A session is a token family; each refresh uses up one
single-use refresh token and issues the next."""
from __future__ import annotations

import time
import uuid

from chalicelib.accounts import passwords, profiles, store, tokens
from chalicelib.accounts.schemas import TokenPair
from chalicelib.accounts.sessions import AccountDisabled
from chalicelib.accounts.store import UserRecord
from chalicelib.config import settings
from chalicelib.errors import Throttled, Unauthenticated, ValidationFailed
from chalicelib.observability import logger, metrics


class InvalidCredentials(Unauthenticated):
    code = "invalid_credentials"
    message = "The email or password is wrong."


class InvalidRefreshToken(Unauthenticated):
    code = "invalid_refresh_token"
    message = "The refresh token is invalid, expired or revoked."


def _throttle_wait(email: str, now: float) -> int:
    """Seconds until login is allowed again for `email` (0 when allowed)."""
    cfg = settings()
    rec = store.login_throttle(email)
    if rec is None or rec.window_start + cfg.login_window_seconds <= now:
        return 0
    if rec.failures >= cfg.login_max_failures:
        return int(rec.window_start + cfg.login_window_seconds - now) + 1
    return 0


def start_session(user: UserRecord) -> TokenPair:
    """Open a new session (token family) for `user` at their current epoch: its first
    refresh token and an access token."""
    now = int(time.time())
    refresh_token = tokens.new_opaque_token()
    store.open_session(user.user_id, user.session_epoch, uuid.uuid4().hex,
                       tokens.digest(refresh_token),
                       now + settings().refresh_token_days * 86400)
    access, ttl = tokens.issue_access_token(user.user_id, user.roles, user.session_epoch)
    return TokenPair(access_token=access, refresh_token=refresh_token, expires_in=ttl)


def login(email: str, password: str) -> TokenPair:
    """Check the password and open a session. After too many failures in the window, 429
    for that email whether or not an account has it."""
    now = time.time()
    try:
        email = profiles.normalise_email(email)
    except ValidationFailed:
        raise InvalidCredentials() from None
    wait = _throttle_wait(email, now)
    if wait:
        metrics.add_metric(name="LoginThrottled", unit="Count", value=1)
        raise Throttled(wait, "Too many failed logins; try again later.", code="login_throttled")
    user = store.user_by_email(email)
    if not passwords.verify_password(user.password_hash if user else None, password):
        if not store.count_login_failure(email, int(now), settings().login_window_seconds):
            logger.warning("login failure not recorded under contention")
        metrics.add_metric(name="LoginFailures", unit="Count", value=1)
        raise InvalidCredentials()
    assert user is not None
    if user.status != "active":
        raise AccountDisabled()
    store.clear_login_throttle(email)
    if passwords.needs_rehash(user.password_hash):
        profiles.change(user.user_id, lambda u: [UserRecord.password_hash.set(
            passwords.hash_password(password))])
    return start_session(user)


def refresh(refresh_token: str) -> TokenPair:
    """Rotate a refresh token: the presented one dies, a new pair is returned. Presenting a
    token that was already rotated revokes its whole family (it has leaked)."""
    now = int(time.time())
    rec = store.refresh_token(tokens.digest(refresh_token))
    if rec is None or rec.expires_at <= now:
        raise InvalidRefreshToken()
    if rec.state != "active":
        store.revoke_family(rec.family_id)
        logger.warning("refresh token re-used; family revoked", extra={"user_id": rec.user_id})
        metrics.add_metric(name="RefreshTokenReuse", unit="Count", value=1)
        raise InvalidRefreshToken(code="refresh_token_reused")
    family = store.token_family(rec.family_id)
    user = store.user(rec.user_id)
    if (family is None or family.revoked or user is None or user.status != "active"
            or family.epoch != user.session_epoch):
        raise InvalidRefreshToken()
    new_token = tokens.new_opaque_token()
    outcome = store.rotate_refresh_token(rec, family, user, tokens.digest(new_token))
    if outcome == store.ALREADY_ROTATED:
        # Another request rotated this token first: the same token used twice.
        store.revoke_family(rec.family_id)
        raise InvalidRefreshToken(code="refresh_token_reused")
    if outcome == store.SESSION_ENDED:
        raise InvalidRefreshToken()
    access, ttl = tokens.issue_access_token(user.user_id, user.roles, user.session_epoch)
    return TokenPair(access_token=access, refresh_token=new_token, expires_in=ttl)


def logout(user_id: str, refresh_token: str) -> None:
    """End the session the refresh token belongs to, if it is the caller's. Idempotent."""
    rec = store.refresh_token(tokens.digest(refresh_token))
    if rec is None or rec.user_id != user_id:
        return
    store.revoke_family(rec.family_id, owner=user_id)
