"""AWS round trips per request on each hot route, against the documented minimum.

Every botocore call (PynamoDB's too) passes through BaseClient._make_api_call; a recorder wraps
it and keeps the calls this thread makes while a measurement is open, with the application
frames that made them. Stripe calls are counted at the stand-in. The routes run in-process
through the real app (Chalice's test client and the payment consumer's Lambda handler), each
once to warm up and once measured: what only the warm-up did (secrets from SSM, the queue URL,
the Stripe client...) is reported as "first call only", not charged to the route.

A route over its budget is listed in `failures`; bench/run.py exits non-zero on any.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

try:
    from bench.harness import ROOT, Harness, start
except ImportError:  # run as a script: bench/ is sys.path[0], not the repository
    from harness import ROOT, Harness, start

try:  # bench/ on sys.path (bench/run.py, `python bench/<name>.py`): the copy cost.py uses
    import meter
except ImportError:  # python -m bench.<name>
    from bench import meter

READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem",
                    "TransactWriteItems"})
APP_CODE = (str(ROOT / "chalicelib"), str(ROOT / "app.py"))
SEARCHES = {1: "python", 2: "python pandas", 3: "python pandas design"}


# ------------------------------------------------------------------------------ recording

@dataclass
class Call:
    service: str  # botocore's service name, or "stripe"
    operation: str
    where: tuple[str, ...] = ()  # application frames, innermost first
    items: int = 0  # items the response carried (reads only)
    scanned: int = 0  # items DynamoDB examined (Query/Scan: ScannedCount; else = items)

    @property
    def category(self) -> str:
        if self.service == "dynamodb":
            if self.operation in READS:
                return "read"
            if self.operation in WRITES:
                return "write"
        if self.service in ("sqs", "s3", "ssm", "stripe"):
            return self.service
        return "other"

    @property
    def label(self) -> str:
        return self.operation if self.service in ("dynamodb", "stripe") \
            else f"{self.service}:{self.operation}"


@dataclass
class Recording:
    calls: list[Call] = field(default_factory=list)

    def count(self) -> Counter:
        return Counter(c.label for c in self.calls)

    def by_category(self) -> Counter:
        return Counter(c.category for c in self.calls)

    @property
    def items_read(self) -> int:
        return sum(c.scanned for c in self.calls if c.category == "read")

    def summary(self, calls: list[Call] | None = None) -> str:
        counted = Counter(c.label for c in (self.calls if calls is None else calls))
        return " + ".join(f"{n} {op}" for op, n in sorted(counted.items())) or "none"




def _app_frames(limit: int = 4) -> tuple[str, ...]:
    frames = []
    frame = sys._getframe(1)
    while frame is not None and len(frames) < limit:
        filename = frame.f_code.co_filename
        if filename.startswith(APP_CODE):
            frames.append(f"{os.path.relpath(filename, ROOT)}:{frame.f_lineno} "
                          f"{frame.f_code.co_name}")
        frame = frame.f_back
    return tuple(frames)


def _items(operation: str, response: dict) -> tuple[int, int]:
    if operation in ("Query", "Scan"):
        count = int(response.get("Count", 0))
        return count, int(response.get("ScannedCount", count))
    if operation == "GetItem":
        n = 1 if response.get("Item") else 0
        return n, n
    if operation == "BatchGetItem":
        n = sum(len(items) for items in response.get("Responses", {}).values())
        return n, n
    if operation == "TransactGetItems":
        n = sum(1 for r in response.get("Responses", []) if r.get("Item"))
        return n, n
    return 0, 0


@contextlib.contextmanager
def record():
    """`with record() as r:` keeps the AWS calls this thread makes inside the block."""
    recording = Recording()

    def keep(service: str, operation: str, params: dict):
        call = Call(service, operation, _app_frames())
        recording.calls.append(call)

        def done(response: dict) -> None:
            call.items, call.scanned = _items(operation, response)
        return done

    with meter.watch(keep):
        yield recording


def count_stripe(standin) -> None:
    """Count the stand-in's HTTP requests as calls of whichever recording is open on the thread
    that caused them. The stand-in answers on its own thread, so the caller's recording is
    found through the open request instead of thread-local state."""
    original = standin.handle
    standin.open_recording = None

    def handle(method, target, headers, body):
        recording = standin.open_recording
        if recording is not None and target.startswith("/v1/"):
            path = re.sub(r"/[a-z]+_[A-Za-z0-9_]+", "/{id}", target.split("?")[0])
            recording.calls.append(Call("stripe", f"{method} {path}"))
        return original(method, target, headers, body)

    standin.handle = handle


# ------------------------------------------------------------------------------ budgets

@dataclass(frozen=True)
class Slot:
    """Up to `most` calls whose label is one of `ops` are within the budget."""

    ops: frozenset[str]
    most: int
    text: str


def slot(ops: str | set[str], most: int, text: str | None = None) -> Slot:
    ops = frozenset({ops} if isinstance(ops, str) else ops)
    return Slot(ops, most, text or f"{most} {'/'.join(sorted(ops))}")


def over_budget(calls: list[Call], budget: list[Slot]) -> list[Call]:
    """The calls no slot of the budget has room for."""
    room = [s.most for s in budget]
    extra = []
    for call in calls:
        for i, s in enumerate(budget):
            if call.label in s.ops and room[i] > 0:
                room[i] -= 1
                break
        else:
            extra.append(call)
    return extra


@dataclass
class Row:
    route: str
    budget: list[Slot]
    measured: Recording
    first: Recording
    notes: str = ""

    @property
    def extra(self) -> list[Call]:
        return over_budget(self.measured.calls, self.budget)

    @property
    def ok(self) -> bool:
        return not self.extra

    @property
    def first_only(self) -> list[str]:
        """Calls the warm-up made that the measured request did not."""
        left = self.measured.count()
        only = []
        for call in self.first.calls:
            if left[call.label] > 0:
                left[call.label] -= 1
            else:
                only.append(call.label)
        return only

    def as_dict(self) -> dict[str, Any]:
        return {"route": self.route, "measured": dict(self.measured.count()),
                "by_category": dict(self.measured.by_category()),
                "budget": [s.text for s in self.budget], "ok": self.ok,
                "first_call_only": self.first_only, "notes": self.notes,
                "over_budget": [{"call": c.label, "from": list(c.where)} for c in self.extra]}


# ------------------------------------------------------------------------------ the routes

def _stripe_env(h: Harness, inbox: list[tuple[bytes, str]]):
    """A stand-in with the app's Stripe client pointed at it (the settings are cached already,
    so they are read again; the previous state is restored afterwards by `_restore`)."""
    from chalicelib.config import settings
    from chalicelib.payments import gateway
    from devstack.stripe_standin import StripeStandIn

    standin = StripeStandIn(settings().stripe_webhook_secrets[0],
                            lambda body, signature: inbox.append((body, signature)))
    previous = os.environ.get("STRIPE_API_BASE")
    os.environ["STRIPE_API_BASE"] = standin.start()
    settings.cache_clear()
    assert settings().stripe_api_base == standin.base_url
    gateway.forget()
    count_stripe(standin)

    def restore() -> None:
        standin.stop()
        if previous is None:
            os.environ.pop("STRIPE_API_BASE", None)
        else:
            os.environ["STRIPE_API_BASE"] = previous
        settings.cache_clear()
        gateway.forget()

    return standin, restore


def _new_buyer() -> str:
    from chalicelib.accounts import registration, tokens

    user = registration.register(f"rt-{uuid.uuid4().hex[:12]}@paidres.local",
                                 "round trip buyer passphrase", "Round trip buyer")
    return tokens.issue_access_token(user.user_id, user.roles, user.session_epoch)[0]


def _bought(user_id: str, resource_ids: list[str]) -> None:
    """An order.paid event of `user_id` for these resources, applied by the
    recommendations' subscriber as the domain-events consumer would."""
    from chalicelib import db, outbox
    from chalicelib.recommendations import events

    events.on_order_paid(outbox.DomainEvent(
        event_id=uuid.uuid4().hex, type="order.paid", at=db.now_iso(),
        payload={"order_id": uuid.uuid4().hex, "user_id": user_id,
                 "resource_ids": resource_ids}))


def _forget_process_caches() -> None:
    """Start as a fresh Lambda would, so the warm-up shows what a first call pays."""
    from chalicelib import aws, vault
    from chalicelib.catalog import categories

    vault.forget()
    categories.forget()
    aws.forget_queue_urls()


def run(h: Harness, verbose: bool = True) -> dict[str, Any]:
    from chalice.test import Client

    import app as app_module
    from chalicelib.config import settings
    from chalicelib.payments import processing

    inbox: list[tuple[bytes, str]] = []
    standin, restore = _stripe_env(h, inbox)
    rows: list[Row] = []
    client = Client(app_module.app, stage_name="local", project_dir=str(ROOT))
    try:
        _forget_process_caches()

        def http(method: str, path: str, token: str | None = None, body: Any = None,
                 headers: dict | None = None, expect: int = 200) -> Recording:
            sent = {"Content-Type": "application/json", **(headers or {})}
            if token:
                sent["Authorization"] = f"Bearer {token}"
            raw = body if isinstance(body, bytes) or body is None else json.dumps(body)
            with record() as rec:
                standin.open_recording = rec
                reply = getattr(client.http, method.lower())(path, headers=sent, body=raw)
                standin.open_recording = None
            assert reply.status_code == expect, (method, path, reply.status_code, reply.body)
            is_json = "json" in str(reply.headers.get("Content-Type", "application/json"))
            rec.reply = json.loads(reply.body) if reply.body and is_json else None
            return rec

        def measure(route: str, budget: list[Slot], call: Callable[[], Recording],
                    notes: str = "", warm: Callable[[], Recording] | None = None) -> Row:
            first = (warm or call)()
            row = Row(route, budget, call(), first, notes)
            rows.append(row)
            return row

        # Download: the access check and the file are one BatchGetItem; counting and logging
        # the download is one transaction.
        # Every authenticated request also reads the session (chalicelib/accounts/sessions):
        # one consistent GetItem, so that revocation counts on the next request.
        session = slot("GetItem", 1, "1 GetItem (session check)")
        # A request's analytics events leave together, after its response is made.
        events = slot("sqs:SendMessage", 1, "1 SendMessage (the request's analytics events)")
        measure("POST /me/library/{id}/download",
                [session, slot(READS, 1, "1 read"),
                 slot("TransactWriteItems", 1, "1 TransactWriteItems (count + log)"), events],
                lambda: http("POST", f"/me/library/{h.owned_resource_id}/download", h.token),
                notes="writes: the download count and its log entry, one transaction")
        measure("GET /resources", [slot("Query", 1)], lambda: http("GET", "/resources"))
        measure("GET /resources/{id}", [slot("GetItem", 1), events],
                lambda: http("GET", f"/resources/{h.paid_resource_id}"))
        # Recommendations: at most 3 reads each (the session check aside). The counts come
        # from order.paid events, applied here by the subscriber itself: another buyer
        # bought both demo resources, the bench buyer owns the free one.
        _bought("rt-co-buyer", [h.owned_resource_id, h.paid_resource_id])
        _bought(h.buyer_id, [h.owned_resource_id])
        reads3 = slot(READS, 3, "3 reads")
        row = measure("GET /me/recommendations", [session, reads3],
                      lambda: http("GET", "/me/recommendations", h.token))
        row.notes = (f"basis {row.measured.reply['basis']}, "
                     f"{len(row.measured.reply['items'])} item(s): profile + trending, "
                     "co-purchases + tags, cards + entitlements")
        newcomer = _new_buyer()
        row = measure("GET /me/recommendations (empty library)", [session, reads3],
                      lambda: http("GET", "/me/recommendations", newcomer))
        row.notes = (f"basis {row.measured.reply['basis']}: profile + trending, cards + "
                     "entitlements, the best sellers when the week is quiet")
        measure("GET /resources/{id}/related", [reads3],
                lambda: http("GET", f"/resources/{h.paid_resource_id}/related"),
                notes="resource + co-purchases, its category's best sellers, cards of "
                      "co-purchased ones outside them")
        measure("GET /resources/trending", [reads3], lambda: http("GET", "/resources/trending"),
                notes="the week's trending items, their cards, the best sellers when quiet")
        for k, query in SEARCHES.items():
            row = measure(f"GET /search ({k} term{'s' if k > 1 else ''})",
                          [slot("Query", k), slot("BatchGetItem", 1), events],
                          lambda q=query: http("GET", f"/search?q={q.replace(' ', '+')}"))
            hits = len(row.measured.reply["items"])
            row.notes = f"q={query!r}: {hits} hit(s)"

        # Checkout, by a new buyer each time (an owner would be refused before any write).
        tokens = [_new_buyer(), _new_buyer()]
        made: list[dict] = []

        def checkout(token: str) -> Recording:
            rec = http("POST", "/checkout", token,
                       {"items": [{"resource_id": h.paid_resource_id}]}, expect=201)
            made.append(rec.reply)
            return rec

        measure("POST /checkout", [session, slot("BatchGetItem", 1),
                                   slot("PutItem", 1, "1 PutItem (open-checkout claim)"),
                                   slot({"TransactWriteItems", "PutItem"}, 1, "1 write"),
                                   slot("POST /v1/checkout/sessions", 1, "1 Stripe call"),
                                   events],
                lambda: checkout(tokens[1]), warm=lambda: checkout(tokens[0]),
                notes="a new buyer each time")

        # With a coupon: it is read in the same BatchGetItem and reserved in the same
        # transaction as the order.
        from chalicelib.coupons import service as coupons
        from chalicelib.coupons.schemas import CouponIn

        coupons.create(h.admin_id, CouponIn(code=f"BENCH-{uuid.uuid4().hex[:8]}",
                                            kind="percent", percent_off=10))
        code = coupons.list_all(1, None).items[0].code
        coupon_tokens = [_new_buyer(), _new_buyer()]
        import jwt

        from chalicelib.points import service as points

        for token in coupon_tokens:
            buyer = jwt.decode(token, options={"verify_signature": False})["sub"]
            points.earn(buyer, 1000, "bench", f"bench-{buyer}")

        def coupon_checkout(token: str) -> Recording:
            return http("POST", "/checkout", token,
                        {"items": [{"resource_id": h.paid_resource_id}], "coupon_code": code,
                         "points_to_redeem": 500}, expect=201)

        measure("POST /checkout (with a coupon and points)",
                [session, slot("BatchGetItem", 1),
                 slot("PutItem", 1, "1 PutItem (open-checkout claim)"),
                 slot("TransactWriteItems", 1, "1 TransactWriteItems (order + coupon + points)"),
                 slot("POST /v1/checkout/sessions", 1, "1 Stripe call"), events],
                lambda: coupon_checkout(coupon_tokens[1]),
                warm=lambda: coupon_checkout(coupon_tokens[0]),
                notes="a new buyer each time; the coupon's counters, redemption and the "
                      "buyer's uses, and the points hold, are in the order's transaction")
        # The rollup of 100 analytics events (20 requests' messages of 5 views each, of 5
        # resources by 20 viewers): one transaction, one update per distinct counter.
        def rollup(tag: str) -> Recording:
            from chalicelib.analytics.events import Fact, encode

            at = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
            bodies = [encode([Fact(type="resource.viewed", at=at, resource_id=f"r{n}",
                                   creator_id="c", category="data", viewer=f"{tag}{m}")
                              for n in range(5)]) for m in range(20)]
            event = client.events.generate_sqs_event(bodies,
                                                     queue_name=settings().analytics_queue)
            with record() as rec:
                outcome = client.lambda_.invoke("analytics_rollup", event).payload
            assert outcome == {"batchItemFailures": []}, outcome
            rec.reply = None
            return rec

        row = measure("analytics rollup (100 events)",
                      [slot("TransactWriteItems", 1,
                            "1 TransactWriteItems (20 markers + 1 ADD per counter)")],
                      lambda: rollup("b"), warm=lambda: rollup("a"))
        row.notes = ("counters: views of the platform (4 shards), 5 resources, 1 creator, "
                     "1 category; viewer sketches of the platform and 5 resources; "
                     "never one write per event")
        measure("GET /me/membership", [session, slot("GetItem", 1, "1 GetItem")],
                lambda: http("GET", "/me/membership", h.token))

        # Both sessions paid at the stand-in: its signed checkout.session.completed events
        # are what Stripe would deliver.
        for order in made:
            standin.pay(order["checkout_session_id"])
        assert standin.flush(10) and len(inbox) == len(made), inbox
        events = list(inbox)

        def webhook(delivery: tuple[bytes, str]) -> Recording:
            body, signature = delivery
            return http("POST", "/webhooks/stripe", body=body,
                        headers={"Stripe-Signature": signature})

        measure("POST /webhooks/stripe", [slot("sqs:SendMessage", 1)],
                lambda: webhook(events[1]), warm=lambda: webhook(events[0]),
                notes="verify the signature, queue the event")

        def payment_event(delivery: tuple[bytes, str]) -> Recording:
            from chalice.local import LambdaContext

            event = client.events.generate_sqs_event([delivery[0].decode()],
                                                     queue_name=settings().payments_queue)
            # The Revenue metric is flushed to stdout as EMF; it would split the table.
            with record() as rec, contextlib.redirect_stdout(io.StringIO()):
                standin.open_recording = rec
                result = app_module.app.handler_map["payment_events"](
                    event, LambdaContext("payment_events", 1024, max_runtime_ms=30_000))
                standin.open_recording = None
            assert result == {"batchItemFailures": []}, result
            return rec

        row = measure("payment event (checkout.session.completed)",
                      [slot("TransactWriteItems", 1, "1 TransactWriteItems (order + grant)"),
                       slot("PutItem", 1, "1 PutItem (idempotency: in progress)"),
                       slot("UpdateItem", 1, "1 UpdateItem (idempotency: result)"),
                       slot("GetItem", 1, "1 GetItem (the order, read)"),
                       slot("ses:SendEmail", 1, "1 SES SendEmail (receipt)"),
                       # The transactional outbox: order.paid, written in the transaction,
                       # sent to the analytics queue and then deleted from the outbox.
                       slot("sqs:SendMessageBatch", 1, "1 SQS SendMessageBatch (outbox)"),
                       slot("BatchWriteItem", 1, "1 BatchWriteItem (outbox sent)")],
                      lambda: payment_event(events[1]), warm=lambda: payment_event(events[0]))
        order_id = made[1]["order"]["id"]
        paid = processing.load(order_id)
        assert paid is not None and paid.status == "paid", paid
        reads = [c for c in row.measured.calls if c.category == "read"]
        row.notes = (f"reads: {row.measured.summary(reads)} "
                     f"({', '.join(c.where[0] for c in reads if c.where) or 'n/a'}); "
                     "the order read and the receipt are allowed on top of the issue's "
                     "'1 transaction + the idempotency record'")
        _drain_payments_queue({json.loads(body)["id"] for body, _ in events})

        measure("GET /me/points", [session, slot("Query", 1, "1 Query (account + ledger)")],
                lambda: http("GET", "/me/points", h.token))

        # A subscription event: the subscription retrieved from Stripe and stored with its
        # outbox events in one transaction, besides the idempotency record.
        from chalicelib.accounts import profiles
        from chalicelib.accounts import tokens as issuer

        admin = profiles.get_user(h.admin_id)
        admin_token = issuer.issue_access_token(admin.user_id, admin.roles,
                                                admin.session_epoch)[0]
        plan_id = f"bench-{uuid.uuid4().hex[:6]}"
        http("POST", "/admin/plans", admin_token, {
            "plan_id": plan_id, "name": "Bench", "level": 1,
            "prices": {"month": {"cny": 3000}}, "monthly_points": 100}, expect=201)
        http("POST", f"/admin/plans/{plan_id}/sync", admin_token)
        inbox.clear()
        subscribed = []
        for token in (_new_buyer(), _new_buyer()):
            rec = http("POST", "/checkout", token, {"plan_id": plan_id, "interval": "month"},
                       expect=201)
            subscribed += standin.pay(rec.reply["checkout_session_id"])
        assert standin.flush(10)
        created = [d for d in inbox
                   if json.loads(d[0])["type"] == "customer.subscription.created"]
        measure("subscription event (customer.subscription.created)",
                [slot("TransactWriteItems", 1, "1 TransactWriteItems (membership + events)"),
                 slot("PutItem", 1, "1 PutItem (idempotency: in progress)"),
                 slot("UpdateItem", 1, "1 UpdateItem (idempotency: result)"),
                 slot("GET /v1/subscriptions/{id}", 1, "1 Stripe call (the subscription)"),
                 slot("GetItem", 2, "2 GetItem (the plan, the membership)"),
                 slot("sqs:SendMessageBatch", 1, "1 SQS SendMessageBatch (outbox)"),
                 slot("BatchWriteItem", 1, "1 BatchWriteItem (outbox sent)")],
                lambda: payment_event(created[1]), warm=lambda: payment_event(created[0]),
                notes="the state is Stripe's subscription as retrieved, so events in any "
                      "order converge")
        _drain_payments_queue({json.loads(body)["id"] for body, _ in inbox})

        # Reports: one Query per scope of counters (an item a day holds all its metrics) over
        # 31 days, one per gauge; a top
        # list one Query a month of its board's index, then the names (one BatchGetItem).
        creator = profiles.get_user(h.creator_id)
        creator_token = issuer.issue_access_token(creator.user_id, creator.roles,
                                                  creator.session_epoch)[0]
        today = datetime.now(UTC).date()
        from chalicelib import outbox
        from chalicelib.analytics import revenue

        # A sale counted, so the top lists and the statement have titles to resolve.
        revenue.on_order_paid(outbox.DomainEvent(
            event_id=uuid.uuid4().hex, type="order.paid", at=datetime.now(UTC).isoformat(),
            payload={"order_id": f"bench-{uuid.uuid4().hex[:8]}", "user_id": "bench",
                     "currency": "cny", "amount": 4900, "lines": [
                         {"resource_id": h.paid_resource_id, "creator_id": h.creator_id,
                          "unit_amount": 4900}]}))
        days = f"from={(today - timedelta(days=30)).isoformat()}&to={today.isoformat()}" \
               "&currency=cny"
        months = f"from={(today - timedelta(days=30)).isoformat()[:7]}&to={today:%Y-%m}" \
                 "&currency=cny"
        measure("GET /admin/reports/revenue (31 days)",
                [session, slot("Query", 1, "1 Query (the platform's days: gross, refunds, "
                                           "orders)")],
                lambda: http("GET", f"/admin/reports/revenue?{days}", admin_token))
        measure("GET /admin/reports/revenue (31 days, CSV)",
                [session, slot("Query", 1, "1 Query (the platform's days: gross, refunds, "
                                           "orders)")],
                lambda: http("GET", f"/admin/reports/revenue?{days}&format=csv", admin_token))
        measure("GET /creator/reports/earnings (31 days)",
                [session, slot("Query", 1, "1 Query (the creator's days: gross, refunds, fee, "
                                           "orders)")],
                lambda: http("GET", f"/creator/reports/earnings?{days}", creator_token))
        for who, path, token in (("admin", "/admin/reports/top", admin_token),
                                 ("creator", "/creator/reports/top", creator_token)):
            measure(f"GET {path} (the months of 31 days)",
                    [session, slot("Query", 2, "1 Query a month (its best rows, ranked by "
                                               "the board's index)"),
                     slot("BatchGetItem", 1, "1 BatchGetItem (titles)")],
                    lambda p=path, t=token: http("GET", f"{p}?{months}", t),
                    notes=f"{who}: the months of 31 days are 2 (1 on a 31st)")
        measure("GET /creator/statements/{month}",
                [session, slot("Query", 2, "2 Query (the creator's totals, every currency; "
                                           "their resources' rows)"),
                 slot("BatchGetItem", 1, "1 BatchGetItem (titles)")],
                lambda: http("GET", f"/creator/statements/{today:%Y-%m}", creator_token))
        span = days.removesuffix("&currency=cny")
        measure("GET /admin/reports/funnel (31 days)",
                [session, slot("Query", 1, "1 Query (the platform's days: views, checkouts, "
                                           "paid, viewers)")],
                lambda: http("GET", f"/admin/reports/funnel?{span}", admin_token))
        measure("GET /admin/reports/memberships (31 days)",
                [session, slot("Query", 3, "3 Query (2 gauges; the platform's days: "
                                           "started, renewed, cancelled)")],
                lambda: http("GET", f"/admin/reports/memberships?{days}", admin_token))
        measure("GET /admin/reports/users (31 days)",
                [session, slot("Query", 1, "1 Query (the platform's days: sign-ups, "
                                           "searches, downloads)")],
                lambda: http("GET", f"/admin/reports/users?{span}", admin_token))
    finally:
        restore()

    failures = [row.route for row in rows if not row.ok]
    details = [f"OVER BUDGET {row.route}: {call.label} from "
               f"{' <- '.join(call.where) or '(outside the app code)'}"
               for row in rows for call in row.extra]
    details += [f"FAIL {row.route}: {suggestion(row)}" for row in rows if not row.ok]
    result = {"rows": [row.as_dict() for row in rows], "failures": failures,
              "table": table(rows), "details": details}
    if verbose:
        for line in details:
            print(line)
    return result


def report(result: dict[str, Any]) -> str:
    """The section bench/run.py writes to docs/BENCHMARKS.md."""
    lines = [result["table"], ""]
    lines += [f"- {line}" for line in result["details"]]
    if not result["failures"]:
        lines.append("Every route is within its budget.")
    lines += ["", "Counted: every botocore call of the request's thread (PynamoDB's too; "
              "botocore's own retries are not separate calls) and every request the Stripe "
              "stand-in answered. Each route ran once to warm up first; 'first call only' is "
              "what that warm-up made and the measured call did not (the process started "
              "with its secrets and queue URL caches empty)."]
    return "\n".join(lines)


# What to change, by the application function an over-budget call came from.
SUGGESTIONS = {
    "create_checkout": "the view reads the buyer (GetItem on the users table) only for the "
                       "email it stores on the order and gives Stripe. Read the user in "
                       "checkout._load's BatchGetItem instead (BatchGetItem spans tables: add "
                       "the users table key USER#<id> / PROFILE, projecting email), or carry "
                       "the email in the access token's claims.",
    "refresh_popularity": "the consumer re-reads the resource (GetItem) and rewrites all its "
                          "listing cards (BatchWriteItem) inline for every paid order. Take "
                          "re-ranking off the payment path: queue it (e.g. on the analytics "
                          "queue, batched per resource) or re-rank on a schedule; the event "
                          "then stays at one transaction plus the idempotency record.",
}


def suggestion(row: Row) -> str:
    names = [frame.rsplit(" ", 1)[-1] for call in row.extra for frame in call.where]
    found = [SUGGESTIONS[n] for n in dict.fromkeys(names) if n in SUGGESTIONS]
    return " ".join(found) or "see the calls above and where they come from."


def _drain_payments_queue(event_ids: set[str]) -> None:
    """The webhook route queued our events and the consumer was invoked directly: take them
    off the queue so nothing processes them a second time later."""
    from chalicelib import aws
    from chalicelib.config import settings

    sqs = aws.sqs()
    url = aws.queue_url(settings().payments_queue)
    deadline = time.monotonic() + 5
    while event_ids and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0).get("Messages", [])
        for message in messages:
            event_id = json.loads(message["Body"]).get("id")
            if event_id in event_ids:
                event_ids.discard(event_id)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            else:
                sqs.change_message_visibility(QueueUrl=url,
                                              ReceiptHandle=message["ReceiptHandle"],
                                              VisibilityTimeout=0)


def table(rows: list[Row]) -> str:
    lines = ["| route | calls measured | budget | ok | first call only | notes |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        by = row.measured.by_category()
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(by.items()))
        first = ", ".join(row.first_only) or "-"
        lines.append(f"| {row.route} | {row.measured.summary()} ({kinds}) | "
                     f"{' + '.join(s.text for s in row.budget)} | "
                     f"{'ok' if row.ok else 'OVER'} | {first} | {row.notes} |")
    return "\n".join(lines)


if __name__ == "__main__":
    harness = start()
    try:
        outcome = run(harness, verbose=False)
    finally:
        harness.stop()
    print(report(outcome))
    sys.exit(1 if outcome["failures"] else 0)
