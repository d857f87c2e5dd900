"""The analytics SQS consumer: a batch is counted in memory with one write per distinct
counter, each message once however it is redelivered or regrouped; partial batch failures
reported; the requests' events leave in one message and never fail the request."""
from __future__ import annotations

import copy
import json

import pytest

from tests.support import load_event


def invoke(client, event: dict) -> dict:
    return client.lambda_.invoke("analytics_rollup", event).payload


def _counts():
    from chalicelib.analytics.rollup import daily, unique

    day = "2026-11-28"
    return {
        "views": daily("views", day, day).get(day),
        "views_res1": daily("views", day, day, "resource#res-1").get(day),
        "views_creator": daily("views", day, day, "creator#cre-1").get(day),
        "views_category": daily("views", day, day, "category#data").get(day),
        "searches": daily("searches", day, day).get(day),
        "signups": daily("signups", day, day).get(day),
        "members_started": daily("members_started", day, day).get(day),
        "viewers": unique("platform", day, day),
    }


EXPECTED = {"views": 3, "views_res1": 2, "views_creator": 3, "views_category": 3,
            "searches": 1, "signups": 2, "members_started": 1, "viewers": 2}


def test_a_batch_counts_each_message_once_and_reports_only_the_poison_record(client):
    # Given a batch with a message delivered twice, a poison record and a domain event
    event = load_event("sqs_analytics_batch.json")
    # When the rollup takes it
    result = invoke(client, event)
    # Then only the poison record is retried, and every fact counts once
    assert result == {"batchItemFailures": [
        {"itemIdentifier": "5b9c3ab4-1f3e-4a0d-9a55-2c6a1c0f0003"}]}
    assert _counts() == EXPECTED


def test_redelivering_the_same_batch_changes_no_counter(client):
    event = load_event("sqs_analytics_batch.json")
    invoke(client, event)
    invoke(client, event)
    assert _counts() == EXPECTED


def test_a_regrouped_redelivery_counts_only_the_new_messages(client):
    # Given a batch counted once
    event = load_event("sqs_analytics_batch.json")
    invoke(client, event)
    # When one of its messages comes back in another batch beside a new one
    from chalicelib.analytics.events import Fact, encode

    again = copy.deepcopy(event)
    fresh = copy.deepcopy(event["Records"][0])
    fresh["messageId"] = "new-record"
    fresh["body"] = encode([Fact(type="search.made", at="2026-11-28T11:00:00+00:00")])
    again["Records"] = [again["Records"][3], fresh]
    assert invoke(client, again) == {"batchItemFailures": []}
    # Then only the new message is counted
    assert _counts() == {**EXPECTED, "searches": 2}


def test_a_hundred_facts_commit_in_one_transaction_with_one_update_per_counter(client, aws):
    from chalicelib import db
    from chalicelib.analytics.events import Fact, encode

    # Given 100 views of 5 resources by 20 viewers, in 20 messages
    event = load_event("sqs_analytics_batch.json")
    template = event["Records"][0]
    records = []
    for m in range(20):
        facts = [Fact(type="resource.viewed", at="2026-11-28T12:00:00+00:00",
                      resource_id=f"r{n % 5}", creator_id="c", category="data",
                      viewer=f"v{(m * 5 + n) % 20}") for n in range(5)]
        records.append({**template, "messageId": f"m{m}", "body": encode(facts)})
    sent: list[dict] = []

    def spy(params, **_):
        sent.append(params)

    connection = db.connection()
    client_meta = connection.client.meta.events
    client_meta.register("provide-client-params.dynamodb.TransactWriteItems", spy)
    try:
        assert invoke(client, {"Records": records}) == {"batchItemFailures": []}
    finally:
        client_meta.unregister("provide-client-params.dynamodb.TransactWriteItems", spy)
    # Then one transaction: 20 markers and one update per distinct counter
    [tx] = sent
    updates = [item["Update"]["Key"] for item in tx["TransactItems"] if "Update" in item]
    keys = {(k["pk"]["S"], k["sk"]["S"]) for k in updates}
    assert len(updates) == len(keys)  # never two writes of one counter
    assert sum(1 for item in tx["TransactItems"] if "Put" in item) == 20
    from chalicelib.analytics.rollup import daily, unique

    day = "2026-11-28"
    assert daily("views", day, day) == {day: 100}
    assert daily("views", day, day, "resource#r3") == {day: 20}
    assert unique("platform", day, day) == 20


def test_the_viewer_sketch_estimates_distinct_viewers_within_five_percent(client):
    from chalicelib.analytics.events import Fact, encode
    from chalicelib.analytics.rollup import unique

    template = load_event("sqs_analytics_batch.json")["Records"][0]
    records = [{**template, "messageId": f"m{m}", "body": encode([
        Fact(type="resource.viewed", at="2026-11-29T12:00:00+00:00", resource_id="hot",
             viewer=f"viewer-{(m * 7 + k) % 600}") for k in range(9)])} for m in range(100)]
    for start in range(0, 100, 25):
        assert invoke(client, {"Records": records[start:start + 25]}) == {
            "batchItemFailures": []}
    for scope in ("platform", "resource#hot"):
        assert abs(unique(scope, "2026-11-29", "2026-11-29") - 600) <= 30


def test_a_request_sends_its_events_in_one_message(api, shop, aws):
    from chalicelib import aws as factories
    from chalicelib.analytics.rollup import parse

    detail = api.get(f"/resources/{shop.resource['id']}").body["resource"]
    sqs = factories.sqs()
    url = aws["AnalyticsQueue"]
    sqs.purge_queue(QueueUrl=url)
    # When a buyer opens a checkout
    shop.checkout()
    # Then one message carries the checkout.started fact, with what it is counted by
    bodies = [m["Body"] for m in sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
    [message] = [parse(b) for b in bodies]
    [fact] = message.facts
    assert (fact.type, fact.resource_id, fact.creator_id, fact.category, fact.viewer) == (
        "checkout.started", detail["id"], detail["creator"]["id"], detail["category"],
        shop.buyer["id"])


def test_registration_queues_a_user_registered_fact(api, aws):
    from chalicelib import aws as factories
    from chalicelib.analytics.rollup import parse

    api.register()
    sqs = factories.sqs()
    bodies = [m["Body"] for m in sqs.receive_message(
        QueueUrl=aws["AnalyticsQueue"], MaxNumberOfMessages=10).get("Messages", [])]
    [message] = [parse(b) for b in bodies]
    assert [f.type for f in message.facts] == ["user.registered"]
    assert json.loads(bodies[0])["kind"] == "analytics"


def test_the_request_succeeds_when_analytics_is_down(api, shop, monkeypatch):
    from chalicelib.config import settings

    # Given an analytics queue that does not exist (SQS refuses every send)
    monkeypatch.setenv("ANALYTICS_QUEUE", "paidres-missing-queue")
    settings.cache_clear()
    try:
        # When a visitor opens a resource, which tracks a view
        reply = api.get(f"/resources/{shop.resource['id']}")
        # Then the page is served all the same
        assert reply.status == 200, reply.body
    finally:
        monkeypatch.undo()
        settings.cache_clear()


@pytest.mark.parametrize("body", ['{"kind": "analytics", "message_id": "x", "facts": ['
                                  '{"type": "nonsense", "at": "2026-11-28T00:00:00Z"}]}',
                                  '{"kind": "analytics", "message_id": "", "facts": []}',
                                  '[1, 2]'])
def test_a_message_that_is_not_countable_is_left_to_the_dead_letter_queue(client, body):
    template = load_event("sqs_analytics_batch.json")["Records"][0]
    result = invoke(client, {"Records": [{**template, "messageId": "bad", "body": body}]})
    assert result == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
