"""Rebuild the search index and listing cards of every published resource (after a change
to text analysis, to the card's fields, or to recover from a partial failure)."""
from __future__ import annotations

from typing import Any

from chalicelib.catalog.listings import ALL
from chalicelib.catalog.store import ListingCard

DESCRIPTION = "rebuild search postings and listing cards of published resources"


def estimate() -> int:
    return ListingCard.count(ALL)


def page(position: dict | None, size: int) -> tuple[list[str], dict | None]:
    """Published resource ids, from the `all` listing (one Query a page)."""
    results = ListingCard.query(ALL, limit=size, last_evaluated_key=position)
    ids = [card.sk for card in results]
    return ids, results.last_evaluated_key


def apply(resource_id: Any) -> None:
    from chalicelib.catalog import indexing

    indexing.reindex(resource_id)
