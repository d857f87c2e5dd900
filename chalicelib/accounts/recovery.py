"""Passwords an account holder changes: the forgotten-password mail with a single-use reset
token, the reset itself, and the change knowing the current password. Each ends every other
session (the user's session epoch moves on)."""
from __future__ import annotations

import time

from chalicelib.accounts import authentication, passwords, profiles, store, tokens
from chalicelib.accounts.schemas import TokenPair
from chalicelib.accounts.store import UserRecord
from chalicelib.config import settings
from chalicelib.errors import Conflict, Forbidden, Unauthenticated, ValidationFailed


class InvalidResetToken(Unauthenticated):
    # The reset token is the credential of the reset: unknown, expired or used is a 401.
    code = "invalid_reset_token"
    message = "The reset link is invalid, expired or already used."


class WrongPassword(Forbidden):
    # The request is well formed and authenticated; knowing the password is what is missing.
    code = "wrong_password"
    message = "The current password is wrong."


def forgot_password(email: str) -> None:
    """Mail a single-use reset link when the account exists; silent otherwise."""
    try:
        email = profiles.normalise_email(email)
    except ValidationFailed:
        return
    user = store.user_by_email(email)
    if user is None or user.status != "active":
        return
    cfg = settings()
    token = tokens.new_opaque_token()
    minutes = cfg.reset_token_minutes
    store.save_reset_token(tokens.digest(token), user.user_id, int(time.time()) + minutes * 60)
    from chalicelib import mail

    link = f"{cfg.storefront_url}/reset-password?token={token}"
    mail.send(user.email, "Reset your password",
              f"Hello {user.display_name},\n\nSomeone asked to reset the password of this "
              f"account. To choose a new one, open this link within {minutes} minutes:\n\n"
              f"{link}\n\nReset token: {token}\n\nIf it was not you, ignore this email.\n")


def reset_password(token: str, new_password: str) -> None:
    """Set a new password with a reset token: the token is consumed and every session ends."""
    now = int(time.time())
    rec = store.reset_token(tokens.digest(token))
    if rec is None or rec.expires_at <= now:
        raise InvalidResetToken(details={"fields": {"token": "invalid or expired"}})
    user = profiles.get_user(rec.user_id)
    passwords.check_policy(new_password, user.email)
    outcome = store.consume_reset_token(rec, user, passwords.hash_password(new_password), now)
    if outcome == store.TOKEN_USED:
        raise InvalidResetToken(details={"fields": {"token": "already used"}})
    if outcome == store.USER_CHANGED:
        raise Conflict("The account changed concurrently; try again.", code="concurrent_update")


def change_password(user_id: str, current_password: str, new_password: str) -> TokenPair:
    """Change the password knowing the current one; other sessions end, this one goes on
    with the returned pair."""
    user = profiles.get_user(user_id)
    if not passwords.verify_password(user.password_hash, current_password):
        raise WrongPassword(details={"fields": {"current_password": "wrong"}})
    passwords.check_policy(new_password, user.email)
    new_hash = passwords.hash_password(new_password)
    profiles.change(user_id, lambda u: [UserRecord.password_hash.set(new_hash),
                                        UserRecord.session_epoch.add(1)])
    return authentication.start_session(profiles.get_user(user_id))
