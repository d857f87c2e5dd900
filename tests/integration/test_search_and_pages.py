"""Search in Chinese and Latin text, and cursor pagination without duplicates or gaps."""
from __future__ import annotations

from tests.support import assert_envelope, publish_one


def ids(reply) -> list[str]:
    assert reply.status == 200, reply.body
    return [r["id"] for r in reply.body["items"]]


def test_chinese_queries_find_chinese_titles_by_bigrams(api, publisher):
    book = publish_one(publisher, "Python数据分析实战")
    other = publish_one(publisher, "数据库系统概论")
    assert ids(api.get("/search?q=数据分析")) == [book]
    assert ids(api.get("/search?q=分析实战")) == [book]
    assert set(ids(api.get("/search?q=数据"))) == {book, other}
    assert ids(api.get("/search?q=析")) == [book]


def test_latin_queries_ignore_case_width_and_punctuation(api, publisher):
    book = publish_one(publisher, "python for Data-Science!")
    assert ids(api.get("/search?q=PYTHON")) == [book]
    assert ids(api.get("/search?q=ｐｙｔｈｏｎ")) == [book]
    assert ids(api.get("/search?q=data science")) == [book]
    assert ids(api.get("/search?q=python,,,")) == [book]


def test_search_covers_description_and_tags(api, publisher):
    book = publish_one(publisher, "Book", description="讲解机器学习的基础", tags=("深度学习",))
    assert ids(api.get("/search?q=机器学习")) == [book]
    assert ids(api.get("/search?q=深度学习")) == [book]


def test_full_matches_rank_before_partial_ones_and_weak_ones_are_dropped(api, publisher):
    partial = publish_one(publisher, "Python数据库")  # python, 数据: 2 of 4 terms
    weak = publish_one(publisher, "Python入门")  # python: 1 of 4 terms
    full = publish_one(publisher, "Python数据分析")
    found = ids(api.get("/search?q=python 数据分析"))
    assert found == [full, partial] and weak not in found


def test_unpublished_resources_are_not_found(api, publisher):
    publisher("Python数据分析实战")  # uploaded and checked, never reviewed
    assert ids(api.get("/search?q=数据分析")) == []


def test_query_length_is_bounded(api):
    assert_envelope(api.get("/search?q=" + "x" * 101), 400)
    assert_envelope(api.get("/search?q="), 400)
    assert_envelope(api.get("/search"), 400)
    assert api.get("/search?q=" + "x" * 100).status == 200


def test_a_search_cursor_is_bound_to_its_query(api, publisher):
    made = [publisher(f"Python {i}") for i in range(3)]
    publisher.approve_all(made)
    first = api.get("/search?q=python&limit=2").body
    assert len(first["items"]) == 2 and first["next_cursor"]
    assert_envelope(api.get(f"/search?q=java&cursor={first['next_cursor']}"), 400,
                    "invalid_cursor")
    rest = ids(api.get(f"/search?q=python&limit=2&cursor={first['next_cursor']}"))
    assert sorted(rest + [r["id"] for r in first["items"]]) == sorted(made)


def walk(api, path: str, limit: int) -> list[str]:
    seen, cursor = [], None
    while True:
        sep = "&" if "?" in path else "?"
        reply = api.get(f"{path}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        seen += ids(reply)
        cursor = reply.body["next_cursor"]
        if not cursor:
            return seen


def test_pagination_over_250_resources_has_no_duplicates_or_gaps(api, publisher):
    made = [publisher(f"资源 {i:03d}", tags=("bulk",), check=False) for i in range(250)]
    publisher.approve_all(made)
    for path in ("/resources", "/resources?sort=popular", "/resources?sort=rating",
                 "/resources?category=tech", "/resources?tag=bulk", "/search?q=资源"):
        seen = walk(api, path, 33)
        assert len(seen) == len(set(seen)) == 250, path
        assert set(seen) == set(made), path
    newest = walk(api, "/resources", 100)
    assert newest == list(reversed(made))
