"""Request and response models of the accounts area. The routes decode with them (unknown
fields refused) and the OpenAPI document is generated from them."""
from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

# Each constraint the code checks on a field is stated here, once: msgspec enforces it when a
# body or query is decoded, and the OpenAPI document is generated from it. A service repeats
# none of it; what it refuses beyond this depends on stored data (422, 404, 409).

# White space as Python's str.isspace() and str.split() see it, spelled out for patterns:
# `\s` differs between Python's regular expressions (which msgspec runs) and ECMA 262 (which
# JSON Schema names), on U+001C..U+001F and U+FEFF.
SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Something besides white space (runs of it are collapsed or trimmed when stored).
VISIBLE = rf"[^{SPACE}]"
# Something, an @, a domain with a dot and a top-level part of two or more, no white space
# but around it: checked as sent (the account's key is its trimmed, NFKC, lower-cased form).
EMAIL_PATTERN = rf"^[{SPACE}]*[^@{SPACE}]+@[^@{SPACE}]+\.[^@{SPACE}.]{{2,}}[{SPACE}]*$"
EMAIL_MAX_LENGTH = 254
Email = Annotated[str, Meta(min_length=3, max_length=EMAIL_MAX_LENGTH, pattern=EMAIL_PATTERN,
                            description="Email address")]
# Length in code points as sent. Common passwords and the email itself are refused with 422.
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 256
Password = Annotated[str, Meta(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH,
                               description="At least 10 characters; not a common password, "
                                           "not the email")]
# What a password was, to check it: any length a password ever had.
Secret = Annotated[str, Meta(min_length=1, max_length=PASSWORD_MAX_LENGTH)]
# Control characters, and invisible ones that could disguise a name (soft hyphen, zero-width
# and bidirectional controls, the BOM, line and paragraph separators), are refused; and a name
# is more than white space. Stored NFKC-normalised and trimmed.
NAME_FORBIDDEN = r"\x00-\x1f\x7f-\x9f\xad\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
DISPLAY_NAME_PATTERN = rf"^[^{NAME_FORBIDDEN}]*[^{NAME_FORBIDDEN}{SPACE}][^{NAME_FORBIDDEN}]*$"
DisplayName = Annotated[str, Meta(min_length=1, max_length=60, pattern=DISPLAY_NAME_PATTERN)]
Role = Literal["buyer", "creator", "admin"]
OpaqueToken = Annotated[str, Meta(min_length=1, max_length=512)]
Limit = Annotated[int, Meta(ge=1, le=100)]
# `next_cursor` passed back unchanged (chalicelib.cursor: base64url position, a dot, a 24
# character base64url MAC). Well formed but edited, forged or foreign: 400 invalid_cursor.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{24}$"
Cursor = Annotated[str, Meta(max_length=2048, pattern=CURSOR_PATTERN,
                             description="`next_cursor` of the previous page, unchanged")]


class Input(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Base of request bodies: an unknown field is an error, never silently ignored."""


class RegisterIn(Input):
    email: Email
    password: Password
    display_name: DisplayName


class LoginIn(Input):
    email: Email
    password: Secret


class RefreshIn(Input):
    refresh_token: OpaqueToken


class ForgotIn(Input):
    email: Email


class ResetIn(Input):
    token: OpaqueToken
    new_password: Password


class PasswordChangeIn(Input):
    current_password: Secret
    new_password: Password


class MePatch(Input):
    display_name: DisplayName | UnsetType = UNSET


class AdminUserPatch(Input):
    roles: list[Role] | UnsetType = UNSET
    status: Literal["active", "disabled"] | UnsetType = UNSET
    creator_status: Literal["rejected"] | UnsetType = UNSET


class AdminUsersQuery(Struct):
    limit: Limit = 20
    cursor: Cursor | None = None
    creator_status: Literal["pending"] | None = None
    email: Email | None = None


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
