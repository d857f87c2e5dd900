"""Recommendations: co-purchase, tag and trending counts kept by the order events (each applied
once), and the three routes that read them: a buyer's own (never what they own, never what is
not published; trending while their library is empty), a resource's related ones, trending."""
from __future__ import annotations

import uuid
from datetime import date

import msgspec
import pytest

from chalicelib import db, outbox
from chalicelib.analytics import rollup
from chalicelib.recommendations import events, store
from tests.support import (
    PDF_BYTES,
    assert_envelope,
    drain,
    post_form,
    post_webhooks,
    take_webhooks,
)


@pytest.fixture
def shelf(api, catalog, pump):
    """Five published resources in two categories (through the real draft, upload and review
    flow), each priced above the smallest charge."""
    from chalicelib.catalog import moderation, resources
    from chalicelib.catalog.schemas import Money, ResourceIn

    creator, _ = api.creator_session()
    admin, _ = api.admin_session()
    books = {"pandas": ("Pandas in practice", ["python", "data"], "data"),
             "numpy": ("NumPy basics", ["python", "data"], "data"),
             "sql": ("SQL for analysts", ["sql"], "data"),
             "ui": ("Interface design", ["ui"], "design"),
             "type": ("Typography", ["ui", "type"], "design")}
    ids = {}
    for name, (title, tags, category) in books.items():
        r = resources.create(creator["id"], "Tester", ResourceIn(
            title=title, description="", category=category, kind="ebook", tags=tags,
            price=Money(amount=1000, currency="cny")))
        form = resources.create_upload(creator["id"], r.id, "a.pdf", "application/pdf",
                                       len(PDF_BYTES), "file")
        post_form({"url": form.url, "fields": form.fields}, PDF_BYTES)
        ids[name] = r.id
    drain(pump, rounds=len(ids) + 5)
    for resource_id in ids.values():
        resources.submit(creator["id"], resource_id)
        moderation.approve(admin["id"], resource_id)
    return ids


@pytest.fixture
def buy(api, stripe, pump):
    """Pay for resources as a buyer, through Checkout and the signed webhooks, and deliver
    the domain events."""
    def buy(token: str, *resource_ids: str) -> str:
        reply = api.post("/checkout", {"items": [{"resource_id": r} for r in resource_ids]},
                         token=token)
        assert reply.status == 201, reply.body
        stripe.pay(reply.body["checkout_session_id"])
        post_webhooks(api, take_webhooks(stripe), pump)
        drain(pump, rounds=10)
        return reply.body["order"]["id"]

    return buy


def _token(api) -> str:
    return api.user_session()[1]["access_token"]


def _ids(reply) -> list[str]:
    assert reply.status == 200, reply.body
    return [card["id"] for card in reply.body["items"]]


def test_also_bought_reflects_co_purchases(api, shelf, buy):
    # Given one buyer who bought pandas with the interface book, and another pandas alone
    buy(_token(api), shelf["pandas"], shelf["ui"])
    newcomer = _token(api)
    buy(newcomer, shelf["pandas"])
    # Then pandas' related lists the interface book (another category: bought with it)
    related = _ids(api.get(f"/resources/{shelf['pandas']}/related"))
    assert shelf["ui"] in related
    assert related.index(shelf["ui"]) < related.index(shelf["sql"])
    # And the interface book's related lists pandas
    assert shelf["pandas"] in _ids(api.get(f"/resources/{shelf['ui']}/related"))
    # And the second buyer is recommended the interface book first, never pandas
    reply = api.get("/me/recommendations", token=newcomer)
    mine = _ids(reply)
    assert reply.body["basis"] == "personal"
    assert mine[0] == shelf["ui"] and shelf["pandas"] not in mine


def test_recommendations_exclude_owned_and_unpublished(api, shelf, buy, admin):
    # Given others bought pandas with numpy and with sql, and the buyer owns pandas and sql
    buy(_token(api), shelf["pandas"], shelf["numpy"])
    buy(_token(api), shelf["pandas"], shelf["sql"])
    buyer = _token(api)
    buy(buyer, shelf["pandas"])
    buy(buyer, shelf["sql"])
    assert shelf["numpy"] in _ids(api.get("/me/recommendations", token=buyer))
    # When numpy is unpublished after it was counted
    reply = api.post(f"/admin/resources/{shelf['numpy']}/unpublish", {"reason": "complaint"},
                     token=admin[1]["access_token"])
    assert reply.status == 200, reply.body
    # Then neither it nor anything the buyer owns is recommended
    mine = _ids(api.get("/me/recommendations", token=buyer))
    assert not {shelf["numpy"], shelf["pandas"], shelf["sql"]} & set(mine)
    assert shelf["numpy"] not in _ids(api.get(f"/resources/{shelf['pandas']}/related"))
    assert shelf["numpy"] not in _ids(api.get("/resources/trending"))


def test_a_new_user_and_anyone_get_trending(api, shelf, buy):
    # Given the interface book was bought three times and sql once
    for _ in range(3):
        buy(_token(api), shelf["ui"])
    buy(_token(api), shelf["sql"])
    # Then a user with an empty library gets trending, most bought first
    reply = api.get("/me/recommendations?limit=2", token=_token(api))
    assert reply.body["basis"] == "trending"
    assert _ids(reply) == [shelf["ui"], shelf["sql"]]
    # And so does an anonymous visitor; a quiet week is made up from the best sellers
    trending = api.get("/resources/trending")
    assert _ids(trending)[:2] == [shelf["ui"], shelf["sql"]]
    assert set(_ids(trending)) == set(shelf.values())


def test_related_shares_tags_or_category_and_excludes_itself(api, shelf):
    related = _ids(api.get(f"/resources/{shelf['pandas']}/related?limit=3"))
    # numpy: same category and both tags; sql: the category only; design books: nothing
    assert related == [shelf["numpy"], shelf["sql"]]
    cards = api.get(f"/resources/{shelf['type']}/related").body["items"]
    assert [c["id"] for c in cards] == [shelf["ui"]]
    assert {"title", "price", "category", "tags", "creator", "counts"} <= set(cards[0])


def test_unknown_or_unpublished_resources_and_bad_limits_are_refused(api, shelf, admin):
    assert_envelope(api.get(f"/resources/{uuid.uuid4().hex}/related"), 404,
                    "resource_not_found")
    api.post(f"/admin/resources/{shelf['sql']}/unpublish", {"reason": "complaint"},
             token=admin[1]["access_token"])
    assert_envelope(api.get(f"/resources/{shelf['sql']}/related"), 404, "resource_not_found")
    assert_envelope(api.get("/me/recommendations"), 401)
    assert_envelope(api.get("/resources/trending?limit=51"), 400)
    assert _ids(api.get("/resources/trending?limit=50")) is not None


def _event(kind: str, **payload) -> outbox.DomainEvent:
    return outbox.DomainEvent(event_id=uuid.uuid4().hex, type=kind, at=db.now_iso(),
                              payload=payload)


def _deliver(*batch: outbox.DomainEvent) -> None:
    """One SQS batch of these events through the analytics consumer, every record handled."""
    records = [{"messageId": uuid.uuid4().hex, "body": msgspec.json.encode(e).decode()}
               for e in batch]
    assert rollup.handle(records) == {"batchItemFailures": []}


def _counts(pk_key: dict) -> dict[str, int]:
    [items] = db.batch_read(store.read([pk_key]))
    return store.counts_in(store.by_key(items), pk_key)


def test_a_redelivered_order_paid_changes_nothing(aws):
    # Given u1 owned r0, then paid for r1 and r2 in one order, delivered three times
    first = _event("order.paid", order_id="o0", user_id="u1", resource_ids=["r0"])
    paid = _event("order.paid", order_id="o1", user_id="u1", resource_ids=["r1", "r2"])
    _deliver(first)
    _deliver(paid, paid)
    _deliver(paid)
    # Then each pair is counted once, both ways, and each purchase once today
    assert _counts(store.co_key("r1")) == {"r0": 1, "r2": 1}
    assert _counts(store.co_key("r0")) == {"r1": 1, "r2": 1}
    profile, version = store.load_profile("u1")
    assert [o.resource_id for o in profile.owned] == ["r0", "r1", "r2"] and version == 3
    day = date.fromisoformat(paid.at[:10])
    [items] = db.batch_read(store.read(store.trend_keys(day)))
    trend = store.trend_in(store.by_key(items), day)
    assert trend == {0: {"r0": 1, "r1": 1, "r2": 1}}


def test_a_full_refund_drops_the_order_from_the_profile(aws):
    _deliver(_event("order.paid", order_id="o1", user_id="u1", resource_ids=["r1"]),
             _event("order.paid", order_id="o2", user_id="u1", resource_ids=["r2"]))
    partial = _event("order.refunded", order_id="o1", user_id="u1", amount_paid=1000,
                     amount_refunded=400)
    full = _event("order.refunded", order_id="o1", user_id="u1", amount_paid=1000,
                  amount_refunded=1000)
    for e in (partial, full, full):
        events.on_order_refunded(e)
    profile, _ = store.load_profile("u1")
    assert [o.resource_id for o in profile.owned] == ["r2"]
    # The counts stay: the pair was bought together once
    assert _counts(store.co_key("r2")) == {"r1": 1}


def _drafts(count: int, tags: list[str]) -> list[str]:
    """Resources in the catalog (drafts: what a purchase is counted under is read whatever
    the status), in creation order."""
    from chalicelib.catalog import resources
    from chalicelib.catalog.schemas import Money, ResourceIn

    return [resources.create("creator1", "Tester", ResourceIn(
        title=f"Book {i}", description="", category="data", kind="ebook", tags=tags,
        price=Money(amount=1000, currency="cny"))).id for i in range(count)]


def test_a_summary_keeps_the_largest_counts_however_many_resources_are_counted(catalog):
    # Given KEEP + 30 resources under one tag, the i-th bought i % 4 + 1 times
    ids = _drafts(store.KEEP + 30, ["common"])
    bought = {rid: i % 4 + 1 for i, rid in enumerate(ids)}
    paid = [_event("order.paid", order_id=f"o{rid}{k}", user_id=f"u{rid}{k}",
                   resource_ids=[rid]) for rid, times in bought.items() for k in range(times)]
    for start in range(0, len(paid), 100):
        _deliver(*paid[start:start + 100])
    # Then the tag's summary holds KEEP of them, each exactly, none bought less than one
    # left out (which of equals it keeps is the index's order)
    summary = _counts(store.tag_key("common"))
    assert len(summary) == store.KEEP
    assert all(bought[rid] == n for rid, n in summary.items())
    left_out = set(bought) - set(summary)
    assert min(summary.values()) >= max(bought[rid] for rid in left_out)
    # And every resource's count row is exact, including those the summary leaves out
    rows = {row.sk[2:]: int(row.n) for row in store.CountRow.query(
        "TAG#common", store.CountRow.sk.startswith(store.ROW))}
    assert rows == bought


def test_an_older_view_never_replaces_a_newer_summary(catalog):
    # Given a resource bought twice under its tag, and its summary refreshed
    [rid] = _drafts(1, ["t"])
    _deliver(*[_event("order.paid", order_id=f"o{k}", user_id=f"u{k}", resource_ids=[rid])
               for k in range(2)])
    # When a refresh that saw less (an index behind its table) writes afterwards
    store.CountRow(pk="TAG#t", sk=f"R#{rid}", n=1, rankpk="TAG#t").save()
    store.refresh({"TAG#t": set()})
    # Then the summary keeps the larger total
    assert _counts(store.tag_key("t")) == {rid: 2}
