"""AWS clients, built on first use from one botocore session shared by the process.

Nothing here runs at import: moto must be active before the first client exists, and a Lambda
that never touches SQS should not pay for an SQS client. One session matters for cold starts:
each new botocore session loads its data files again (about 50 ms), and PynamoDB would
otherwise make one per model. The endpoint comes from `AWS_ENDPOINT_URL` (set by the local
stack to the embedded moto server, unset on AWS).
"""
from __future__ import annotations

import threading
from typing import Any

from chalicelib.config import settings

_lock = threading.RLock()
_clients: dict[str, Any] = {}
_session: Any = None


class _SharedSession:
    """The process's botocore session, handed to PynamoDB too. Client creation is not
    thread-safe in botocore, so it is serialised (the local server is threaded). A client
    asked for again with the same settings is the one already made: every PynamoDB model has
    a connection of its own, all configured alike, and each new client costs ~30 ms of a
    cold start (bench/cold_start.py)."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._made: dict[tuple, Any] = {}

    def create_client(self, *args: Any, **kwargs: Any) -> Any:
        config = kwargs.get("config")
        settings_key = tuple(sorted((k, repr(v)) for k, v in getattr(
            config, "_user_provided_options", {}).items()))
        key = (args, tuple(sorted((k, repr(v)) for k, v in kwargs.items() if k != "config")),
               settings_key)
        with _lock:
            made = self._made.get(key)
            if made is None:
                made = self._made[key] = self._session.create_client(*args, **kwargs)
            return made

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def botocore_session() -> Any:
    """The shared botocore session (PynamoDB's connections get it through chalicelib.db)."""
    global _session
    if _session is None:
        with _lock:
            if _session is None:
                import botocore.session

                _session = _SharedSession(botocore.session.get_session())
    return _session


def client(service: str) -> Any:
    """A cached client for `service` in the configured region and endpoint."""
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(service)
        if found is None:
            from botocore.config import Config

            cfg = settings()
            found = botocore_session().create_client(
                service, region_name=cfg.region, endpoint_url=cfg.aws_endpoint_url,
                config=Config(retries={"mode": "standard", "max_attempts": 3},
                              connect_timeout=3, read_timeout=10))
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
