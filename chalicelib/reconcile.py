"""`make reconcile`: every derived view checked against its source of truth, and rebuilt.

1. Payments: orders still pending are asked of Stripe (payments.reconciliation.reconcile).
2. The outbox: every domain event not yet delivered is sent; points lots due are expired.
3. Entitlements against the orders' statuses, sales counts against the paid orders.
4. Search postings and listing cards rebuilt from the published resources.

The report lists each difference found (and repaired); a clean run lists none. Run it once
the queues have drained, or an event still on its way shows as a difference."""
from __future__ import annotations

import time
from typing import Any


def run(now: float | None = None, repair: bool = True) -> dict[str, Any]:
    """Reconcile everything; the report, with the differences found."""
    from chalicelib import outbox
    from chalicelib.catalog import sales
    from chalicelib.migrations import m0001_rebuild_search_index as search_views
    from chalicelib.payments import reconciliation, views
    from chalicelib.points import service as points

    report: dict[str, Any] = {"payments": reconciliation.reconcile(now or time.time()),
                              "relayed": outbox.relay(everything=True),
                              "points": points.expire_due(now)}
    published = _published(search_views)
    report["differences"] = views.check_entitlements(repair) + \
        sales.check_counts(published, views.sold_count, repair)
    for resource_id in published:
        search_views.apply(resource_id)
    report["search_and_cards_rebuilt"] = len(published)
    return report


def _published(search_views: Any) -> list[str]:
    """Every published resource's id, a page of the `all` listing at a time."""
    ids: list[str] = []
    position = None
    while True:
        page, position = search_views.page(position, 100)
        ids += page
        if not position:
            return ids
