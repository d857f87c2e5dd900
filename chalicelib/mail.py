"""Outgoing email through SES (moto's SES locally, where `/_local/outbox` shows what was sent)."""
from __future__ import annotations

from chalicelib import aws
from chalicelib.config import settings


def send(to: str, subject: str, text: str) -> str:
    """Send a plain-text email; returns the SES message id."""
    response = aws.ses().send_email(
        Source=settings().mail_from,
        Destination={"ToAddresses": [to]},
        Message={"Subject": {"Data": subject, "Charset": "UTF-8"},
                 "Body": {"Text": {"Data": text, "Charset": "UTF-8"}}},
    )
    return response["MessageId"]
