"""Storage of the search context (PynamoDB): the postings of the inverted index, one table.
Keys are built here only: T#<term> / <tier>#<resource id> (see docs/data-model.md)."""
from __future__ import annotations

from collections.abc import Iterable

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.db import table_meta


class Posting(Model):
    """T#<term> / <tier>#<resource id>: the resource contains the term (search.index);
    `pop`, its sales when indexed, ranks candidates."""

    Meta = table_meta("search_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    pop = NumberAttribute(default=0)


def term_key(term: str) -> str:
    return f"T#{term}"


def sort_key(posting_tier: int | None, resource_id: str) -> str:
    """A posting's sort key; postings written before tiers had the resource id alone."""
    return resource_id if posting_tier is None else f"{posting_tier}#{resource_id}"


def posting(term: str, posting_tier: int, resource_id: str, popularity: int) -> Posting:
    return Posting(pk=term_key(term), sk=sort_key(posting_tier, resource_id), pop=popularity)


def write(stale: Iterable[tuple[str, str]], fresh: Iterable[Posting]) -> None:
    """Delete the (term, sort key) postings in `stale` and write `fresh`, in batches."""
    with Posting.batch_write() as batch:
        for term, key in stale:
            batch.delete(Posting(pk=term_key(term), sk=key))
        for item in fresh:
            batch.save(item)


def best(term: str, limit: int) -> dict[str, int]:
    """The term's first `limit` postings in tier order: resource id -> sales. One Query."""
    results = Posting.query(term_key(term), limit=limit, page_size=limit)
    return {item.sk.rpartition("#")[2]: int(item.pop) for item in results}
