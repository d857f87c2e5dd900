"""Request and response models of the accounts area. The routes decode with them (unknown
fields refused) and the OpenAPI document is generated from them."""
from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

Email = Annotated[str, Meta(min_length=3, max_length=254, description="Email address")]
Password = Annotated[str, Meta(min_length=1, max_length=256)]
DisplayName = Annotated[str, Meta(min_length=1, max_length=60)]
Role = Literal["buyer", "creator", "admin"]
OpaqueToken = Annotated[str, Meta(min_length=1, max_length=512)]
Limit = Annotated[int, Meta(ge=1, le=100)]


class Input(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Base of request bodies: an unknown field is an error, never silently ignored."""


class RegisterIn(Input):
    email: Email
    password: Password
    display_name: DisplayName


class LoginIn(Input):
    email: Email
    password: Password


class RefreshIn(Input):
    refresh_token: OpaqueToken


class ForgotIn(Input):
    email: Email


class ResetIn(Input):
    token: OpaqueToken
    new_password: Password


class PasswordChangeIn(Input):
    current_password: Password
    new_password: Password


class MePatch(Input):
    display_name: DisplayName | UnsetType = UNSET


class AdminUserPatch(Input):
    roles: list[Role] | UnsetType = UNSET
    status: Literal["active", "disabled"] | UnsetType = UNSET
    creator_status: Literal["rejected"] | UnsetType = UNSET


class AdminUsersQuery(Struct):
    limit: Limit = 20
    cursor: str | None = None
    creator_status: Literal["pending"] | None = None
    email: str | None = None


class UserOut(Struct):
    id: str
    email: str
    display_name: str
    roles: list[str]
    status: str
    creator_status: str
    created_at: str


class UserEnvelope(Struct):
    user: UserOut


class UserList(Struct):
    items: list[UserOut]
    next_cursor: str | None


class TokenPair(Struct):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


class Jwk(Struct):
    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str


class Jwks(Struct):
    keys: list[Jwk]


def dump(obj: Struct) -> dict:
    return msgspec.to_builtins(obj)
