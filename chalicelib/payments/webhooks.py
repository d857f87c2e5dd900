"""Stripe webhook ingestion: verify the signature on the raw body, then queue the event.
Nothing else happens in the request, so Stripe gets its 2xx quickly and only once the event
is durably queued; the payments consumer does the work."""
from __future__ import annotations

import hashlib
import hmac
import time

import msgspec

from chalicelib import aws
from chalicelib.config import ConfigError, settings
from chalicelib.errors import Invalid, Unavailable
from chalicelib.observability import logger, metrics

TOLERANCE_SECONDS = 300


class BadSignature(Invalid):
    code = "invalid_signature"
    message = "The Stripe signature is missing or does not match."


class QueueUnavailable(Unavailable):
    """The event could not be queued; Stripe must retry (5xx)."""

    code = "queue_unavailable"
    message = "The event could not be queued; retry."


class _Envelope(msgspec.Struct):
    id: str
    type: str


def verify(raw: bytes, header: str | None, secrets: tuple[str, ...],
           now: float | None = None) -> None:
    """Accept `raw` only if one `v1` signature of the header matches one of `secrets` and the
    timestamp is within the tolerance (Stripe's scheme)."""
    if not secrets:
        raise ConfigError("STRIPE_WEBHOOK_SECRET is not set")
    if not header:
        raise BadSignature()
    timestamp, signatures = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            timestamp = value
        elif name == "v1":
            signatures.append(value)
    if not timestamp or not timestamp.isdigit() or not signatures:
        raise BadSignature()
    if abs((now or time.time()) - int(timestamp)) > TOLERANCE_SECONDS:
        raise BadSignature("The Stripe signature is too old.", code="signature_expired")
    signed = timestamp.encode() + b"." + raw
    for secret in secrets:
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, s) for s in signatures):
            return
    raise BadSignature()


def ingest(raw: bytes | None, signature: str | None) -> str:
    """Verify and queue one webhook delivery; returns the event id."""
    raw = raw or b""
    secrets = settings().stripe_webhook_secrets
    if not secrets:
        from chalicelib import vault

        secrets = tuple(vault.load().get("stripe_webhook_secrets", ()))
    try:
        verify(raw, signature, secrets)
        envelope = msgspec.json.decode(raw, type=_Envelope)
    except (BadSignature, msgspec.DecodeError, msgspec.ValidationError) as exc:
        metrics.add_metric(name="WebhookRejected", unit="Count", value=1)
        logger.warning("webhook rejected", extra={"reason": str(exc)})
        if isinstance(exc, BadSignature):
            raise
        raise Invalid("The event is not a Stripe event.", code="invalid_event") from None
    try:
        aws.sqs().send_message(QueueUrl=aws.queue_url(settings().payments_queue),
                               MessageBody=raw.decode("utf-8"),
                               MessageAttributes={"event_type": {
                                   "DataType": "String", "StringValue": envelope.type}})
    except Exception as exc:  # noqa: BLE001 - any failure to queue means Stripe must retry
        logger.exception("webhook not queued", extra={"event_id": envelope.id})
        raise QueueUnavailable() from exc
    logger.info("webhook queued", extra={"event_id": envelope.id, "type": envelope.type})
    return envelope.id
