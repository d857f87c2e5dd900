"""Storage of accounts and sessions (PynamoDB). Tables and indexes are those of
`infra/resources.yaml`; `docs/data-model.md` lists the access patterns."""
from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    VersionAttribute,
)
from pynamodb.exceptions import DoesNotExist
from pynamodb.models import Model

from chalicelib.db import global_index, table_meta


class UserRecord(Model):
    """USER#<id> / PROFILE."""

    Meta = table_meta("users_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="PROFILE")
    user_id = UnicodeAttribute()
    email = UnicodeAttribute()
    display_name = UnicodeAttribute()
    roles = UnicodeSetAttribute()
    password_hash = UnicodeAttribute()
    status = UnicodeAttribute(default="active")
    creator_status = UnicodeAttribute(default="none")
    session_epoch = NumberAttribute(default=0)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    version = VersionAttribute()
    gsi1pk = UnicodeAttribute(default="USERS")
    gsi1sk = UnicodeAttribute()
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    by_creation = global_index("gsi1")
    by_creator_status = global_index("gsi2")

    @staticmethod
    def key(user_id: str) -> str:
        return f"USER#{user_id}"


class EmailClaim(Model):
    """EMAIL#<normalised email> / EMAIL: makes an email belong to one account at most."""

    Meta = table_meta("users_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="EMAIL")
    user_id = UnicodeAttribute()

    @staticmethod
    def key(email: str) -> str:
        return f"EMAIL#{email}"


class RefreshTokenRecord(Model):
    """RT#<sha256 of the token> / RT. `state`: active, then used once rotated."""

    Meta = table_meta("auth_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="RT")
    user_id = UnicodeAttribute()
    family_id = UnicodeAttribute()
    state = UnicodeAttribute(default="active")
    created_at = UnicodeAttribute()
    expires_at = NumberAttribute()

    @staticmethod
    def key(token_digest: str) -> str:
        return f"RT#{token_digest}"


class TokenFamily(Model):
    """FAM#<id> / FAM: the chain of refresh tokens of one login. Revoking it ends them all."""

    Meta = table_meta("auth_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="FAM")
    user_id = UnicodeAttribute()
    epoch = NumberAttribute()
    revoked = BooleanAttribute(default=False)
    created_at = UnicodeAttribute()
    expires_at = NumberAttribute()

    @staticmethod
    def key(family_id: str) -> str:
        return f"FAM#{family_id}"


class ResetTokenRecord(Model):
    """RESET#<sha256 of the token> / RESET: single use, deleted when used."""

    Meta = table_meta("auth_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="RESET")
    user_id = UnicodeAttribute()
    expires_at = NumberAttribute()

    @staticmethod
    def key(token_digest: str) -> str:
        return f"RESET#{token_digest}"


class PublishedKeys(Model):
    """JWKS / JWKS: the public keys access tokens are verified with (a JWKS document)."""

    Meta = table_meta("auth_table")
    pk = UnicodeAttribute(hash_key=True, default="JWKS")
    sk = UnicodeAttribute(range_key=True, default="JWKS")
    document = JSONAttribute()


class LoginThrottle(Model):
    """THROTTLE#<normalised email> / THROTTLE: failed logins in the current window."""

    Meta = table_meta("auth_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="THROTTLE")
    failures = NumberAttribute(default=0)
    window_start = NumberAttribute()
    expires_at = NumberAttribute()

    @staticmethod
    def key(email: str) -> str:
        return f"THROTTLE#{email}"


def get(model: type[Model], pk: str, sk: str, consistent: bool = True) -> Any:
    """The item at (pk, sk), or None."""
    try:
        return model.get(pk, sk, consistent_read=consistent)
    except DoesNotExist:
        return None
