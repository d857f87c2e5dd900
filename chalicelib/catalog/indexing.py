"""The resource's derived views: its listing cards and search postings, brought in line
with its state after each change (idempotently, so a retry converges)."""
from __future__ import annotations

from typing import Any

from chalicelib import db
from chalicelib.catalog import listings, store
from chalicelib.catalog.states import Concurrent
from chalicelib.catalog.store import ResourceRecord
from chalicelib.errors import NotFound
from chalicelib.search import index as search_index


def _load(resource_id: str) -> ResourceRecord:
    resource = store.get_resource(resource_id)
    if resource is None:
        raise NotFound("No such resource.", code="resource_not_found")
    return resource


def reindex(resource_id: str) -> None:
    """Bring the resource's listing cards and search postings in line with its state."""
    def change(r: ResourceRecord) -> list[Any]:
        listed = listings.sync(r)
        terms, tier = search_index.sync(r)
        actions = []
        if listed != list(r.listed_in or []):
            actions.append(ResourceRecord.listed_in.set(listed))
        if terms != list(r.indexed_terms or []):
            actions.append(ResourceRecord.indexed_terms.set(terms))
        if r.indexed_tier is None or int(r.indexed_tier) != tier:
            actions.append(ResourceRecord.indexed_tier.set(tier))
        return actions

    db.mutate(lambda: _load(resource_id), change, Concurrent())


def rerank(resource_id: str) -> None:
    """After the resource sold: its listing cards re-ranked, and its search postings moved
    when its sales reached another tier (at 1, 10, 100 ... sales). Best effort: cards and
    postings are derived data, and the next sale or re-index rewrites them anyway."""
    try:
        resource = _load(resource_id)
        if search_index.tier_changed(resource):
            reindex(resource_id)
        else:
            listings.refresh_popularity(resource)
    except Exception:  # noqa: BLE001 - a ranking never fails the schedule that repairs payments
        from chalicelib.observability import logger

        logger.exception("resource not re-ranked", extra={"resource_id": resource_id})
