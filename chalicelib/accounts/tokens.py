"""Access tokens: short-lived JWTs signed with EdDSA, verified with the algorithm pinned and
every claim required. Refresh tokens are opaque random strings handled by the service; only
their SHA-256 is ever stored.

Tokens are issued with PyJWT. Verification, which every authenticated request does, is the
few strict steps an EdDSA-only JWT needs, on `cryptography` directly: importing PyJWT loads
every algorithm it supports (about 45 ms of each cold start, measured by bench/cold_start.py).
The tests check both directions against PyJWT.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import time
import uuid

from chalicelib.accounts.keys import ALGORITHM, keyset, verifying_keys
from chalicelib.config import settings
from chalicelib.errors import Unauthenticated

# `epoch`: the user's session epoch when the token was issued (chalicelib.accounts.sessions).
REQUIRED_CLAIMS = ["iss", "aud", "sub", "roles", "epoch", "exp", "iat", "nbf", "jti"]


class InvalidToken(Unauthenticated):
    code = "invalid_token"
    message = "The access token is invalid or expired."


def issue_access_token(user_id: str, roles: list[str] | set[str] | frozenset[str],
                       epoch: int, now: float | None = None) -> tuple[str, int]:
    """A signed access token for `user_id` with `roles` in session epoch `epoch`, and its
    lifetime in seconds."""
    cfg = settings()
    keys = keyset()
    issued = int(now if now is not None else time.time())
    ttl = cfg.access_token_seconds
    claims = {"iss": cfg.jwt_issuer, "aud": cfg.jwt_audience, "sub": user_id,
              "roles": sorted(roles), "epoch": int(epoch), "iat": issued, "nbf": issued,
              "exp": issued + ttl,
              "jti": uuid.uuid4().hex}
    import jwt

    token = jwt.encode(claims, keys.private, algorithm=ALGORITHM,
                       headers={"kid": keys.active_kid, "typ": "JWT"})
    return token, ttl


_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")
# Clock skew forgiven on exp, iat and nbf; the contract allows at most 30 s.
LEEWAY_SECONDS = 5


def _segment(text: str) -> bytes:
    if not _SEGMENT.match(text):
        raise InvalidToken()
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken() from None


def _json_object(raw: bytes) -> dict:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidToken() from None
    if not isinstance(value, dict):
        raise InvalidToken()
    return value


def verify_access_token(token: str, now: float | None = None) -> dict:
    """The claims of a valid access token; InvalidToken for anything else: another algorithm
    (none, HS256...), an unknown key, a bad signature, a `crit` header, a missing claim,
    another issuer or audience, an expired token or one not yet valid (iat or nbf ahead)."""
    from cryptography.exceptions import InvalidSignature

    cfg = settings()
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken()
    header = _json_object(_segment(parts[0]))
    # RFC 7515 4.1.11: extensions listed in `crit` must be understood, and none is here.
    if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str) or \
            "crit" in header:
        raise InvalidToken()
    public = verifying_keys(header["kid"]).public_by_kid.get(header["kid"])
    if public is None:
        raise InvalidToken()
    try:
        public.verify(_segment(parts[2]), f"{parts[0]}.{parts[1]}".encode("ascii"))
    except InvalidSignature:
        raise InvalidToken() from None
    claims = _json_object(_segment(parts[1]))
    if any(name not in claims for name in REQUIRED_CLAIMS):
        raise InvalidToken()
    audience = claims["aud"]
    audiences = audience if isinstance(audience, list) else [audience]
    if claims["iss"] != cfg.jwt_issuer or cfg.jwt_audience not in audiences:
        raise InvalidToken()
    if not all(isinstance(claims[n], int) and not isinstance(claims[n], bool)
               for n in ("exp", "iat", "nbf", "epoch")):
        raise InvalidToken()
    current = now if now is not None else time.time()
    if current > claims["exp"] + LEEWAY_SECONDS:
        raise InvalidToken("The access token has expired.", code="token_expired")
    if claims["iat"] > current + LEEWAY_SECONDS or claims["nbf"] > current + LEEWAY_SECONDS:
        raise InvalidToken()
    roles = claims["roles"]
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InvalidToken()
    if not isinstance(claims["sub"], str) or not claims["sub"] or \
            not isinstance(claims["jti"], str):
        raise InvalidToken()
    return claims


def new_opaque_token() -> str:
    """A random, URL-safe secret of 256 bits (refresh and reset tokens)."""
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """What is stored for an opaque token: its SHA-256, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()
