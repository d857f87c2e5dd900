"""Password policy and hashing (argon2id with argon2-cffi's defaults: RFC 9106 low-memory)."""
from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from chalicelib.errors import ValidationFailed

MIN_LENGTH = 10
MAX_LENGTH = 256
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


def check_policy(password: str, email: str | None = None) -> None:
    """Refuse a password that is short, huge, common, or the email itself."""
    normal = unicodedata.normalize("NFKC", password)
    problem = None
    if len(normal) < MIN_LENGTH:
        problem = f"must be at least {MIN_LENGTH} characters"
    elif len(normal) > MAX_LENGTH:
        problem = f"must be at most {MAX_LENGTH} characters"
    elif normal.casefold() in _common():
        problem = "is one of the most common passwords"
    elif email and normal.casefold() in {email.casefold(), email.split("@")[0].casefold()}:
        problem = "must not be your email address"
    if problem:
        raise ValidationFailed(f"The password {problem}.", code="weak_password",
                               details={"fields": {"password": problem}})


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
