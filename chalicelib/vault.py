"""Secrets of the running stage, from one SSM SecureString parameter holding JSON:

    {"jwt": {"active_kid": "...", "keys": [{"kid": "...", "private_pem": "...",
             "created_at": "..."}]},
     "cursor_key": "<urlsafe base64>"}

On AWS the operator creates it (`python -m chalicelib.accounts.keys init`); locally the stack
generates it on moto. It is cached in the process for SECRETS_CACHE_SECONDS so that a key
rotation reaches every warm Lambda within that time, without a round trip per request.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Any

from chalicelib import aws
from chalicelib.config import ConfigError, settings

_lock = threading.Lock()
_cached: tuple[float, dict] | None = None


def load() -> dict[str, Any]:
    """The secrets document, from cache when fresh."""
    global _cached
    now = time.monotonic()
    current = _cached
    if current is not None and now - current[0] < settings().secrets_cache_seconds:
        return current[1]
    with _lock:
        current = _cached
        if current is not None and now - current[0] < settings().secrets_cache_seconds:
            return current[1]
        name = settings().secrets_parameter
        try:
            raw = aws.ssm().get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except aws.ssm().exceptions.ParameterNotFound as exc:
            raise ConfigError(f"SSM parameter {name} is missing") from exc
        doc = json.loads(raw)
        _cached = (now, doc)
        return doc


def store(doc: dict[str, Any]) -> None:
    """Write the secrets document (key set-up and rotation tools only, never a request)."""
    aws.ssm().put_parameter(Name=settings().secrets_parameter, Value=json.dumps(doc),
                            Type="SecureString", Overwrite=True)
    forget()


def forget() -> None:
    global _cached
    with _lock:
        _cached = None
