"""Whether the session an access token belongs to is still the user's, read on every
authenticated request: disabling a user, removing a role, a password change or a reset end
their sessions on the next request, not when the token expires.

One strongly consistent GetItem of the profile, three small attributes (1 read unit): the
token's signature says who, this read says whether, and with which roles now. A raw client
call, since it runs before every authenticated view (no model to build, nothing more to
import on a cold start). docs/security.md gives what it costs, measured.
"""
from __future__ import annotations

from chalicelib import aws
from chalicelib.config import settings
from chalicelib.errors import Forbidden, Unauthenticated


class SessionRevoked(Unauthenticated):
    code = "session_revoked"
    message = "This session has ended; sign in again."


class AccountDisabled(Forbidden):
    code = "account_disabled"
    message = "This account is disabled."


def current_roles(user_id: str, epoch: int) -> frozenset[str]:
    """The user's roles now, if the session of `epoch` is still theirs; SessionRevoked or
    AccountDisabled otherwise."""
    item = aws.dynamodb().get_item(
        TableName=settings().users_table,
        Key={"pk": {"S": f"USER#{user_id}"}, "sk": {"S": "PROFILE"}},
        ConsistentRead=True, ProjectionExpression="#status, #roles, session_epoch",
        ExpressionAttributeNames={"#status": "status", "#roles": "roles"}).get("Item")
    if item is None:
        raise SessionRevoked()
    if item.get("status", {}).get("S", "active") != "active":
        raise AccountDisabled()
    if int(item.get("session_epoch", {}).get("N", "0")) != epoch:
        raise SessionRevoked()
    return frozenset(item.get("roles", {}).get("SS", ()))
