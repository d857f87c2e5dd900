"""The payments queue consumer: one verified Stripe event per record, applied at most once
per event id (Powertools Idempotency, records kept 8 days, longer than Stripe's 3 days of
retries). The idempotency layer and the Stripe SDK load on the first event, not at import."""
from __future__ import annotations

import json
from typing import Any

RECORD_SECONDS = 8 * 24 * 3600
_process: Any = None
_config: Any = None


def _idempotent_processor() -> Any:
    global _process, _config
    if _process is None:
        from aws_lambda_powertools.utilities.idempotency import (
            IdempotencyConfig,
            idempotent_function,
        )

        from chalicelib.payments.processing import process_event
        from chalicelib.payments.store import idempotency_store

        persistence = idempotency_store()
        config = _config = IdempotencyConfig(event_key_jmespath="id",
                                             expires_after_seconds=RECORD_SECONDS,
                                             raise_on_no_idempotency_key=True)

        @idempotent_function(data_keyword_argument="event", config=config,
                             persistence_store=persistence)
        def process(event: dict) -> dict:
            return process_event(event)

        _process = process
    return _process


def use_context(context: Any) -> None:
    """Let Idempotency see the Lambda's remaining time, so a record left 'in progress' by a
    timed-out invocation can be taken over once that invocation is surely dead."""
    _idempotent_processor()
    if context is not None:
        _config.register_lambda_context(context)


def record_handler(record) -> dict:
    """Powertools batch record handler: the record's body is the Stripe event as sent."""
    return _idempotent_processor()(event=json.loads(record.body))
