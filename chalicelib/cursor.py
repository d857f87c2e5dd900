"""Opaque, tamper-proof pagination cursors.

A cursor is the DynamoDB position (LastEvaluatedKey) as compact JSON, base64url, followed by an
HMAC-SHA256 over it and the listing's scope (route and filters). A cursor forged, edited or
taken from another listing is refused with 400 instead of reading anything.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import msgspec

from chalicelib import vault
from chalicelib.errors import Invalid


class InvalidCursor(Invalid):
    code = "invalid_cursor"
    message = "The cursor is invalid or belongs to another listing."


def _key() -> bytes:
    return _unb64(vault.load()["cursor_key"])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(scope: str, payload: str) -> str:
    digest = hmac.new(_key(), f"{scope}\n{payload}".encode(), hashlib.sha256).digest()
    return _b64(digest[:18])


def encode(position: dict[str, Any] | None, scope: str) -> str | None:
    """The cursor for `position` within `scope`, or None when the listing is exhausted."""
    if not position:
        return None
    payload = _b64(msgspec.json.encode(position))
    return f"{payload}.{_mac(scope, payload)}"


def decode(cursor: str | None, scope: str) -> dict[str, Any] | None:
    """The position inside a cursor produced by `encode` for the same scope."""
    if not cursor:
        return None
    payload, _, mac = cursor.partition(".")
    if not payload or not mac or not hmac.compare_digest(mac, _mac(scope, payload)):
        raise InvalidCursor(details={"fields": {"cursor": "tampered or foreign"}})
    try:
        position = msgspec.json.decode(_unb64(payload))
    except (ValueError, msgspec.DecodeError):
        raise InvalidCursor(details={"fields": {"cursor": "malformed"}}) from None
    if not isinstance(position, dict):
        raise InvalidCursor(details={"fields": {"cursor": "malformed"}})
    return position
