"""Secrets of the running stage, from one SSM SecureString parameter holding JSON:

    {"jwt": {"active_kid": "...", "keys": [{"kid": "...", "private_pem": "...",
             "created_at": "..."}]},
     "cursor_key": "<urlsafe base64>"}

On AWS the operator creates it (`python -m devstack.keys init`); locally the stack
generates it on moto. It is cached in the process for SECRETS_CACHE_SECONDS so that a key
rotation reaches every warm Lambda within that time, without a round trip per request.
"""
from __future__ import annotations

import json
import threading
from typing import Any

from chalicelib import aws
from chalicelib.config import ConfigError, settings

_lock = threading.Lock()
_provider: Any = None


def load() -> dict[str, Any]:
    """The secrets document, through Powertools Parameters (cached for
    SECRETS_CACHE_SECONDS, so a key rotation reaches every warm Lambda within that time)."""
    global _provider
    if _provider is None:
        with _lock:
            if _provider is None:
                from aws_lambda_powertools.utilities.parameters import SSMProvider

                _provider = SSMProvider(boto3_client=aws.ssm())
    name = settings().secrets_parameter
    try:
        return _provider.get(name, decrypt=True, transform="json",
                             max_age=settings().secrets_cache_seconds)
    except Exception as exc:
        if "ParameterNotFound" in repr(exc):
            raise ConfigError(f"SSM parameter {name} is missing") from exc
        raise


def store(doc: dict[str, Any]) -> None:
    """Write the secrets document (key set-up and rotation tools only, never a request)."""
    aws.ssm().put_parameter(Name=settings().secrets_parameter, Value=json.dumps(doc),
                            Type="SecureString", Overwrite=True)
    forget()


def forget() -> None:
    """Drop the cached document (after a rotation written by this process, and in tests)."""
    global _provider
    with _lock:
        _provider = None
