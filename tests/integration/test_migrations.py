"""The migration runner: ordered, idempotent, resumable, recorded, with a dry run; and the
search-index rebuild it ships with."""
from __future__ import annotations

import pytest

from tests.support import publish


@pytest.fixture
def three_published(api, creator, admin, pump):
    _, pair = creator
    return [publish(api, pump, pair["access_token"], admin[1]["access_token"],
                    title=f"数据科学 {i}")["id"] for i in range(3)]


def wipe_search_index(resource_ids: list[str]) -> None:
    """What a failed deploy of the text analysis could leave: no postings at all."""
    from chalicelib.catalog.store import ResourceRecord
    from chalicelib.search.index import sort_key
    from chalicelib.search.store import Posting

    for resource_id in resource_ids:
        record = ResourceRecord.get(ResourceRecord.key(resource_id), "META")
        with Posting.batch_write() as batch:
            for term in record.indexed_terms:
                batch.delete(Posting(pk=f"T#{term}",
                                     sk=sort_key(int(record.indexed_tier), resource_id)))
        record.update(actions=[ResourceRecord.indexed_terms.set([])])


def found(api) -> set[str]:
    return {r["id"] for r in api.get("/search?q=数据科学").body["items"]}


def test_a_dry_run_counts_and_changes_nothing(api, three_published):
    from chalicelib import migrations

    wipe_search_index(three_published)
    lines: list[str] = []
    outcome = migrations.run(dry_run=True, out=lines.append)
    assert outcome == {"m0001_rebuild_search_index": "would process 3"}
    assert found(api) == set()
    assert any("3/3" in line for line in lines)
    assert migrations.run(dry_run=True, out=lines.append)[
        "m0001_rebuild_search_index"] == "would process 3"


def test_an_interrupted_run_resumes_and_a_finished_one_never_runs_again(api,
                                                                         three_published):
    from chalicelib import migrations

    wipe_search_index(three_published)
    first = migrations.run(max_pages=2, page_size=1, out=lambda _: None)
    assert first == {"m0001_rebuild_search_index": "stopped after 2"}
    assert len(found(api)) == 2
    second = migrations.run(page_size=1, out=lambda _: None)
    assert second == {"m0001_rebuild_search_index": "processed 3"}
    assert found(api) == set(three_published)
    assert migrations.run(out=lambda _: None) == {
        "m0001_rebuild_search_index": "already done"}
    state = migrations.MigrationState.get("MIGRATION#m0001_rebuild_search_index", "STATE")
    assert state.status == "done" and state.finished_at and int(state.processed) == 3
