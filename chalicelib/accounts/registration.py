"""Registration: a new account with its email claimed in the same transaction, and the
bootstrap of the first admin."""
from __future__ import annotations

import uuid

from chalicelib import db
from chalicelib.accounts import passwords, profiles, store
from chalicelib.accounts.store import UserRecord
from chalicelib.errors import Conflict
from chalicelib.observability import metrics


class EmailTaken(Conflict):
    code = "email_taken"
    message = "An account with this email already exists."


def register(email: str, password: str, display_name: str,
             roles: frozenset[str] = frozenset({"buyer"})) -> UserRecord:
    """Create an account; the email is claimed in the same transaction (409 when taken)."""
    email = profiles.normalise_email(email)
    passwords.check_policy(password, email)
    try:
        user = store.insert_user(
            uuid.uuid4().hex, email, profiles.clean_name(display_name), set(roles),
            passwords.hash_password(password),
            "approved" if "creator" in roles else "none", db.now_iso())
    except store.EmailAlreadyClaimed:
        raise EmailTaken(details={"fields": {"email": "taken"}}) from None
    metrics.add_metric(name="Signups", unit="Count", value=1)
    from chalicelib.analytics import events

    events.track("user.registered", viewer=user.user_id)
    return user


def ensure_admin(email: str, password: str, display_name: str) -> UserRecord:
    """Create the admin account if missing, or make the existing account an admin
    (local seeding and first-deployment bootstrap)."""
    try:
        return register(email, password, display_name, frozenset({"buyer", "admin"}))
    except EmailTaken:
        user_id = store.claimed_user_id(profiles.normalise_email(email))
        assert user_id is not None  # the claim just refused the registration
        return profiles.change(user_id, lambda u: [] if "admin" in u.roles
                               else [UserRecord.roles.add({"admin"})])
