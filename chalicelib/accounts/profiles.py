"""Profiles: what an account is called and shows (email, display name, roles), the user's
own changes to it and the request for the creator role. Also the rules every accounts
service shares: how an email and a display name are normalised, and how a profile is read
and changed under optimistic concurrency. For other contexts, the account's email as a part
of their own BatchGetItem (`email_read`, then `email_in`)."""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from chalicelib import db
from chalicelib.accounts import store
from chalicelib.accounts.schemas import (
    DISPLAY_NAME_PATTERN,
    EMAIL_MAX_LENGTH,
    EMAIL_PATTERN,
    UserOut,
)
from chalicelib.accounts.store import UserRecord
from chalicelib.config import settings
from chalicelib.errors import Conflict, NotFound, ValidationFailed

_EMAIL = re.compile(EMAIL_PATTERN)
_DISPLAY_NAME = re.compile(DISPLAY_NAME_PATTERN)


def normalise_email(raw: str) -> str:
    """The account key of an address: NFKC, trimmed, lower-cased. The address is checked as
    sent, by the rule of the `Email` type (requests are decoded with it; this repeats the
    check for callers outside HTTP, such as the seeded admin)."""
    if len(raw) > EMAIL_MAX_LENGTH or not _EMAIL.search(raw):
        raise ValidationFailed("The email address is not valid.", code="invalid_email",
                               details={"fields": {"email": "not a valid address"}})
    return unicodedata.normalize("NFKC", raw).strip().lower()


def clean_name(raw: str) -> str:
    """A display name as stored: NFKC, trimmed; the rule of the `DisplayName` type checked
    as sent (repeated for callers outside HTTP)."""
    if not _DISPLAY_NAME.search(raw):
        raise ValidationFailed("The display name is empty or has control characters.",
                               details={"fields": {"display_name": "invalid"}})
    return unicodedata.normalize("NFKC", raw).strip()


def user_out(user: UserRecord) -> UserOut:
    """The API's view of a profile."""
    return UserOut(id=user.user_id, email=user.email, display_name=user.display_name,
                   roles=sorted(user.roles), status=user.status,
                   creator_status=user.creator_status, created_at=user.created_at)


def get_user(user_id: str) -> UserRecord:
    """The profile of `user_id`; NotFound when there is none."""
    user = store.user(user_id)
    if user is None:
        raise NotFound("No such user.", code="user_not_found")
    return user


def change(user_id: str, actions_for: Callable[[UserRecord], list]) -> UserRecord:
    """Apply the update actions `actions_for` computes from the profile, recomputed on fresh
    state when another writer got there first (see db.mutate)."""
    return store.mutate_user(user_id, actions_for,
                             NotFound("No such user.", code="user_not_found"),
                             Conflict("The account changed concurrently; try again.",
                                      code="concurrent_update"))


def update_profile(user_id: str, display_name: str | None) -> UserRecord:
    """Change the display name (None or the same name: nothing changes)."""
    def actions(user: UserRecord) -> list:
        if display_name is None or display_name == user.display_name:
            return []
        return [UserRecord.display_name.set(clean_name(display_name))]

    change(user_id, actions)
    return get_user(user_id)


def request_creator(user_id: str) -> tuple[UserRecord, bool]:
    """Ask for the creator role: granted at once when auto-approval is on, otherwise queued
    for an admin. Returns the user and whether the role is held now."""
    auto = settings().creator_auto_approve

    def actions(user: UserRecord) -> list:
        if "creator" in user.roles:
            return []
        if auto:
            return [UserRecord.roles.add({"creator"}), UserRecord.creator_status.set("approved"),
                    UserRecord.gsi2pk.remove(), UserRecord.gsi2sk.remove()]
        if user.creator_status == "pending":
            return []
        return [UserRecord.creator_status.set("pending"),
                UserRecord.gsi2pk.set(store.PENDING_CREATORS),
                UserRecord.gsi2sk.set(f"{db.now_iso()}#{user.user_id}")]

    change(user_id, actions)
    user = get_user(user_id)
    return user, "creator" in user.roles


def email_read(user_id: str) -> db.Read:
    """The part of a `db.batch_read` that reads the account's email (and nothing else)."""
    return db.Read(settings().users_table, [store.profile_key(user_id)], projection="email")


def email_in(items: list[dict]) -> str | None:
    """The email the `email_read` part found, or None (no such account, or no email)."""
    return next((item["email"]["S"] for item in items if "email" in item), None)


def names_read(user_ids: list[str]) -> db.Read:
    """The part of a `db.batch_read` that reads these accounts' display names."""
    return db.Read(settings().users_table, [store.profile_key(i) for i in user_ids],
                   projection="user_id, display_name")


def names_in(items: list[dict]) -> dict[str, str]:
    """The display names, by user id, the `names_read` part found."""
    return {item["user_id"]["S"]: item["display_name"]["S"] for item in items
            if "user_id" in item and "display_name" in item}
