"""Running an SQS batch through a per-record handler, the way every consumer here does:
Powertools' batch processor reports each failed record (ReportBatchItemFailures), so one bad
message is retried and dead-lettered alone while the rest of the batch is done."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def process_batch(event: Any, record_handler: Callable[[Any], None]) -> Mapping[str, Any]:
    """Run `record_handler` on every record of a Chalice SQSEvent; the partial-failure answer."""
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    return process_partial_response(event=event.to_dict(), record_handler=record_handler,
                                    processor=BatchProcessor(event_type=EventType.SQS),
                                    context=event.context)
