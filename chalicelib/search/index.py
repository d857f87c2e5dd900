"""The inverted index in DynamoDB: postings T#<term> / <resource id>, kept in step with
published resources, queried by reading each term's posting list (rarest first decides the
order of intersection) and ranking by matched terms, then popularity."""
from __future__ import annotations

from chalicelib.catalog.store import Posting, ResourceRecord
from chalicelib.search.text import document_terms, query_terms

# Descriptions can be 20,000 characters; their opening says what they are about, and
# indexing all of it would cost thousands of writes per publish.
DESCRIPTION_CHARS = 1000
# A posting list longer than this is read only this far (its term barely narrows anything).
MAX_POSTINGS = 5000
MAX_QUERY_TERMS = 12


def terms_of(resource: ResourceRecord) -> set[str]:
    text = " ".join([resource.title, " ".join(resource.tags or []),
                     (resource.description or "")[:DESCRIPTION_CHARS]])
    return document_terms(text)


def sync(resource: ResourceRecord) -> list[str]:
    """Index a published resource (or remove an unpublished one); returns its indexed terms.
    Idempotent: writing the same postings again changes nothing."""
    wanted = terms_of(resource) if resource.status == "published" else set()
    popularity = int(resource.sales)
    with Posting.batch_write() as batch:
        for stale in set(resource.indexed_terms or []) - wanted:
            batch.delete(Posting(pk=f"T#{stale}", sk=resource.resource_id))
        for term in wanted:
            batch.save(Posting(pk=f"T#{term}", sk=resource.resource_id, pop=popularity))
    return sorted(wanted)


def _postings(term: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for posting in Posting.query(f"T#{term}", page_size=1000):
        found[posting.sk] = int(posting.pop)
        if len(found) >= MAX_POSTINGS:
            break
    return found


def rank(query: str) -> list[str]:
    """Resource ids matching `query`, best first: all terms matched before some, then by
    how many terms matched, then popularity. A partial match needs at least half the terms,
    so a long query is not drowned by documents sharing one common word. One Query a term."""
    terms = query_terms(query)[:MAX_QUERY_TERMS]
    if not terms:
        return []
    lists = sorted((_postings(t) for t in terms), key=len)
    popularity: dict[str, int] = {}
    matched: dict[str, int] = {}
    for postings in lists:
        for resource_id, pop in postings.items():
            matched[resource_id] = matched.get(resource_id, 0) + 1
            popularity[resource_id] = pop
    # Rarest list first: the intersection can be no larger than it.
    full = set(lists[0])
    for postings in lists[1:]:
        full &= postings.keys()
    enough = (len(terms) + 1) // 2
    hits = [r for r, n in matched.items() if r in full or n >= enough]
    return sorted(hits, key=lambda r: (r not in full, -matched[r], -popularity[r], r))
