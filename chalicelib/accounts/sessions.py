"""Whether the session an access token belongs to is still the user's, read on every
authenticated request: disabling a user, removing a role, a password change or a reset end
their sessions on the next request, not when the token expires.

One strongly consistent GetItem of the profile, three small attributes (1 read unit): the
token's signature says who, this read says whether, and with which roles now
(`store.session_state`: a raw client call, no model to build). docs/security.md gives what it
costs, measured.
"""
from __future__ import annotations

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
    from chalicelib.accounts import store

    state = store.session_state(user_id)
    if state is None:
        raise SessionRevoked()
    status, roles, current_epoch = state
    if status != "active":
        raise AccountDisabled()
    if current_epoch != epoch:
        raise SessionRevoked()
    return roles
