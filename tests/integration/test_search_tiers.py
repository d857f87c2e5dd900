"""Search costs the same at any catalog size: each term contributes its best sellers (one
Query), and postings move between popularity tiers only when sales cross a power of ten."""
from __future__ import annotations

import pytest

from tests.support import operations_made, publish_one


def test_tiers_are_orders_of_magnitude_of_sales_best_first():
    from chalicelib.search.index import tier

    assert [tier(n) for n in (0, 1, 9, 10, 99, 100, 10**8 - 1, 10**8, 10**12)] == \
        [9, 8, 8, 7, 7, 6, 1, 0, 0]


def sell(resource_id: str, count: int) -> None:
    """Count `count` more sales, as the payment transaction does."""
    from chalicelib.catalog.store import ResourceRecord

    ResourceRecord.get(ResourceRecord.key(resource_id), "META").update(
        actions=[ResourceRecord.sales.add(count)])


@pytest.fixture
def many_handbooks(aws):
    """1,100 published resources whose postings hold the term 'handbook', sales 0 to 1,099."""
    from chalicelib.catalog.store import ResourceRecord
    from chalicelib.search.index import postings
    from chalicelib.search.store import Posting

    with Posting.batch_write() as batch:
        for sales in range(1100):
            resource = ResourceRecord(resource_id=f"r{sales:04d}", sales=sales)
            for posting in postings(resource, {"handbook"}):
                batch.save(posting)


def test_a_common_term_contributes_its_1000_best_sellers_in_one_query(many_handbooks):
    from chalicelib.search.index import MAX_POSTINGS, rank

    # When a term held by more resources than MAX_POSTINGS is searched
    with operations_made() as operations:
        ranked = rank("handbook")
    # Then one Query reads the best sellers: tiers 5 (1,000+ sales) and 6 (100-999)
    assert operations == ["Query"]
    assert len(ranked) == MAX_POSTINGS == 1000
    assert ranked[:3] == ["r1099", "r1098", "r1097"]
    assert set(ranked) == {f"r{sales:04d}" for sales in range(100, 1100)}


def test_a_sale_crossing_a_power_of_ten_moves_the_postings_to_the_next_tier(api, publisher):
    from chalicelib.catalog import indexing
    from chalicelib.catalog.store import ResourceRecord
    from chalicelib.search.store import Posting

    # Given a published resource with 9 sales, its postings in tier 8
    resource_id = publish_one(publisher, "Violin étude handbook")
    sell(resource_id, 9)
    indexing.reindex(resource_id)
    assert {p.sk for p in Posting.query("T#violin")} == {f"8#{resource_id}"}
    # When its tenth sale is counted and the schedule re-ranks it
    sell(resource_id, 1)
    indexing.rerank(resource_id)
    # Then every posting is in tier 7 and none is left behind in tier 8
    record = ResourceRecord.get(ResourceRecord.key(resource_id), "META")
    assert int(record.indexed_tier) == 7
    for term in record.indexed_terms:
        assert [p.sk for p in Posting.query(f"T#{term}")] == [f"7#{resource_id}"]
    assert [r["id"] for r in api.get("/search?q=violin").body["items"]] == [resource_id]


def test_a_sale_within_the_tier_leaves_the_postings_alone(api, publisher):
    from chalicelib.catalog import indexing
    from chalicelib.search.store import Posting

    resource_id = publish_one(publisher, "Cello handbook")
    sell(resource_id, 3)
    indexing.reindex(resource_id)
    sell(resource_id, 1)
    with operations_made() as operations:
        indexing.rerank(resource_id)
    assert [p.sk for p in Posting.query("T#cello")] == [f"8#{resource_id}"]
    assert "BatchWriteItem" in operations  # the listing cards, re-ranked
    assert all(int(p.pop) == 3 for p in Posting.query("T#cello"))  # postings untouched


def test_postings_from_before_tiers_are_replaced_on_reindex(api, publisher):
    from chalicelib.catalog import indexing
    from chalicelib.catalog.store import ResourceRecord
    from chalicelib.search.store import Posting

    # Given a resource indexed the old way: postings keyed by its id alone, no tier recorded
    resource_id = publish_one(publisher, "Harp handbook")
    record = ResourceRecord.get(ResourceRecord.key(resource_id), "META")
    with Posting.batch_write() as batch:
        for term in record.indexed_terms:
            batch.delete(Posting(pk=f"T#{term}", sk=f"{int(record.indexed_tier)}#{resource_id}"))
            batch.save(Posting(pk=f"T#{term}", sk=resource_id, pop=0))
    record.update(actions=[ResourceRecord.indexed_tier.remove()])
    # When it is re-indexed (the migration does this for every published resource)
    indexing.reindex(resource_id)
    # Then only tiered postings remain
    assert [p.sk for p in Posting.query("T#harp")] == [f"9#{resource_id}"]
