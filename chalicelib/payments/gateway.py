"""The payments context's calls to Stripe (sessions, payment intents, refunds), through the
process's one client (chalicelib.stripe_client), which loads the SDK on first use."""
from __future__ import annotations

from typing import Any

from chalicelib.stripe_client import client, forget, is_refusal, stripe_errors, user_message

__all__ = ["client", "forget", "is_refusal", "stripe_errors", "user_message"]


def create_checkout_session(params: dict, idempotency_key: str) -> Any:
    return client().v1.checkout.sessions.create(params=params,
                                                options={"idempotency_key": idempotency_key})


def retrieve_session(session_id: str) -> Any:
    return client().v1.checkout.sessions.retrieve(session_id)


def expire_session(session_id: str) -> Any:
    return client().v1.checkout.sessions.expire(session_id)


def retrieve_payment_intent(payment_intent_id: str) -> Any:
    return client().v1.payment_intents.retrieve(payment_intent_id)


def create_refund(params: dict, idempotency_key: str) -> Any:
    return client().v1.refunds.create(params=params, options={"idempotency_key": idempotency_key})

