"""What one purchase costs on AWS, and what the platform costs when nobody uses it.

One whole purchase runs in-process against the embedded moto server and the Stripe stand-in:
browse, search, detail, checkout, the Stripe webhook, the payment event (grant), the library
and the download. Every AWS request and DynamoDB capacity unit is counted (bench/meter.py);
Lambda time is the measured warm duration of each invocation at the configured memory. Prices
come from bench/prices.json only. API requests are priced as the HTTP API that is deployed
(the REST API's price is printed beside it); the idle cost counts the queues the app's SQS
event sources poll, read from the app itself.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import meter
from harness import ROOT, Harness, start

PRICES = json.loads((Path(__file__).with_name("prices.json")).read_text())
# Issue #14: a whole purchase with its analytics events (the rollup of its messages and the
# domain events' subscribers included) at most $0.03 per 1,000.
TARGET_PER_1000 = 0.03
MEMORY_GB = json.loads((ROOT / ".chalice" / "config.json").read_text()).get(
    "lambda_memory_size", 1024) / 1024
# Requests the Lambda service makes for us and the process cannot see: per SQS-triggered
# invocation, the poller's ReceiveMessage and DeleteMessageBatch.
SQS_POLLER_REQUESTS = 2


def _records(bodies: list[bytes]) -> list[dict]:
    return [{"messageId": f"m{i}", "receiptHandle": "r", "body": b.decode(),
             "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1",
                            "SenderId": "s", "ApproximateFirstReceiveTimestamp": "1"},
             "messageAttributes": {}, "md5OfBody": "x", "eventSource": "aws:sqs",
             "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
             "awsRegion": "us-east-1"} for i, b in enumerate(bodies)]


def _consume(rows: list[dict], step: str, handler, bodies: list[bytes]) -> None:
    """One SQS-triggered invocation of `handler` with these bodies, measured into `rows`."""
    from chalice.local import LambdaContext

    context = LambdaContext("payment_events", int(MEMORY_GB * 1024), max_runtime_ms=30_000)
    with meter.measure() as tally:
        started = time.perf_counter()
        result = handler({"Records": _records(bodies)}, context)
        seconds = time.perf_counter() - started
    assert result == {"batchItemFailures": []}, result
    rows.append({"step": step, "kind": "sqs", "tally": tally, "seconds": seconds})


def _buyer() -> str:
    """A new buyer's access token (signing up is not part of a purchase's price)."""
    from chalicelib.accounts import registration, tokens

    buyer = registration.register(f"cost-{time.time_ns()}@paidres.local",
                                  "cost buyer passphrase", "Cost")
    return tokens.issue_access_token(buyer.user_id, buyer.roles, buyer.session_epoch)[0]


def _buy(token: str, resource_id: str, rows: list[dict]) -> None:
    """A buyer's whole purchase of `resource_id`, measured into `rows`: browse, search,
    detail, checkout, the Stripe webhook, the payment event (grant), the library and the
    download. Its analytics messages are left on the queue."""
    import hashlib
    import hmac
    import os

    from chalice.test import Client

    import app as app_module
    from chalicelib.config import settings
    from chalicelib.payments import gateway
    from devstack.stripe_standin import StripeStandIn

    deliveries: list[tuple[bytes, str]] = []
    standin = StripeStandIn("whsec_bench", lambda body, sig: deliveries.append((body, sig)))
    os.environ["STRIPE_API_BASE"] = standin.start()
    settings.cache_clear()
    settings()
    gateway.forget()
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    client = Client(app_module.app, stage_name="local")

    def api(step: str, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None) -> dict:
        with meter.measure() as tally:
            started = time.perf_counter()
            reply = getattr(client.http, method)(path, headers=headers or auth, body=body)
            seconds = time.perf_counter() - started
        assert reply.status_code < 300, (step, reply.status_code, reply.body)
        rows.append({"step": step, "kind": "api", "tally": tally, "seconds": seconds})
        return json.loads(reply.body) if reply.body else {}

    listing = api("browse the catalog", "get", "/resources")
    api("search", "get", "/search?q=python")
    api("resource detail", "get", f"/resources/{resource_id}")
    made = api("checkout", "post", "/checkout", json.dumps(
        {"items": [{"resource_id": resource_id}]}).encode())
    assert listing["items"]
    standin.pay(made["checkout_session_id"])
    assert standin.flush(10)
    for body, _ in deliveries:
        stamp = int(time.time())
        mac = hmac.new(b"whsec_bench", f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        api("stripe webhook", "post", "/webhooks/stripe", body,
            {"Stripe-Signature": f"t={stamp},v1={mac}", "Content-Type": "application/json"})
    _consume(rows, "payment event (grant)", app_module.payment_events,
             [b for b, _ in deliveries])
    api("library", "get", "/me/library")
    link = api("download link", "post", f"/me/library/{resource_id}/download")
    assert link["url"]
    standin.stop()


def _queued() -> list[bytes]:
    """Everything on the analytics queue, taken off it."""
    from chalicelib import aws
    from chalicelib.config import settings

    url, bodies = aws.queue_url(settings().analytics_queue), []
    while True:
        got = aws.sqs().receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", [])
        if not got:
            return bodies
        bodies += [m["Body"].encode() for m in got]
        aws.sqs().delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])


def _warm_and_purge() -> None:
    """Warm the process, as a busy platform's functions are, and empty the analytics queue so
    only the purchases' own messages are priced (not the set-up's sign-ups and sales)."""
    from chalice.test import Client

    import app as app_module
    from chalicelib import aws
    from chalicelib.config import settings

    Client(app_module.app, stage_name="local").http.get("/resources")
    aws.sqs().purge_queue(QueueUrl=aws.queue_url(settings().analytics_queue))


def _purchase(h: Harness) -> list[dict]:
    """Run one purchase; one row per invocation with its AWS tally and duration."""
    import app as app_module

    rows: list[dict] = []
    token = _buyer()
    _warm_and_purge()
    _buy(token, h.paid_resource_id, rows)
    # What the purchase sent to the analytics queue (the search's, the view's, the
    # checkout's and the download's analytics messages, and the outbox's order.paid) goes
    # through the rollup as one batch: its subscribers, its counters, in one invocation.
    # Priced alone here, the purchase pays for all of it (`busy` shares batches).
    bodies = _queued()
    analytics.append(len(bodies))
    _consume(rows, "analytics rollup (the purchase's events)", app_module.analytics_rollup,
             bodies)
    return rows


# A busy platform: purchases close enough together that the analytics event source fills
# its batches (100 messages, app.py's batch size) within its 5 s window (20 purchases of 5
# messages: 4 a second).
BUSY_PURCHASES = 20
ROLLUP_BATCH = 100


def busy(h: Harness, purchases: int = BUSY_PURCHASES) -> dict:
    """What a purchase costs when the rollup's batches are full: `purchases` buyers each buy
    one of the catalog's paid resources (in turn), then the analytics queue is consumed in
    batches of ROLLUP_BATCH, as the event source would; priced per purchase."""
    import app as app_module
    from chalicelib.catalog.store import ResourceRecord

    paid = sorted(r.resource_id for r in ResourceRecord.by_creator.query(
        f"CREATOR#{h.creator_id}") if int(r.price_amount) > 0 and r.status == "published")
    rows: list[dict] = []
    buyers = [_buyer() for _ in range(purchases)]
    _queued()  # what the sign-ups sent (SQS allows one PurgeQueue a minute)
    for n, token in enumerate(buyers):
        _buy(token, paid[n % len(paid)], rows)
    bodies = _queued()
    for first in range(0, len(bodies), ROLLUP_BATCH):
        _consume(rows, "analytics rollup (a full batch)", app_module.analytics_rollup,
                 bodies[first:first + ROLLUP_BATCH])
    rollups = [r for r in rows if r["step"].startswith("analytics rollup")]
    priced = _price(rows)
    return {"purchases": purchases, "resources": len(paid), "messages": len(bodies),
            "batches": len(rollups),
            "total_per_1000": priced["total_per_1000"] / purchases,
            "analytics_per_1000": _price(rollups)["total_per_1000"] / purchases,
            "write_units": priced["write_units"] / purchases,
            "rollup_write_units": sum(r["tally"].write_units for r in rollups) / purchases}


analytics: list[int] = []


def _price(rows: list[dict]) -> dict:
    p = PRICES
    total = meter.Tally()
    lambda_requests = len(rows)
    gb_seconds = 0.0
    api_requests = sum(1 for r in rows if r["kind"] == "api")
    sqs_extra = sum(SQS_POLLER_REQUESTS for r in rows if r["kind"] == "sqs")
    for row in rows:
        total = total.merged(row["tally"])
        gb_seconds += max(row["seconds"], 0.001) * MEMORY_GB
    sqs_requests = total.count("sqs") + sqs_extra
    s3_gets = 1  # the buyer's browser fetching the file through the presigned URL
    emails = total.count("ses")
    # The target covers the purchase itself (browse to download); the receipt email is priced
    # and reported beside it, since SES's per-message price alone is twice the target.
    cost = {
        "lambda": lambda_requests * p["lambda_request"] + gb_seconds * p[
            "lambda_gb_second_x86"],
        # The API is an HTTP API (infra/package.py); the REST API's price is reported beside.
        "api_gateway": api_requests * p["api_gateway_http_request"],
        "dynamodb": total.read_units * p["dynamodb_read_request_unit"]
        + total.write_units * p["dynamodb_write_request_unit"],
        "sqs": sqs_requests * p["sqs_standard_request"],
        "s3": s3_gets * p["s3_get_request"] + total.count("s3") * p["s3_get_request"],
        "ses": emails * p["ses_email"],
    }
    platform = sum(v for k, v in cost.items() if k != "ses")
    return {"per_purchase": cost, "usd_per_1000": {k: v * 1000 for k, v in cost.items()},
            "total_per_1000": platform * 1000,
            "with_receipt_per_1000": sum(cost.values()) * 1000, "lambda_requests": lambda_requests,
            "api_gateway_rest_per_1000": api_requests * p["api_gateway_rest_request"] * 1000,
            "gb_seconds": gb_seconds, "api_requests": api_requests,
            "read_units": total.read_units, "write_units": total.write_units,
            "sqs_requests": sqs_requests, "emails": emails,
            "aws_calls": sum(total.calls.values())}


# The queues Lambda polled before uploads went straight from S3 to their function: payments,
# analytics, upload-events and domain-events (the report used to hard-code 3, missing the
# last). For the saving line.
QUEUES_POLLED_BEFORE = 4
# Issue #14's idle target, met with two polled queues: payments, and analytics (which carries
# the outbox's domain events too).
IDLE_TARGET = 0.53
QUEUES_POLLED_TARGET = 2
# Lambda's SQS pollers long-poll (20 s) with 5 pollers per event source when idle: requests
# per polled queue in a 30-day month.
POLLS_PER_QUEUE_MONTH = 5 * 3 * 60 * 24 * 30


def polled_queues() -> list[str]:
    """The queues a Lambda event source polls: the app's `@app.on_sqs_message` handlers (what
    `chalice package` turns into SQS event sources), one poller fleet per queue."""
    from chalice.app import SQSEventConfig

    import app as app_module

    return sorted({str(s.queue or s.queue_arn) for s in app_module.app.event_sources
                   if isinstance(s, SQSEventConfig)})


def idle_per_month(queues_polled: int | None = None) -> dict:
    """What the deployed platform costs in a month with no traffic."""
    p = PRICES
    if queues_polled is None:
        queues_polled = len(polled_queues())
    polls = queues_polled * POLLS_PER_QUEUE_MONTH
    schedule_runs = 4 * 24 * 30  # reconcile_payments, every 15 minutes
    lambda_cost = schedule_runs * (p["lambda_request"] + 0.2 * MEMORY_GB
                                   * p["lambda_gb_second_x86"])
    return {"sqs_polling": polls * p["sqs_standard_request"],
            "scheduled_reconciliation": lambda_cost
            + schedule_runs * 0.5 * p["dynamodb_read_request_unit"],
            "storage": 0.001 * p["dynamodb_storage_gb_month"] + 0.001 * p[
                "s3_storage_gb_month"]}


# Issue #14: a sale shows in the reports within this many seconds.
FRESHNESS_TARGET_SECONDS = 10


def _windows() -> dict[str, int]:
    """Each SQS event source's batching window (what Lambda may wait before invoking), read
    from the app's own declarations."""
    from chalice.app import SQSEventConfig

    import app as app_module

    return {s.name: int(s.maximum_batching_window_in_seconds or 0)
            for s in app_module.app.event_sources if isinstance(s, SQSEventConfig)}


def freshness(h: Harness, rows: list[dict], amount_day: str) -> dict:
    """From the Stripe webhook's answer to the sale in the revenue report: the measured
    handlers (the payment event, the rollup of the purchase's messages, the report's
    request) plus the batching window each queue's event source may wait, in the order a
    sale crosses them; checks the report does show the sale."""
    from chalice.test import Client

    import app as app_module
    from chalicelib.accounts import tokens

    admin, _ = tokens.issue_access_token(h.admin_id, {"buyer", "admin"}, 0)
    client = Client(app_module.app, stage_name="local")
    started = time.perf_counter()
    reply = client.http.get(f"/admin/reports/revenue?from={amount_day}&to={amount_day}"
                            "&currency=cny", headers={"Authorization": f"Bearer {admin}"})
    report_seconds = time.perf_counter() - started
    shown = json.loads(reply.body)["rows"][0]
    handled = {r["step"]: r["seconds"] for r in rows if r["kind"] == "sqs"}
    windows = _windows()
    worst = (sum(handled.values()) + report_seconds + windows.get("payment_events", 0)
             + windows.get("analytics_rollup", 0))
    return {"handlers": {k: round(v, 3) for k, v in handled.items()},
            "report_seconds": round(report_seconds, 3), "windows": windows,
            "worst_seconds": round(worst, 2), "gross_shown": shown["gross"],
            "orders_shown": shown["orders"],
            "ok": worst <= FRESHNESS_TARGET_SECONDS and shown["orders"] >= 1}


def run(h: Harness) -> dict:
    analytics.clear()
    rows = _purchase(h)
    from datetime import UTC, datetime

    fresh = freshness(h, rows, datetime.now(UTC).date().isoformat())
    priced = _price(rows)
    priced["analytics_messages"] = analytics[0]
    priced["analytics_per_1000"] = _price(rows[-1:])["total_per_1000"]
    queues = polled_queues()
    idle = idle_per_month(len(queues))
    priced["queues_polled"] = queues
    priced["idle_per_month"] = idle
    priced["idle_total"] = sum(idle.values())
    priced["idle_total_before"] = sum(idle_per_month(QUEUES_POLLED_BEFORE).values())
    priced["idle_total_at_target"] = sum(idle_per_month(QUEUES_POLLED_TARGET).values())
    priced["idle_ok"] = priced["idle_total"] <= IDLE_TARGET
    priced["steps"] = [{"step": r["step"], "calls": sum(r["tally"].calls.values()),
                        "read_units": r["tally"].read_units,
                        "write_units": r["tally"].write_units,
                        "ms": round(r["seconds"] * 1000, 1)} for r in rows]
    priced["ok"] = priced["total_per_1000"] <= TARGET_PER_1000
    priced["freshness"] = fresh
    priced["busy"] = busy(h)
    return priced


def report(result: dict) -> str:
    lines = ["step | AWS calls | RRU | WRU | warm ms", "--- | --- | --- | --- | ---"]
    lines += [f"{s['step']} | {s['calls']} | {s['read_units']:g} | {s['write_units']:g} | "
              f"{s['ms']}" for s in result["steps"]]
    lines.append("")
    lines.append("service | $ per 1,000 purchases")
    lines.append("--- | ---")
    lines += [f"{k} | {v:.4f}" for k, v in result["usd_per_1000"].items()]
    lines.append(f"**purchase without the receipt email** | **{result['total_per_1000']:.4f}** "
                 f"(target ≤ {TARGET_PER_1000})")
    lines.append(f"purchase with the receipt email | {result['with_receipt_per_1000']:.4f}")
    lines.append(f"of which the analytics rollup of the purchase's {result['analytics_messages']}"
                 f" messages (domain events included) | {result['analytics_per_1000']:.4f}")
    b = result["busy"]
    lines.append(f"busy: a purchase when the rollup's batches are full ({b['purchases']} "
                 f"purchases of {b['resources']} resources, {b['messages']} messages in "
                 f"{b['batches']} batch(es)) | {b['total_per_1000']:.4f} (target ≤ "
                 f"{TARGET_PER_1000}; {b['write_units']:.1f} WRU a purchase)")
    lines.append(f"of which the rollup, shared by the batch | {b['analytics_per_1000']:.4f} "
                 f"({b['rollup_write_units']:.1f} WRU a purchase)")
    lines.append("")
    lines.append(f"idle: ${result['idle_total']:.2f} per month (" + ", ".join(
        f"{k} ${v:.2f}" for k, v in result["idle_per_month"].items()) + ")")
    lines.append("")
    lines += saving_lines(result)
    f = result["freshness"]
    lines.append("")
    lines.append(
        f"a sale in the reports: at most {f['worst_seconds']} s after the webhook's answer "
        f"(target ≤ {FRESHNESS_TARGET_SECONDS} s, {'met' if f['ok'] else 'NOT met'}): "
        + ", ".join(f"{k} {v} s" for k, v in f["handlers"].items())
        + f", the report's request {f['report_seconds']} s, measured; plus the batching "
        f"windows Lambda may wait ({', '.join(f'{k} {v} s' for k, v in f['windows'].items())})"
        f". The report then showed {f['orders_shown']} order(s), gross {f['gross_shown']}.")
    return "\n".join(lines)


def saving_lines(result: dict) -> list[str]:
    """What the HTTP API and the poller-free uploads save, line by line."""
    rest, http = result["api_gateway_rest_per_1000"], result["usd_per_1000"]["api_gateway"]
    per_queue = POLLS_PER_QUEUE_MONTH * PRICES["sqs_standard_request"]
    queues = result["queues_polled"]
    return [
        "saving | before | now | difference",
        "--- | --- | --- | ---",
        f"API Gateway per 1,000 purchases ({result['api_requests']} requests each): REST API "
        f"→ HTTP API | ${rest:.4f} | ${http:.4f} | ${rest - http:.4f}",
        f"idle SQS pollers: {QUEUES_POLLED_BEFORE} → {len(queues)} polled queues "
        f"({', '.join(queues)}; ${per_queue:.2f} a month each) | "
        f"${QUEUES_POLLED_BEFORE * per_queue:.2f} | ${len(queues) * per_queue:.2f} | "
        f"${(QUEUES_POLLED_BEFORE - len(queues)) * per_queue:.2f} a month",
        f"idle total | ${result['idle_total_before']:.2f} | ${result['idle_total']:.2f} | "
        f"${result['idle_total_before'] - result['idle_total']:.2f} a month",
        f"idle with {QUEUES_POLLED_TARGET} polled queues (payments, analytics: domain events "
        f"through the analytics queue) | | ${result['idle_total_at_target']:.3f} | target ≤ "
        f"${IDLE_TARGET:.2f}" + (" (met)" if result["idle_ok"] else ""),
    ]


if __name__ == "__main__":
    harness = start()
    try:
        outcome = run(harness)
        print(report(outcome))
        print(f"cost: ${outcome['total_per_1000']:.4f} per 1,000 purchases "
              f"({outcome['total_per_1000'] / TARGET_PER_1000:.2f}x the target)")
    finally:
        harness.stop()
