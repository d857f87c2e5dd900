"""Publishing analytics events to the analytics queue. Analytics is derived data: a lost event
skews a counter, never money or access, so publishing never fails the request that caused it."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec

from chalicelib import aws
from chalicelib.config import settings
from chalicelib.observability import logger


class AnalyticsEvent(msgspec.Struct, forbid_unknown_fields=True):
    event_id: str
    type: str
    at: str
    count: int = 1


def publish(event_type: str, count: int = 1) -> None:
    """Queue one event for the rollup; failures are logged and swallowed."""
    event = AnalyticsEvent(event_id=uuid.uuid4().hex, type=event_type, count=count,
                           at=datetime.now(UTC).isoformat())
    try:
        body = msgspec.json.encode(event).decode()
        aws.sqs().send_message(QueueUrl=aws.queue_url(settings().analytics_queue), MessageBody=body)
    except Exception:  # noqa: BLE001 - derived data must not fail the caller
        logger.exception("analytics event not queued", extra={"event_type": event_type})
