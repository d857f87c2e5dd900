"""The analytics SQS consumer: idempotent per event, partial batch failures reported."""
from __future__ import annotations

import json

from tests.support import load_event


def invoke(client, event: dict) -> dict:
    return client.lambda_.invoke("analytics_rollup", event).payload


def test_a_batch_counts_each_event_once_and_reports_only_the_poison_record(client):
    from chalicelib.analytics.rollup import daily

    event = load_event("sqs_analytics_batch.json")
    result = invoke(client, event)
    assert result == {"batchItemFailures": [
        {"itemIdentifier": "5b9c3ab4-1f3e-4a0d-9a55-2c6a1c0f0003"}]}
    # evt-0001 arrived twice in the batch and counts once; evt-0002 counts 2.
    assert daily("signups", "2026-11-28", "2026-11-28") == [("2026-11-28", 3)]


def test_redelivering_the_same_batch_changes_no_counter(client):
    from chalicelib.analytics.rollup import daily

    event = load_event("sqs_analytics_batch.json")
    invoke(client, event)
    invoke(client, event)
    assert daily("signups", "2026-11-28", "2026-11-28") == [("2026-11-28", 3)]


def test_registration_queues_a_signup_event(api, aws):
    from chalicelib import aws as factories
    from chalicelib.analytics.rollup import parse

    api.register()
    sqs = factories.sqs()
    url = aws["AnalyticsQueue"]
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
              .get("Messages", [])]
    events = [parse(b) for b in bodies]
    assert [e.type for e in events] == ["signups"]
    assert json.loads(bodies[0])["count"] == 1
