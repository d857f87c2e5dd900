"""AWS clients, built on first use and shared by the process.

Nothing here runs at import: moto must be active before the first client exists, and a Lambda
that never touches SQS should not pay for an SQS client. The endpoint comes from
`AWS_ENDPOINT_URL` (set by the local stack to the embedded moto server, unset on AWS).
"""
from __future__ import annotations

import threading
from typing import Any

from chalicelib.config import settings

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_session: Any = None


def client(service: str) -> Any:
    """A cached boto3 client for `service` in the configured region and endpoint."""
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(service)
        if found is None:
            global _session
            import boto3
            from botocore.config import Config

            if _session is None:
                _session = boto3.session.Session()
            cfg = settings()
            found = _session.client(
                service,
                region_name=cfg.region,
                endpoint_url=cfg.aws_endpoint_url,
                config=Config(retries={"mode": "standard", "max_attempts": 3},
                              connect_timeout=3, read_timeout=10),
            )
            _clients[service] = found
    return found


def dynamodb() -> Any:
    return client("dynamodb")


def sqs() -> Any:
    return client("sqs")


def s3() -> Any:
    return client("s3")


def ses() -> Any:
    return client("ses")


def ssm() -> Any:
    return client("ssm")


def forget_clients() -> None:
    """Drop cached clients (the local stack calls this when it points at a new endpoint)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None
