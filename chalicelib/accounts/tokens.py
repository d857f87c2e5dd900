"""Access tokens: short-lived JWTs signed with EdDSA, verified with the algorithm pinned and
every claim required. Refresh tokens are opaque random strings handled by the service; only
their SHA-256 is ever stored."""
from __future__ import annotations

import hashlib
import secrets
import time
import uuid

import jwt

from chalicelib.accounts.keys import ALGORITHM, keyset, verifying_keys
from chalicelib.config import settings
from chalicelib.errors import Unauthenticated

REQUIRED_CLAIMS = ["iss", "aud", "sub", "roles", "exp", "iat", "jti"]


class InvalidToken(Unauthenticated):
    code = "invalid_token"
    message = "The access token is invalid or expired."


def issue_access_token(user_id: str, roles: list[str] | set[str] | frozenset[str],
                       now: float | None = None) -> tuple[str, int]:
    """A signed access token for `user_id` with `roles`, and its lifetime in seconds."""
    cfg = settings()
    keys = keyset()
    issued = int(now if now is not None else time.time())
    ttl = cfg.access_token_seconds
    claims = {"iss": cfg.jwt_issuer, "aud": cfg.jwt_audience, "sub": user_id,
              "roles": sorted(roles), "iat": issued, "exp": issued + ttl,
              "jti": uuid.uuid4().hex}
    token = jwt.encode(claims, keys.private, algorithm=ALGORITHM,
                       headers={"kid": keys.active_kid, "typ": "JWT"})
    return token, ttl


def verify_access_token(token: str) -> dict:
    """The claims of a valid access token; InvalidToken for anything else."""
    cfg = settings()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidToken() from None
    if header.get("alg") != ALGORITHM:
        raise InvalidToken()
    kid = header.get("kid") or ""
    public = verifying_keys(kid).public_by_kid.get(kid)
    if public is None:
        raise InvalidToken()
    try:
        claims = jwt.decode(token, key=public, algorithms=[ALGORITHM], audience=cfg.jwt_audience,
                            issuer=cfg.jwt_issuer, options={"require": REQUIRED_CLAIMS},
                            leeway=5)
    except jwt.ExpiredSignatureError:
        raise InvalidToken("The access token has expired.", code="token_expired") from None
    except jwt.PyJWTError:
        raise InvalidToken() from None
    roles = claims.get("roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InvalidToken()
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise InvalidToken()
    return claims


def new_opaque_token() -> str:
    """A random, URL-safe secret of 256 bits (refresh and reset tokens)."""
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """What is stored for an opaque token: its SHA-256, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()
