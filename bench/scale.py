"""Items read and AWS calls per request as the data grows. Target: flat.

Published resources and orders are loaded into the moto server straight into the tables, with
BatchWriteItem (25 items a call) from worker processes: going through the app's services
would take hours at these sizes. The items have the exact shapes the code reads, built with
the code's own functions: a resource's META item, its listing cards (`listing_keys`, `_card`),
its postings (`search.index.postings`); an order's META item (`checkout.new_order`, marked
paid as processing marks it) with its line (`OrderLine.of`); the bench buyer's
entitlements (`processing.entitlements`). Ledger entries and payment links are not loaded,
and descriptions are left empty (their words would only add posting lists): no measured
request reads them.

Each size adds to the previous one. Orders are spread over users (ten each); the bench buyer
owns one order in a hundred, each of another resource, so their library and orders grow with
the size. Every measured request runs once to warm up and once measured, through the real app.
Items read: Query/Scan ScannedCount (the items DynamoDB examines, filtered or not), items
returned by GetItem and BatchGetItem. moto may not report consumed capacity, so none is used.
Two allowances for moto, neither changing what is counted: its per-attribute re-check of the
item size is off while loading (`_moto_puts_unchecked`), and the models' read timeouts are
raised while measuring (`_patient_reads`).

Growing stops when the next size would not load and measure within BENCH_SCALE_SECONDS
(default 600, counted from the start of `run`) at the rates seen so far, or would take the
process (moto keeps every item in it) over BENCH_SCALE_MAX_RSS_GB (default 12); the largest
part of that step which does fit is loaded instead, and reported as such. BENCH_SCALE_SIZES
("1000:10000,10000:100000") overrides the sizes. moto answers every Query by walking the
whole table, so its time per request grows with the data; that is moto's, not DynamoDB's, and
is not what this benchmark measures.

The loaded data stays in the harness's moto server (removing it would take as long as loading
it): run this benchmark last, or on a harness of its own.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from typing import Any

try:
    from bench.harness import ROOT, Harness, start
    from bench.round_trips import record
except ImportError:  # run as a script: bench/ is sys.path[0], not the repository
    from harness import ROOT, Harness, start
    from round_trips import record

# (published resources, orders) at each step, as the issue asks.
SIZES = [(1_000, 10_000), (10_000, 100_000), (100_000, 1_000_000)]
LIMIT = 20
TOPICS = ("python", "design", "finance", "english", "guitar", "exam", "marketing", "photo",
          "cooking", "history")  # each in a tenth of the titles
COMMON = "handbook"  # in every title: its posting list is as long as the catalog
CREATORS = 200
ORDERS_PER_USER = 10
BUYER_SHARE = 100  # the bench buyer owns one order in this many
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
ORDER_SPACING = timedelta(seconds=30)  # 2,880 orders a day, whatever the size
DAY = "2025-01-02"  # the admin's date range: one full day of orders at every size
RELATED = "scale00000000000"  # the resource whose related ones are measured
BATCH = 25
WORKERS = 3
RESOURCE_CHUNK = 1_000
ORDER_CHUNK = 5_000


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def resource_id(i: int) -> str:
    return f"scale{i:011d}"


def _resource_facts(i: int) -> dict[str, Any]:
    """What every item that copies resource `i` agrees on."""
    topic = TOPICS[i % len(TOPICS)]
    creator = i % CREATORS
    return {"topic": topic, "title": f"{topic.title()} {COMMON} {i}",
            "creator_id": f"scalecreator{creator:04d}", "creator_name": f"Creator {creator}",
            "price": 990 + (i % 40) * 100}


# ------------------------------------------------------------------------------ item builders
# These run in the worker processes.

def _resource_items(i: int, categories: list[tuple[str, list[str]]]) -> list[tuple[str, dict]]:
    from chalicelib.catalog.listings import _card, listing_keys
    from chalicelib.catalog.store import LiveFile, ResourceRecord
    from chalicelib.config import settings
    from chalicelib.search.index import postings, terms_of, tier

    cfg = settings()
    facts = _resource_facts(i)
    rid = resource_id(i)
    slug, path = categories[i % len(categories)]
    at = _iso(EPOCH + timedelta(minutes=i))
    r = ResourceRecord(
        pk=ResourceRecord.key(rid), sk="META", resource_id=rid, creator_id=facts["creator_id"],
        creator_name=facts["creator_name"], title=facts["title"],
        kind="ebook",
        price_amount=facts["price"], price_currency="cny", category=slug, category_path=path,
        tags=[facts["topic"], f"level{i % 5}"], status="published", file_upload_id=f"up{i}",
        live_file=LiveFile(upload_id=f"up{i}", key=f"resources/{rid}/file/up{i}/book.pdf",
                           version_id=None, filename="book.pdf", content_type="application/pdf",
                           size=123_456, sha256="0" * 64, version=1),
        sales=i % 997, rating_sum=(i % 5 + 1) * (i % 7), rating_count=i % 7, created_at=at,
        updated_at=at, submitted_at=at, published_at=at, version=4,
        gsi1pk=f"CREATOR#{facts['creator_id']}", gsi1sk=f"{at}#{rid}")
    r.listed_in = listing_keys(r)
    r.indexed_terms = sorted(terms_of(r))
    r.indexed_tier = tier(int(r.sales))
    items = [(cfg.catalog_table, r.serialize())]
    items += [(cfg.listings_table, _card(listing, r).serialize()) for listing in r.listed_in]
    items += [(cfg.search_table, p.serialize()) for p in postings(r, set(r.indexed_terms))]
    return items


def _order_of(i: int, resources: int, buyer_id: str) -> tuple[str, int]:
    """Order `i`'s buyer and resource (index), with `resources` published when it loaded."""
    if i % BUYER_SHARE == 0:  # the buyer's orders are of distinct resources
        return buyer_id, i // BUYER_SHARE
    return f"scaleuser{i // ORDERS_PER_USER:08d}", (i * 7919) % resources


def _recommendation_items(ranges: list[tuple[int, int, int]], buyer_id: str,
                          categories: list[tuple[str, list[str]]]) -> list[tuple[str, dict]]:
    """The recommendations' items the measured requests read, as the order.paid subscriber
    would have left them after every loaded order: every order is replayed in memory through
    `ranking.add_purchase` (orders by number, each user's in turn), counting the co-purchases
    of the bench buyer's seeds and of RELATED, and the purchases under the buyer's top tags.
    The last seven days of orders (2,880 a day at every size) are this week's trending.
    What a request reads of a key is its TOP summary (`store.counts_item`: its KEEP largest
    counts); the count rows behind it are never read by a request, so they are not loaded."""
    from collections import Counter, defaultdict

    from chalicelib.config import settings
    from chalicelib.recommendations import ranking, store
    from chalicelib.recommendations.ranking import Owned, Profile

    table = settings().recommendations_table
    orders = [(i, *_order_of(i, resources, buyer_id)) for begin, end, resources in ranges
              for i in range(begin, end)]

    def owned(i: int, index: int) -> Owned:
        return Owned(resource_id=resource_id(index), order_id=f"scaleorder{i:012d}",
                     category=categories[index % len(categories)][0],
                     tags=[_resource_facts(index)["topic"], f"level{index % 5}"])

    buyer = Profile()
    for i, user, index in orders:
        if user == buyer_id and (change := ranking.add_purchase(buyer, owned(i, index))):
            buyer = change[0]
    watched = set(ranking.seeds(buyer)) | {RELATED}
    tags = set(ranking.top_tags(buyer))
    profiles: dict[str, Profile] = {}
    co: dict[str, Counter] = defaultdict(Counter)
    by_tag: dict[str, Counter] = defaultdict(Counter)
    for i, user, index in orders:
        o = owned(i, index)
        change = ranking.add_purchase(profiles.get(user, Profile()), o)
        if change is None:
            continue
        profiles[user], partners = change
        for partner in partners:
            if o.resource_id in watched:
                co[o.resource_id][partner] += 1
            if partner in watched:
                co[partner][o.resource_id] += 1
        for tag in ranking.counted_tags(o):
            if tag in tags:
                by_tag[tag][o.resource_id] += 1
    per_day = int(timedelta(days=1) / ORDER_SPACING)
    today = datetime.now(UTC).date()
    days: dict[tuple[str, int], Counter] = defaultdict(Counter)
    for age in range(ranking.TREND_DAYS):
        for _, _, index in orders[max(len(orders) - per_day * (age + 1), 0):
                                  max(len(orders) - per_day * age, 0)]:
            rid = resource_id(index)
            days[(today - timedelta(days=age)).isoformat(),
                 ranking.trend_shard(rid, store.SHARDS)][rid] += 1
    items = [(table, store.profile_item(buyer_id, buyer, 1))]
    items += [(table, store.counts_item(store.co_key(rid), dict(c))) for rid, c in co.items()]
    items += [(table, store.counts_item(store.tag_key(t), dict(c))) for t, c in by_tag.items()]
    items += [(table, store.counts_item(store.trend_key(day, shard), dict(c)))
              for (day, shard), c in days.items()]
    return items


MEASURED_CREATOR = "scalecreator0000"


def _revenue_items(ranges: list[tuple[int, int, int]], buyer_id: str
                   ) -> tuple[list[tuple[str, dict]], int]:
    """The revenue items the measured reports read, as the order.paid subscriber would have
    left them after every loaded order: each order's `revenue.paid_changes` (the code's own
    function) summed in memory, then kept where a measured report reads: the platform's and
    MEASURED_CREATOR's counters (every day), and every board row of DAY's month (the top
    lists and the statement). Also the largest item of all the summed ones, in bytes, had
    they all been written: what DynamoDB's 400 KB limit bounds."""
    from chalicelib import outbox
    from chalicelib.analytics import revenue
    from chalicelib.config import settings

    table, bps, total = settings().stats_table, settings().platform_fee_bps, revenue.Changes()
    for begin, end, resources in ranges:
        for i in range(begin, end):
            _, index = _order_of(i, resources, buyer_id)
            facts = _resource_facts(index)
            event = outbox.DomainEvent(
                event_id=f"scale{i}", type="order.paid",
                at=_iso(EPOCH + ORDER_SPACING * i + timedelta(seconds=20)),
                payload={"order_id": f"scaleorder{i:012d}", "currency": "cny",
                         "amount": facts["price"], "lines": [{
                             "resource_id": resource_id(index),
                             "creator_id": facts["creator_id"],
                             "unit_amount": facts["price"]}]})
            total.merge(revenue.paid_changes(event, bps))
    month, items, largest = DAY[:7], [], 0
    for (pk, sk), numbers, keys in total.items():
        item = {"pk": {"S": pk}, "sk": {"S": sk},
                **{k: {"N": str(v)} for k, v in numbers.items()},
                **{k: {"S": v} for k, v in keys.items()}}
        largest = max(largest, len(str(item)))
        read = (pk.startswith(("REV#platform#", f"REV#creator#{MEASURED_CREATOR}#"))
                or (pk.startswith("TOP#") and pk.endswith(month)))
        if read:
            items.append((table, item))
    return items, largest


def _order_items(i: int, resources: int, buyer_id: str) -> list[tuple[str, dict]]:
    from chalicelib.catalog.public import Offer
    from chalicelib.config import settings
    from chalicelib.payments import checkout, processing
    from chalicelib.payments.checkout import new_order
    from chalicelib.payments.store import OrderLine
    from chalicelib.pricing import engine

    cfg = settings()
    user, index = _order_of(i, resources, buyer_id)
    mine = user == buyer_id
    facts = _resource_facts(index)
    rid = resource_id(index)
    resource = Offer(id=rid, title=facts["title"], status="published",
                     price_amount=facts["price"], currency="cny",
                     creator_id=facts["creator_id"], creator_name=facts["creator_name"],
                     members_only=False, member_level=1, category_path=())
    quote = checkout.quote_of(engine.price("cny", [engine.Item(rid, facts["price"])]),
                              [resource])
    order_id = f"scaleorder{i:012d}"
    at = _iso(EPOCH + ORDER_SPACING * i)
    paid = _iso(EPOCH + ORDER_SPACING * i + timedelta(seconds=20))
    o = new_order(order_id, user, f"{user}@paidres.local", quote, [resource])
    o.created_at, o.updated_at = at, paid
    o.gsi1sk = o.gsi2sk = o.gsi3sk = f"{at}#{order_id}"
    o.status, o.gsi3pk, o.paid_at, o.amount_paid = "paid", "STATUS#paid", paid, facts["price"]
    o.session_id, o.payment_intent = f"cs_scale_{i}", f"pi_scale_{i}"
    o.checkout_url = f"http://127.0.0.1/checkout/cs_scale_{i}"
    o.version = 2
    items = [(cfg.orders_table, o.serialize())]
    items += [(cfg.orders_table, line.serialize()) for line in OrderLine.of(o)]
    if mine:
        items += [(cfg.orders_table, ent.serialize())
                  for ent in processing.entitlements(o, "active", paid, "purchase")]
    return items + _community_items(i, user, rid, paid) + _referral_items(i, user, buyer_id,
                                                                          order_id, paid)


def _referral_items(i: int, user: str, referrer: str, order_id: str,
                    at: str) -> list[tuple[str, dict]]:
    """Every 10th order's buyer (a distinct user) was referred by the measured buyer: the
    reward in the referrer's partition (which grows with the orders), the referee's
    referred-by marker, and the referrer's totals."""
    if i % 10 or user == referrer:
        return []
    from chalicelib.config import settings
    from chalicelib.referrals import store

    table = settings().referrals_table
    sk = store.RewardRecord.sort_key(at, order_id)
    records: list = [
        store.RewardRecord(pk=store.user_partition(referrer), sk=sk, referee_id=user,
                           referee_name="B**", order_id=order_id, kind="points", value=500,
                           currency="cny", amount_paid=100, at=at, updated_at=at),
        store.ReferredByRecord(pk=store.user_partition(user), referrer_id=referrer,
                               order_id=order_id, reward_sk=sk, at=at),
        store.SummaryRecord(pk=store.user_partition(referrer), referred=i // 10,
                            points_earned=500 * (i // 10))]
    return [(table, r.serialize()) for r in records]


def _community_items(i: int, user: str, rid: str, at: str) -> list[tuple[str, dict]]:
    """What buying leaves in the community table: the buyer's notification (and its unread
    counter), review and favorite; every 10th order a review and a comment on RELATED (its
    partition grows with the orders), every 50th a report case of that comment in the admin's
    open queue."""
    from chalicelib.community import reviews, store
    from chalicelib.config import settings

    table = settings().community_table
    note_sk = store.NotificationRecord.sort_key(at, f"n{i:012d}")
    # Every 10th order's buyer (a distinct user each time) reviews RELATED as well, so its
    # reviews grow with the orders as its comments do.
    reviewed = RELATED if i % 10 == 0 else rid
    review = reviews.review_id(reviewed, user)
    records: list = [
        store.NotificationRecord(pk=store.NotificationRecord.key(user), sk=note_sk,
                                 notification_id=f"n{i:012d}", type="payment",
                                 title="Payment received", at=at, read=False,
                                 gsi1pk=f"UNREAD#{user}", gsi1sk=note_sk),
        store.CounterRecord(pk=store.NotificationRecord.key(user), unread=i % 97),
        store.ReviewRecord(pk=store.resource_partition(reviewed), sk=store.ReviewRecord
                           .sort_key(review), review_id=review, resource_id=reviewed,
                           user_id=user, author_name="Buyer", rating=1 + i % 5, body="不错",
                           created_at=at, updated_at=at,
                           gsi1pk=store.ReviewRecord.listing(reviewed),
                           gsi1sk=f"{at}#{review}"),
        store.FavoriteRecord(pk=store.FavoriteRecord.key(user), sk=f"RES#{rid}",
                             resource_id=rid, at=at, gsi1pk=store.FavoriteRecord.listing(user),
                             gsi1sk=f"{at}#{rid}")]
    if i % 10 == 0:
        comment = f"{10**13 - 1 - i:013d}{i:08x}"
        records.append(store.CommentRecord(
            pk=store.resource_partition(RELATED), sk=store.CommentRecord.sort_key(comment),
            comment_id=comment, resource_id=RELATED, user_id=user, author_name="Buyer",
            body="请问有配套代码吗？", created_at=at))
        if i % 50 == 0:
            target = f"comment#{RELATED}#{comment}"
            records.append(store.CaseRecord(
                pk=store.ReportRecord.key(target), target=target, target_type="comment",
                resource_id=RELATED, target_id=comment, reports=1, last_reason="spam",
                first_at=at, last_at=at, version=1, gsi1pk=store.OPEN_QUEUE,
                gsi1sk=f"{at}#{target}"))
    return [(table, r.serialize()) for r in records]


def _write(client, items: list[tuple[str, dict]]) -> None:
    for begin in range(0, len(items), BATCH):
        pending: dict[str, list] = {}
        for table, item in items[begin:begin + BATCH]:
            pending.setdefault(table, []).append({"PutRequest": {"Item": item}})
        for _ in range(10):
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems")
            if not pending:
                break
        else:
            raise RuntimeError("DynamoDB left items unprocessed")


_client: Any = None


def _load_chunk(kind: str, begin: int, end: int, params: dict) -> int:
    """Build and write items `begin..end` of `kind`; returns how many items were written."""
    global _client
    if _client is None:
        import boto3
        from botocore.config import Config

        # The items come from the models' own serialize(); validating them again client-side
        # costs as much as building them.
        _client = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                               region_name=os.environ.get("AWS_REGION", "us-east-1"),
                               config=Config(parameter_validation=False,
                                             retries={"mode": "standard", "max_attempts": 5}))
    items: list[tuple[str, dict]] = []
    for i in range(begin, end):
        if kind == "resources":
            items += _resource_items(i, params["categories"])
        else:
            items += _order_items(i, params["resources"], params["buyer_id"])
    _write(_client, items)
    return len(items)


# ------------------------------------------------------------------------------ measuring

def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _requests(h: Harness) -> list[tuple[str, str, str | None]]:
    from chalicelib.accounts import store, tokens

    buyer = h.fresh_token()
    admin, _ = tokens.issue_access_token(h.admin_id, {"buyer", "admin"}, 0)
    if store.session_state(MEASURED_CREATOR) is None:
        store.insert_user(MEASURED_CREATOR, f"{MEASURED_CREATOR}@paidres.local",
                          "Creator 0", {"buyer", "creator"}, "unused", "approved",
                          _iso(EPOCH))
    creator, _ = tokens.issue_access_token(MEASURED_CREATOR, {"buyer", "creator"}, 0)
    return [
        ("GET /resources?limit=20", f"/resources?limit={LIMIT}", None),
        (f"GET /search?q={COMMON} (every resource)", f"/search?q={COMMON}&limit={LIMIT}", None),
        (f"GET /search?q={TOPICS[0]} (a tenth)", f"/search?q={TOPICS[0]}&limit={LIMIT}", None),
        ("GET /me/library", f"/me/library?limit={LIMIT}", buyer),
        ("GET /me/orders", f"/me/orders?limit={LIMIT}", buyer),
        ("GET /me/recommendations", f"/me/recommendations?limit={LIMIT}", buyer),
        ("GET /resources/{id}/related", f"/resources/{RELATED}/related?limit={LIMIT}", None),
        ("GET /resources/trending", f"/resources/trending?limit={LIMIT}", None),
        (f"GET /admin/orders?from={DAY}&to={DAY}",
         f"/admin/orders?from={DAY}&to={DAY}&limit={LIMIT}", admin),
        # The revenue reports read what the order.paid subscriber made of the loaded
        # orders (`_revenue_items`).
        (f"GET /admin/reports/revenue (31 days to {DAY})",
         f"/admin/reports/revenue?from={_days_before(DAY, 30)}&to={DAY}&currency=cny", admin),
        (f"GET /admin/reports/top?from={DAY[:7]}",
         f"/admin/reports/top?from={DAY[:7]}&to={DAY[:7]}&currency=cny", admin),
        (f"GET /admin/reports/top?kind=creators&from={DAY[:7]}",
         f"/admin/reports/top?kind=creators&from={DAY[:7]}&to={DAY[:7]}&currency=cny", admin),
        (f"GET /creator/reports/earnings (31 days to {DAY})",
         f"/creator/reports/earnings?from={_days_before(DAY, 30)}&to={DAY}&currency=cny",
         creator),
        (f"GET /creator/reports/top?from={DAY[:7]}",
         f"/creator/reports/top?from={DAY[:7]}&to={DAY[:7]}&currency=cny", creator),
        (f"GET /creator/statements/{DAY[:7]}", f"/creator/statements/{DAY[:7]}", creator),
        # Community: one Query each, whatever the partition or queue has grown to
        ("GET /resources/{id}/reviews", f"/resources/{RELATED}/reviews?limit={LIMIT}", None),
        ("GET /resources/{id}/comments", f"/resources/{RELATED}/comments?limit={LIMIT}",
         None),
        ("GET /me/notifications", f"/me/notifications?limit={LIMIT}", buyer),
        ("GET /me/favorites", f"/me/favorites?limit={LIMIT}", buyer),
        ("GET /admin/moderation/cases", f"/admin/moderation/cases?limit={LIMIT}", admin),
        ("GET /me/referral", f"/me/referral?limit={LIMIT}", buyer),
    ]


def _days_before(day: str, days: int) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(day) - timedelta(days=days)).isoformat()


def _measure(client, requests) -> dict[str, dict[str, Any]]:
    from chalicelib import vault

    out = {}
    for name, path, token in requests:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client.http.get(path, headers=headers)  # warm-up
        # Secrets are cached for 5 minutes and this benchmark runs for longer: refresh them
        # now, outside the measurement, rather than charge a periodic read to one request.
        vault.load()
        with record() as rec:
            started = time.perf_counter()
            reply = client.http.get(path, headers=headers)
            seconds = time.perf_counter() - started
        assert reply.status_code == 200, (path, reply.status_code, reply.body)
        out[name] = {"calls": len(rec.calls), "items_read": rec.items_read,
                     "detail": rec.summary(), "moto_seconds": round(seconds, 3)}
    return out


# ------------------------------------------------------------------------------ the run

@contextmanager
def _moto_puts_unchecked():
    """moto re-measures the whole item each time it stores one attribute (quadratic in the
    attributes), five sixths of its time per put. The items loaded here are far below
    DynamoDB's 400 KB limit, so the check is off while loading, and back on to measure."""
    from moto.dynamodb.models import dynamo_type

    original = dynamo_type.LimitedSizeDict.__setitem__
    dynamo_type.LimitedSizeDict.__setitem__ = dict.__setitem__
    try:
        yield
    finally:
        dynamo_type.LimitedSizeDict.__setitem__ = original


@contextmanager
def _patient_reads():
    """moto sorts a whole index for every Query on it: around a million items one Query takes
    longer than the app's 10-second read timeout, and the measurement would become retries
    and a 500. The models' timeouts are raised while measuring (what is measured is the number
    of calls and items, not their time) and restored after."""
    from pynamodb.models import Model

    def models(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from models(sub)

    saved = [(m, m.Meta.read_timeout_seconds) for m in set(models(Model))
             if hasattr(m, "Meta") and hasattr(m.Meta, "read_timeout_seconds")]
    for model, _ in saved:
        model.Meta.read_timeout_seconds = 900
        model._connection = None
    try:
        yield
    finally:
        for model, seconds in saved:
            model.Meta.read_timeout_seconds = seconds
            model._connection = None


def _load(kind: str, begin: int, end: int, chunk: int, params: dict, pool) -> int:
    futures = [pool.submit(_load_chunk, kind, b, min(b + chunk, end), params)
               for b in range(begin, end, chunk)]
    return sum(f.result() for f in as_completed(futures))


@dataclass
class _Progress:
    rss_start: int
    resources: int = 0
    orders: int = 0
    resource_items: int = 0
    order_items: int = 0
    load_seconds: float = 0.0
    measure_seconds: float = 0.0

    @property
    def items(self) -> int:
        return self.resource_items + self.order_items


def _round_down(n: float) -> int:
    """Two significant digits: 26,923 -> 26,000."""
    digits = max(len(str(int(n))) - 2, 0)
    return int(n) // 10**digits * 10**digits


def _plan(done: _Progress, wanted: tuple[int, int], seconds_left: float,
          max_rss: float) -> tuple[tuple[int, int] | None, str | None]:
    """The next size: `wanted` if loading and measuring it fits the time and memory left, at
    the rates seen so far; else the largest part of the way there that fits (with the reason
    `wanted` was not loaded), or None when that would be less than half as much again."""
    resources, orders = wanted
    step_items = ((resources - done.resources) * done.resource_items / done.resources
                  + (orders - done.orders) * done.order_items / done.orders)
    seconds_per_item = done.load_seconds / done.items
    # moto walks the whole table for every Query: measuring costs time in proportion to it.
    measure_per_item = done.measure_seconds / done.items
    rss_per_item = max(_rss_bytes() - done.rss_start, 1) / done.items
    left = seconds_left * 0.9  # the estimates are rough; leave a margin
    need = step_items * seconds_per_item + (done.items + step_items) * measure_per_item
    rss_after = _rss_bytes() + step_items * rss_per_item
    if need <= left and rss_after <= max_rss:
        return wanted, None
    fit_time = (left - done.items * measure_per_item) / (
        step_items * (seconds_per_item + measure_per_item))
    fit_memory = (max_rss - _rss_bytes()) / (step_items * rss_per_item)
    if fit_time <= fit_memory:
        why = (f"would need ~{need:.0f} s to load and measure at "
               f"{1 / seconds_per_item:.0f} items/s; {seconds_left:.0f} s of the time budget "
               "left")
    else:
        why = (f"would take the process to ~{rss_after / 1024**3:.1f} GB at "
               f"{rss_per_item / 1024:.1f} KB an item in moto (limit "
               f"{max_rss / 1024**3:.0f} GB)")
    fraction = max(min(fit_time, fit_memory), 0.0)
    partial = _round_down(done.resources + fraction * (resources - done.resources))
    if partial < 1.5 * done.resources:
        return None, why
    return (partial, partial * orders // resources), why


def _env_sizes() -> list[tuple[int, int]]:
    raw = os.environ.get("BENCH_SCALE_SIZES")  # e.g. "1000:10000,10000:100000"
    if not raw:
        return SIZES
    return [tuple(int(n) for n in pair.split(":")) for pair in raw.split(",")]  # type: ignore


def run(h: Harness, sizes: list[tuple[int, int]] | None = None, seconds: float | None = None,
        max_rss_gb: float | None = None, quick: bool = False,
        verbose: bool = True) -> dict[str, Any]:
    """Load each size in turn and measure; `quick`: the smallest size only."""
    from chalice.test import Client

    import app as app_module
    from chalicelib.catalog import categories
    from chalicelib.catalog.seed import DEFAULT_CATEGORIES

    sizes = sizes or _env_sizes()
    if quick:
        sizes = sizes[:1]
    budget = seconds if seconds is not None else float(os.environ.get("BENCH_SCALE_SECONDS",
                                                                      600))
    max_rss = (max_rss_gb if max_rss_gb is not None
               else float(os.environ.get("BENCH_SCALE_MAX_RSS_GB", 12))) * 1024**3
    say: Callable[[str], None] = print if verbose else (lambda _: None)
    started = time.monotonic()
    params = {"categories": [(slug, categories.path(slug)) for slug, _, _ in DEFAULT_CATEGORIES],
              "buyer_id": h.buyer_id, "order_ranges": []}
    client = Client(app_module.app, stage_name="local", project_dir=str(ROOT))
    requests = _requests(h)
    results: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    done = _Progress(rss_start=_rss_bytes())
    context = get_context("spawn")  # moto's threads are running: never fork this process
    with ProcessPoolExecutor(max_workers=WORKERS, mp_context=context) as pool:
        for wanted in sizes:
            size, why = (wanted, None) if not results else _plan(
                done, wanted, budget - (time.monotonic() - started), max_rss)
            if why:
                skipped.append({"resources": wanted[0], "orders": wanted[1], "why": why})
                say(f"not loading {wanted[0]:,} resources / {wanted[1]:,} orders: {why}")
            if size is None:
                break
            resources, orders = size
            say(f"loading up to {resources:,} resources and {orders:,} orders ...")
            began = time.monotonic()
            with _moto_puts_unchecked():
                done.resource_items += _load("resources", done.resources, resources,
                                             RESOURCE_CHUNK, params, pool)
                params["resources"] = resources
                done.order_items += _load("orders", done.orders, orders, ORDER_CHUNK, params,
                                          pool)
                params["order_ranges"].append((done.orders, orders, resources))
                from chalicelib import aws

                recs = _recommendation_items(params["order_ranges"], h.buyer_id,
                                             params["categories"])
                _write(aws.dynamodb(), recs)
                done.order_items += len(recs)
                rev, largest = _revenue_items(params["order_ranges"], h.buyer_id)
                _write(aws.dynamodb(), rev)
                done.order_items += len(rev)
            done.load_seconds += time.monotonic() - began
            done.resources, done.orders = resources, orders
            began = time.monotonic()
            with _patient_reads():
                # Tokens issued now: a size can take longer to load than a token lives.
                measured = _measure(client, _requests(h))
            done.measure_seconds = time.monotonic() - began
            results.append({"resources": resources, "orders": orders,
                            "partial": size != wanted, "items_loaded": done.items,
                            "load_seconds": round(done.load_seconds, 1),
                            "measure_seconds": round(done.measure_seconds, 1),
                            "rss_gb": round(_rss_bytes() / 1024**3, 2),
                            "largest_revenue_item": largest,
                            "largest_recommendation_item": max(
                                (len(str(item)) for _, item in recs), default=0),
                            "requests": measured})
            say(f"  {done.items:,} items in {done.load_seconds:.0f} s "
                f"({done.items / done.load_seconds:.0f} items/s); measured in "
                f"{done.measure_seconds:.0f} s; process RSS {_rss_bytes() / 1024**3:.1f} GB")
            if size != wanted:
                break
    verdicts = _verdicts(results, [name for name, _, _ in requests])
    result = {"sizes": results, "skipped": skipped, "verdicts": verdicts,
              "not_flat": [name for name, verdict in verdicts.items()
                           if verdict.startswith(("NOT", "one size"))],
              "seconds": round(time.monotonic() - started, 1),
              "table": table(results, verdicts, skipped)}
    return result


def report(result: dict[str, Any]) -> str:
    """The section bench/run.py writes to docs/BENCHMARKS.md."""
    if len(result["sizes"]) < 2:
        flat = "one size only, flatness not tested"
    elif not result["not_flat"]:
        flat = "flat (search: bounded, see its row)" if any(
            v.startswith("flat calls") for v in result["verdicts"].values()) else "flat"
    else:
        flat = "not flat: " + ", ".join(result["not_flat"])
    return (f"Items read and AWS calls per request (one request after a warm-up, limit "
            f"{LIMIT}), loaded with BatchWriteItem into moto on this machine in "
            f"{result['seconds']:.0f} s. Target: flat. Result: {flat}.\n\n"
            + result["table"])


def _verdicts(results: list[dict], names: list[str]) -> dict[str, str]:
    from chalicelib.search.index import MAX_POSTINGS

    bounds = _bounds()
    out = {}
    for name in names:
        seen = [(r["requests"][name]["calls"], r["requests"][name]["items_read"])
                for r in results]
        if len(seen) < 2:
            out[name] = "one size only: cannot tell"
        elif len(set(seen)) == 1:
            out[name] = "flat"
        elif name.startswith("GET /search"):
            # One-term searches: one Query of at most MAX_POSTINGS postings (the term's best
            # sellers) and one BatchGetItem of the page, whatever the catalog size.
            bound = MAX_POSTINGS + LIMIT
            calls = {c for c, _ in seen}
            if len(calls) == 1 and all(items <= bound for _, items in seen):
                out[name] = (f"flat calls ({calls.pop()}); items read grow with the term's "
                             f"postings only up to MAX_POSTINGS={MAX_POSTINGS:,} (+ the page),"
                             " one Query: bounded, the same at any size beyond")
            else:
                out[name] = "NOT flat"
        elif name in bounds:
            # A page of candidates whatever the size: their cards (and the buyer's
            # entitlements of them: found only for what they own beyond the profile's newest
            # OWNED_CAP), the week's trending items, the seeds' and top tags' counts.
            bound = bounds[name]
            calls = {c for c, _ in seen}
            if len(calls) == 1 and all(items <= bound for _, items in seen):
                out[name] = (f"flat calls ({calls.pop()}); items read at most {bound} "
                             "(bounded by the candidates, not the data)")
            else:
                out[name] = "NOT flat"
        else:
            out[name] = "NOT flat"
    return out


def _bounds() -> dict[str, int]:
    from chalicelib.recommendations import ranking, store

    trend = ranking.TREND_DAYS * store.SHARDS
    cards = 2 * ranking.CANDIDATES  # cards + entitlements
    # (the session check's item, the profile, ...)
    return {"GET /me/recommendations": 2 + trend + ranking.SEEDS + ranking.TOP_TAGS + cards,
            "GET /resources/{id}/related": 2 + ranking.CANDIDATES + ranking.CANDIDATES,
            # the best sellers' Query, when the week is quiet: at most 100
            "GET /resources/trending": trend + ranking.CANDIDATES + 100}



def table(results: list[dict], verdicts: dict[str, str], skipped: list[dict]) -> str:
    sizes = [f"{r['resources']:,} res / {r['orders']:,} orders"
             + (" (largest that fit)" if r["partial"] else "") for r in results]
    lines = ["| request | " + " | ".join(sizes) + " | verdict |",
             "|---" * (len(sizes) + 2) + "|"]
    for name, verdict in verdicts.items():
        cells = [f"{r['requests'][name]['items_read']:,} items, {r['requests'][name]['calls']} "
                 f"calls" for r in results]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {verdict} |")
    lines.append("")
    for r in results:
        lines.append(f"- {r['resources']:,} resources / {r['orders']:,} orders: "
                     f"{r['items_loaded']:,} items loaded in {r['load_seconds']} s "
                     f"(cumulative), process RSS {r['rss_gb']} GB; largest derived item "
                     f"(DynamoDB's limit: 400 KB): revenue "
                     f"{r.get('largest_revenue_item', 0) / 1024:.1f} KB, recommendations "
                     f"{r.get('largest_recommendation_item', 0) / 1024:.1f} KB; calls: "
                     + "; ".join(f"{n}: {m['detail']}" for n, m in r["requests"].items()))
    for s in skipped:
        lines.append(f"- not reached: {s['resources']:,} resources / {s['orders']:,} orders "
                     f"({s['why']})")
    return "\n".join(lines)


if __name__ == "__main__":
    harness = start()
    try:
        outcome = run(harness)
    finally:
        harness.stop()
    print(report(outcome))
