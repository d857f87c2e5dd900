"""The local stack's event pump, seen from outside: a message put on the analytics queue is
counted by the rollup handler, once, and a poison message ends in the dead-letter queue."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from devstack.stage import stage_environment
from tests.support import eventually

pytestmark = pytest.mark.e2e

ENV = stage_environment("local")



def analytics_message(resource_id: str) -> str:
    """A request's analytics message, as `chalicelib.analytics.events` sends it: one view."""
    return json.dumps({"kind": "analytics", "message_id": uuid.uuid4().hex, "facts": [
        {"type": "resource.viewed", "at": datetime.now(UTC).isoformat(),
         "resource_id": resource_id, "viewer": "e2e"}]})


def counter(boto, resource_id: str) -> int | None:
    """The resource's views today (an unsharded counter: one item)."""
    item = boto("dynamodb").get_item(
        TableName=ENV["STATS_TABLE"], ConsistentRead=True,
        Key={"pk": {"S": f"C#resource#{resource_id}"},
             "sk": {"S": datetime.now(UTC).date().isoformat()}},
    ).get("Item")
    return int(item["views"]["N"]) if item and "views" in item else None


def queue_url(boto, name: str) -> str:
    return boto("sqs").get_queue_url(QueueName=name)["QueueUrl"]


def drained(boto, url: str) -> bool:
    counts = boto("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return all(v == "0" for v in counts.values())


def test_queued_analytics_event_is_counted_by_the_rollup(boto):
    # given
    url = queue_url(boto, ENV["ANALYTICS_QUEUE"])
    # when
    resource = f"e2e-{uuid.uuid4().hex[:8]}"
    boto("sqs").send_message(QueueUrl=url, MessageBody=analytics_message(resource))
    # then
    assert eventually(lambda: counter(boto, resource), timeout=10) == 1


def test_same_analytics_event_sent_twice_is_counted_once(boto):
    # given
    url = queue_url(boto, ENV["ANALYTICS_QUEUE"])
    resource = f"e2e-{uuid.uuid4().hex[:8]}"
    body = analytics_message(resource)
    # when
    boto("sqs").send_message(QueueUrl=url, MessageBody=body)
    boto("sqs").send_message(QueueUrl=url, MessageBody=body)
    # then
    assert eventually(lambda: counter(boto, resource) and drained(boto, url), timeout=10)
    assert counter(boto, resource) == 1


def test_poison_message_lands_in_the_dead_letter_queue(boto):
    # given
    sqs = boto("sqs")
    url = queue_url(boto, ENV["ANALYTICS_QUEUE"])
    dlq = queue_url(boto, ENV["ANALYTICS_QUEUE"] + "-dlq")
    marker = f"not json {uuid.uuid4().hex}"
    # when
    sqs.send_message(QueueUrl=url, MessageBody=marker)

    # then
    def dead_lettered():
        messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                       AttributeNames=["All"]).get("Messages", [])
        return [m for m in messages if m["Body"] == marker]

    found = eventually(dead_lettered, timeout=30)
    assert found, "the poison message never reached the dead-letter queue"
    # Received by the pump maxReceiveCount times before SQS moved it.
    assert int(found[0]["Attributes"]["ApproximateReceiveCount"]) >= 3
