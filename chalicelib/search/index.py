"""The inverted index in DynamoDB: postings T#<term> / <tier>#<resource id>, kept in step
with published resources. A query reads, for each of its terms, one page of that term's
postings in tier order, i.e. the term's best sellers first (MAX_POSTINGS of them at most, one
Query), and ranks those candidates by matched terms, then popularity. So a search costs the
same whether the catalog holds a thousand resources or a million (bench/scale.py).

The tier is the order of magnitude of a resource's sales (0: 100,000,000 or more ... 8: 1-9,
9: none), so postings move only when sales cross a power of ten: the 15-minute schedule
re-ranking sold resources moves them then (catalog.indexing.rerank)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from chalicelib.search import store
from chalicelib.search.store import Posting
from chalicelib.search.text import document_terms, query_terms


class Indexable(Protocol):
    """What the index reads of a document (a catalog resource); the search context stores
    nothing of the catalog's and imports none of it."""

    @property
    def resource_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    # Sequence[Any]: PynamoDB types a list of strings as a list of its attribute class.
    @property
    def tags(self) -> Sequence[Any] | None: ...
    @property
    def status(self) -> str: ...
    @property
    def sales(self) -> float: ...
    @property
    def indexed_terms(self) -> Sequence[Any] | None: ...
    @property
    def indexed_tier(self) -> float | None: ...


# Descriptions can be 20,000 characters; their opening says what they are about, and
# indexing all of it would cost thousands of writes per publish.
DESCRIPTION_CHARS = 1000
# The candidates a term contributes: its best sellers, one Query page (a posting is ~60
# bytes). A term in more resources than this barely narrows a search on its own.
MAX_POSTINGS = 1000
MAX_QUERY_TERMS = 12
TIERS = 10


def tier(sales: int) -> int:
    """The posting tier of a resource with `sales`: 9 for none, 8 for 1-9, 7 for 10-99 ...
    0 for 100,000,000 and more (tiers sort best first)."""
    return TIERS - 1 - (min(TIERS - 1, len(str(sales))) if sales > 0 else 0)


sort_key = store.sort_key


def tier_changed(resource: Indexable) -> bool:
    """Whether the resource's postings are filed under another tier than its sales say."""
    indexed = resource.indexed_tier
    if indexed is None:
        return bool(resource.indexed_terms)
    return int(indexed) != tier(int(resource.sales))


def terms_of(resource: Indexable) -> set[str]:
    text = " ".join([resource.title, " ".join(resource.tags or []),
                     (resource.description or "")[:DESCRIPTION_CHARS]])
    return document_terms(text)


def postings(resource: Indexable, terms: set[str]) -> list[Posting]:
    """The resource's postings for `terms`, filed under its current tier."""
    popularity = int(resource.sales)
    return [store.posting(term, tier(popularity), resource.resource_id, popularity)
            for term in terms]


def sync(resource: Indexable) -> tuple[list[str], int]:
    """Index a published resource (or remove an unpublished one); returns its indexed terms
    and their tier, to be recorded on the resource. Idempotent: writing the same postings
    again changes nothing."""
    wanted = terms_of(resource) if resource.status == "published" else set()
    written = postings(resource, wanted)
    indexed = resource.indexed_tier
    old_key = sort_key(None if indexed is None else int(indexed), resource.resource_id)
    moved = not written or old_key != written[0].sk
    stale = set(resource.indexed_terms or []) - (set() if moved else wanted)
    store.write(((term, old_key) for term in stale), written)
    return sorted(wanted), tier(int(resource.sales))


def _postings(term: str) -> dict[str, int]:
    """The term's best-selling MAX_POSTINGS resources and their sales: one Query."""
    return store.best(term, MAX_POSTINGS)


def rank(query: str) -> list[str]:
    """Resource ids matching `query`, best first: all terms matched before some, then by
    how many terms matched, then popularity. A partial match needs at least half the terms,
    so a long query is not drowned by documents sharing one common word. One Query a term;
    a resource outside a term's best-selling MAX_POSTINGS counts as not having the term."""
    terms = query_terms(query)[:MAX_QUERY_TERMS]
    if not terms:
        return []
    lists = sorted((_postings(t) for t in terms), key=len)
    popularity: dict[str, int] = {}
    matched: dict[str, int] = {}
    for found in lists:
        for resource_id, pop in found.items():
            matched[resource_id] = matched.get(resource_id, 0) + 1
            popularity[resource_id] = pop
    # Rarest list first: the intersection can be no larger than it.
    full = set(lists[0])
    for found in lists[1:]:
        full &= found.keys()
    enough = (len(terms) + 1) // 2
    hits = [r for r, n in matched.items() if r in full or n >= enough]
    return sorted(hits, key=lambda r: (r not in full, -matched[r], -popularity[r], r))
