"""Password policy and hashing (argon2id with argon2-cffi's defaults: RFC 9106 low-memory)."""
from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from chalicelib.accounts.schemas import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH
from chalicelib.errors import Refused, ValidationFailed

_hasher = PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Login for an unknown email still pays one verification, so timing tells nothing.
    return _hasher.hash("timing-equaliser-not-a-password")


@lru_cache(maxsize=1)
def _common() -> frozenset[str]:
    path = Path(__file__).resolve().parent.parent / "data" / "common_passwords.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().casefold() for line in lines if line and not line.startswith("#"))


class WeakPassword(Refused):
    code = "weak_password"


def check_policy(password: str, email: str | None = None) -> None:
    """Refuse a password that is short or huge (400: the `Password` type of the request says
    so, counted as sent), or common or the email itself (422: a rule over data)."""
    if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
        problem = f"must be {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters"
        raise ValidationFailed(f"The password {problem}.", code="weak_password",
                               details={"fields": {"password": problem}})
    normal = unicodedata.normalize("NFKC", password).casefold()
    weakness = None
    if normal in _common():
        weakness = "is one of the most common passwords"
    elif email and normal in {email.casefold(), email.split("@")[0].casefold()}:
        weakness = "must not be your email address"
    if weakness:
        raise WeakPassword(f"The password {weakness}.",
                           details={"fields": {"password": weakness}})


def hash_password(password: str) -> str:
    return _hasher.hash(unicodedata.normalize("NFKC", password))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches; always does the work of one verification."""
    try:
        matched = _hasher.verify(stored_hash or _dummy_hash(),
                                 unicodedata.normalize("NFKC", password))
        return matched and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)
