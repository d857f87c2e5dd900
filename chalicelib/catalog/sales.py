"""The catalog's reaction to sales: a resource's sales count follows the payments context's
`order.paid` events (delivered at least once, counted exactly once)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pynamodb.exceptions import TransactWriteError

from chalicelib import db, outbox
from chalicelib.catalog.store import ResourceRecord
from chalicelib.observability import logger


def count_sale(event: outbox.DomainEvent) -> None:
    """One more sale of each resource of a paid order; a redelivery counts nothing."""
    resource_ids = list(event.payload.get("resource_ids") or ())
    try:
        with db.transaction() as tx:
            marker = outbox.applied_marker("catalog_table", "count_sale", event)
            tx.save(marker, condition=type(marker).pk.does_not_exist())
            for resource_id in resource_ids:
                tx.update(ResourceRecord(pk=ResourceRecord.key(resource_id), sk="META"),
                          actions=[ResourceRecord.sales.add(1)],
                          condition=ResourceRecord.pk.exists(), add_version_condition=False)
    except TransactWriteError as exc:
        codes = db.cancellation_codes(exc)
        if codes[:1] == ["ConditionalCheckFailed"]:
            return  # counted already
        if "ConditionalCheckFailed" in codes[1:]:
            # A resource that no longer exists has nothing to count; the others still do.
            gone = [rid for rid, code in zip(resource_ids, codes[1:], strict=False)
                    if code == "ConditionalCheckFailed"]
            logger.warning("sale of a resource that is gone", extra={"resources": gone})
            left = [rid for rid in resource_ids if rid not in gone]
            count_sale(outbox.DomainEvent(event_id=event.event_id, type=event.type,
                                          at=event.at, payload={**event.payload,
                                                                "resource_ids": left}))
            return
        raise


def check_counts(sold_count: Callable[[str], int], repair: bool) -> list[dict[str, Any]]:
    """Every published resource's sales count against `sold_count` (what the payments
    context's orders say); with `repair`, the count is set to it. Run once the queues have
    drained: an event still on its way is a difference that would resolve itself."""
    from chalicelib.migrations import m0001_rebuild_search_index as published

    differences = []
    position = None
    while True:
        ids, position = published.page(position, 100)
        for record in ResourceRecord.batch_get([(ResourceRecord.key(i), "META") for i in ids]):
            truth = sold_count(record.resource_id)
            if int(record.sales or 0) == truth:
                continue
            differences.append({"view": "sales", "resource_id": record.resource_id,
                                "expected": truth, "found": int(record.sales or 0)})
            if repair:
                record.update(actions=[ResourceRecord.sales.set(truth)],
                              add_version_condition=False)
        if not position:
            return differences
