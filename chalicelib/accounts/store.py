"""Storage of accounts and sessions (PynamoDB). Tables and indexes are those of
`infra/resources.yaml`; `docs/data-model.md` lists the access patterns."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from pynamodb.attributes import Attribute

    class IntegerAttribute(Attribute[int]):
        """What NumberAttribute is at run time for whole numbers: DynamoDB's number comes
        back through json.loads, an int. PynamoDB types every number a float."""
else:
    IntegerAttribute = NumberAttribute


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
    session_epoch = IntegerAttribute(default=0)
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
    expires_at = IntegerAttribute()

    @staticmethod
    def key(token_digest: str) -> str:
        return f"RT#{token_digest}"


class TokenFamily(Model):
    """FAM#<id> / FAM: the chain of refresh tokens of one login. Revoking it ends them all."""

    Meta = table_meta("auth_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="FAM")
    user_id = UnicodeAttribute()
    epoch = IntegerAttribute()
    revoked = BooleanAttribute(default=False)
    created_at = UnicodeAttribute()
    expires_at = IntegerAttribute()

    @staticmethod
    def key(family_id: str) -> str:
        return f"FAM#{family_id}"


class ResetTokenRecord(Model):
    """RESET#<sha256 of the token> / RESET: single use, deleted when used."""

    Meta = table_meta("auth_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="RESET")
    user_id = UnicodeAttribute()
    expires_at = IntegerAttribute()

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
    failures = IntegerAttribute(default=0)
    window_start = IntegerAttribute()
    expires_at = IntegerAttribute()

    @staticmethod
    def key(email: str) -> str:
        return f"THROTTLE#{email}"


def get(model: type[Model], pk: str, sk: str, consistent: bool = True) -> Any:
    """The item at (pk, sk), or None."""
    try:
        return model.get(pk, sk, consistent_read=consistent)
    except DoesNotExist:
        return None


# ---------------------------------------------------------------- the repository
# Services reach the accounts tables only through these functions: keys, indexes and the
# conditions that keep each write safe under concurrency live here, once.

PENDING_CREATORS = "CREATOR#pending"  # gsi2 partition of users waiting for the creator role


class EmailAlreadyClaimed(Exception):
    """The email belongs to another account (the claim's condition failed)."""


def user(user_id: str) -> UserRecord | None:
    """The profile of `user_id`, read strongly consistent, or None."""
    return get(UserRecord, UserRecord.key(user_id), "PROFILE")


def profile_key(user_id: str) -> dict[str, dict[str, str]]:
    """The raw DynamoDB key of a user's profile, for raw client calls and `db.batch_read`."""
    return {"pk": {"S": UserRecord.key(user_id)}, "sk": {"S": "PROFILE"}}


def claimed_user_id(email: str) -> str | None:
    """The id of the account that holds the normalised `email`, or None."""
    claim = get(EmailClaim, EmailClaim.key(email), "EMAIL")
    return claim.user_id if claim else None


def user_by_email(email: str) -> UserRecord | None:
    """The profile of the account that holds the normalised `email` (two GetItems), or None."""
    user_id = claimed_user_id(email)
    return user(user_id) if user_id else None


def session_state(user_id: str) -> tuple[str, frozenset[str], int] | None:
    """(status, roles, session epoch) of a user, or None: one strongly consistent GetItem of
    three attributes. A raw client call: it runs before every authenticated view, so it builds
    no model."""
    from chalicelib import aws
    from chalicelib.config import settings

    item = aws.dynamodb().get_item(
        TableName=settings().users_table,
        Key=profile_key(user_id),
        ConsistentRead=True, ProjectionExpression="#status, #roles, session_epoch",
        ExpressionAttributeNames={"#status": "status", "#roles": "roles"}).get("Item")
    if item is None:
        return None
    return (item.get("status", {}).get("S", "active"),
            frozenset(item.get("roles", {}).get("SS", ())),
            int(item.get("session_epoch", {}).get("N", "0")))


def insert_user(user_id: str, email: str, display_name: str, roles: set[str],
                password_hash: str, creator_status: str, now: str) -> UserRecord:
    """A new profile with its email claim, in one transaction; EmailAlreadyClaimed when the
    email is taken."""
    from pynamodb.exceptions import TransactWriteError

    from chalicelib import db

    record = UserRecord(pk=UserRecord.key(user_id), user_id=user_id, email=email,
                        display_name=display_name, roles=roles, password_hash=password_hash,
                        created_at=now, updated_at=now, gsi1sk=f"{now}#{user_id}",
                        creator_status=creator_status)
    try:
        with db.transaction() as tx:
            tx.save(EmailClaim(pk=EmailClaim.key(email), user_id=user_id),
                    condition=EmailClaim.pk.does_not_exist())
            tx.save(record, condition=UserRecord.pk.does_not_exist())
    except TransactWriteError as exc:
        if "ConditionalCheckFailed" in db.cancellation_codes(exc):
            raise EmailAlreadyClaimed() from None
        raise
    record.version = 1
    return record


def mutate_user(user_id: str, change: Callable[[UserRecord], list], missing: Exception,
                conflict: Exception) -> UserRecord:
    """Apply the update actions `change` computes from the profile, under optimistic
    concurrency (see db.mutate), stamping `updated_at`. `missing` is raised when there is no
    such user, `conflict` after repeated concurrent updates."""
    from chalicelib import db

    def load() -> UserRecord:
        found = user(user_id)
        if found is None:
            raise missing
        return found

    def stamped(record: UserRecord) -> list:
        actions = change(record)
        return [*actions, UserRecord.updated_at.set(db.now_iso())] if actions else []

    return db.mutate(load, stamped, conflict)


def users_page(pending_creators: bool, limit: int,
               start: dict | None) -> tuple[list[UserRecord], dict | None]:
    """One Query: users waiting for the creator role (oldest first), or all users newest
    first; the page and the position to resume from."""
    from chalicelib import db

    if pending_creators:
        results = UserRecord.by_creator_status.query(PENDING_CREATORS, limit=limit,
                                                     last_evaluated_key=start)
    else:
        results = UserRecord.by_creation.query("USERS", scan_index_forward=False, limit=limit,
                                               last_evaluated_key=start)
    return db.page(results)


# Login throttling

def login_throttle(email: str) -> LoginThrottle | None:
    return get(LoginThrottle, LoginThrottle.key(email), "THROTTLE")


def count_login_failure(email: str, now: int, window: int) -> bool:
    """Count a failed login in the window still open at `now`, or open a new window. False
    when contention kept it from being recorded."""
    from pynamodb.exceptions import PutError, UpdateError

    from chalicelib import db

    key = LoginThrottle.key(email)
    for _ in range(4):
        try:
            LoginThrottle(pk=key).update(
                actions=[LoginThrottle.failures.add(1)],
                condition=LoginThrottle.window_start > now - window)
            return True
        except UpdateError as exc:
            if not db.is_condition_failure(exc):
                raise
        try:
            LoginThrottle(pk=key, failures=1, window_start=now,
                          expires_at=now + window + 60).save(
                condition=LoginThrottle.pk.does_not_exist()
                | (LoginThrottle.window_start <= now - window))
            return True
        except PutError as exc:
            if not db.is_condition_failure(exc):
                raise
    return False


def clear_login_throttle(email: str) -> None:
    from pynamodb.exceptions import DeleteError

    from chalicelib.observability import logger

    try:
        LoginThrottle(pk=LoginThrottle.key(email)).delete()
    except DeleteError:
        logger.warning("login throttle not cleared")


# Sessions: a token family per login, a chain of single-use refresh tokens in it

def open_session(user_id: str, epoch: int, family_id: str, token_digest: str,
                 expires_at: int) -> None:
    """A new token family with its first refresh token, in one transaction."""
    from chalicelib import db

    with db.transaction() as tx:
        tx.save(TokenFamily(pk=TokenFamily.key(family_id), user_id=user_id, epoch=epoch,
                            created_at=db.now_iso(), expires_at=expires_at),
                condition=TokenFamily.pk.does_not_exist())
        tx.save(RefreshTokenRecord(pk=RefreshTokenRecord.key(token_digest), user_id=user_id,
                                   family_id=family_id, created_at=db.now_iso(),
                                   expires_at=expires_at),
                condition=RefreshTokenRecord.pk.does_not_exist())


def refresh_token(token_digest: str) -> RefreshTokenRecord | None:
    return get(RefreshTokenRecord, RefreshTokenRecord.key(token_digest), "RT")


def token_family(family_id: str) -> TokenFamily | None:
    return get(TokenFamily, TokenFamily.key(family_id), "FAM")


def revoke_family(family_id: str, owner: str | None = None) -> None:
    """Mark a token family revoked (only if it is `owner`'s, when given). Idempotent; a
    family that does not exist (or is not the owner's) is left alone."""
    from pynamodb.exceptions import UpdateError

    from chalicelib import db

    condition = TokenFamily.pk.exists() if owner is None else TokenFamily.user_id == owner
    try:
        TokenFamily(pk=TokenFamily.key(family_id)).update(
            actions=[TokenFamily.revoked.set(True)], condition=condition)
    except UpdateError as exc:
        if not db.is_condition_failure(exc):
            raise


ROTATED = "rotated"
ALREADY_ROTATED = "already_rotated"  # the presented token was used by a concurrent request
SESSION_ENDED = "session_ended"  # the family was revoked or the user's epoch or status changed


def rotate_refresh_token(presented: RefreshTokenRecord, family: TokenFamily, owner: UserRecord,
                         new_digest: str) -> str:
    """Use up the presented refresh token and store its successor, in one transaction that
    also checks the family is not revoked and the user is active at the family's epoch.
    Returns ROTATED, ALREADY_ROTATED or SESSION_ENDED."""
    from pynamodb.exceptions import TransactWriteError

    from chalicelib import db

    try:
        with db.transaction() as tx:
            tx.update(presented, actions=[RefreshTokenRecord.state.set("used")],
                      condition=RefreshTokenRecord.state == "active")
            tx.condition_check(TokenFamily, family.pk, family.sk,
                               condition=TokenFamily.revoked == False)  # noqa: E712
            tx.condition_check(UserRecord, owner.pk, owner.sk,
                               condition=(UserRecord.session_epoch == family.epoch)
                               & (UserRecord.status == "active"))
            tx.save(RefreshTokenRecord(pk=RefreshTokenRecord.key(new_digest),
                                       user_id=owner.user_id, family_id=presented.family_id,
                                       created_at=db.now_iso(),
                                       expires_at=presented.expires_at),
                    condition=RefreshTokenRecord.pk.does_not_exist())
    except TransactWriteError as exc:
        codes = db.cancellation_codes(exc)
        if codes[:1] == ["ConditionalCheckFailed"]:
            return ALREADY_ROTATED
        if "ConditionalCheckFailed" in codes:
            return SESSION_ENDED
        raise
    return ROTATED


# Published signing keys

def publish_keys(jwks: dict[str, Any]) -> None:
    """Replace the published JWKS document."""
    PublishedKeys(document=jwks).save()


def published_keys() -> dict[str, Any]:
    """The published JWKS document (DoesNotExist before the first publication)."""
    return PublishedKeys.get("JWKS", "JWKS").document


# Password reset tokens

def save_reset_token(token_digest: str, user_id: str, expires_at: int) -> None:
    ResetTokenRecord(pk=ResetTokenRecord.key(token_digest), user_id=user_id,
                     expires_at=expires_at).save(condition=ResetTokenRecord.pk.does_not_exist())


def reset_token(token_digest: str) -> ResetTokenRecord | None:
    return get(ResetTokenRecord, ResetTokenRecord.key(token_digest), "RESET")


RESET = "reset"
TOKEN_USED = "token_used"  # consumed (or expired) by the time the transaction ran
USER_CHANGED = "user_changed"


def consume_reset_token(token: ResetTokenRecord, owner: UserRecord, password_hash: str,
                        now: int) -> str:
    """Delete the unexpired reset token and set the new password hash, ending every session
    (the epoch moves on), in one transaction. Returns RESET, TOKEN_USED or USER_CHANGED."""
    from pynamodb.exceptions import TransactWriteError

    from chalicelib import db

    try:
        with db.transaction() as tx:
            tx.delete(token, condition=ResetTokenRecord.expires_at > now)
            tx.update(owner, actions=[
                UserRecord.password_hash.set(password_hash),
                UserRecord.session_epoch.add(1),
                UserRecord.updated_at.set(db.now_iso())])
    except TransactWriteError as exc:
        codes = db.cancellation_codes(exc)
        if codes[:1] == ["ConditionalCheckFailed"]:
            return TOKEN_USED
        if "ConditionalCheckFailed" in codes:
            return USER_CHANGED
        raise
    return RESET
