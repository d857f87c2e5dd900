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
    marker = outbox.applied_marker("catalog_table", "count_sale", event)
    while True:
        try:
            with db.transaction() as tx:
                tx.save(marker, condition=type(marker).pk.does_not_exist())
                for resource_id in resource_ids:
                    tx.update(ResourceRecord(pk=ResourceRecord.key(resource_id), sk="META"),
                              actions=[ResourceRecord.sales.add(1)],
                              condition=ResourceRecord.pk.exists(), add_version_condition=False)
            return
        except TransactWriteError as exc:
            codes = db.cancellation_codes(exc)
            if codes[:1] == ["ConditionalCheckFailed"]:
                return  # counted already
            gone = {rid for rid, code in zip(resource_ids, codes[1:], strict=False)
                    if code == "ConditionalCheckFailed"}
            if not gone:
                raise
            # A resource that no longer exists has nothing to count; the others still do.
            logger.warning("sale of a resource that is gone", extra={"resources": sorted(gone)})
            resource_ids = [rid for rid in resource_ids if rid not in gone]


def check_counts(resource_ids: list[str], sold_count: Callable[[str], int],
                 repair: bool) -> list[dict[str, Any]]:
    """The resources' sales counts against `sold_count` (what the payments context's orders
    say); with `repair`, each count is set to it. Run once the queues have drained: an event
    still on its way is a difference that would resolve itself."""
    differences = []
    for start in range(0, len(resource_ids), 100):
        keys = [(ResourceRecord.key(i), "META") for i in resource_ids[start:start + 100]]
        for record in ResourceRecord.batch_get(keys):
            truth, found = sold_count(record.resource_id), int(record.sales or 0)
            if found == truth:
                continue
            differences.append({"view": "sales", "resource_id": record.resource_id,
                                "expected": truth, "found": found})
            if repair:
                record.update(actions=[ResourceRecord.sales.set(truth)],
                              add_version_condition=False)
    return differences
