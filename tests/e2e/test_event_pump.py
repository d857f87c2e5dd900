"""The event pump against a real moto server, with a tiny app of its own: S3 notifications
reach `@app.on_s3_event` handlers and the functions a bucket invokes directly with the key as
S3 sends it (retried, then dead-lettered as Lambda does), and SQS batches are settled the way
Lambda settles them (partial failures, exceptions)."""
from __future__ import annotations

import json
import logging
import sys
import time
from urllib.parse import unquote_plus

import boto3
import pytest
import requests
from chalice import Chalice
from chalice.app import S3EventConfig
from moto.server import ThreadedMotoServer

from devstack.pump import EventPump, S3Target
from tests.support import eventually

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
BUCKET = "pump-test-uploads"
PARTIAL_QUEUE = "pump-test-partial"
RAISING_QUEUE = "pump-test-raising"
TEMPLATE_QUEUE = "pump-test-template-target"
DIRECT_BUCKET = "pump-test-direct"
DIRECT_DLQ = "pump-test-direct-dlq"
QUEUE_VISIBILITY = "30"

app = Chalice(app_name="pumptest")
seen: dict[str, list] = {"uploads": [], "partial": [], "raising": [], "direct": []}


@app.on_s3_event(bucket=BUCKET)
def record_upload(event):
    seen["uploads"].append({"record": event.to_dict()["Records"][0], "key": event.key})


@app.lambda_function(name="checker")
def check_direct(event, context):
    """Invoked by the bucket itself (as infra/ wires upload_events): raw S3 event."""
    key = event["Records"][0]["s3"]["object"]["key"]
    seen["direct"].append(key)
    if "bad" in key:
        raise ValueError(f"cannot check {key}")


DIRECT = S3Target(S3EventConfig(name="checker", handler_string="app.check_direct",
                                bucket=DIRECT_BUCKET, events=["s3:ObjectCreated:*"],
                                prefix="creators/", suffix=None),
                  max_attempts=3, dead_letter_queue=DIRECT_DLQ)


@app.on_sqs_message(queue=PARTIAL_QUEUE, batch_size=10)
def fail_bad_records(event):
    records = [record.to_dict() for record in event]
    seen["partial"].append(sorted(r["body"] for r in records))
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]}
                                  for r in records if r["body"] == "bad"]}


@app.on_sqs_message(queue=RAISING_QUEUE, batch_size=10)
def always_raise(event):
    seen["raising"].append(sorted(record.body for record in event))
    raise RuntimeError("this handler always fails")



def pumped(probe):
    """The first truthy `probe()` within 5 s; probes here drive the pump themselves."""
    return eventually(probe, timeout=5.0, interval=0.1)


@pytest.fixture(scope="module")
def endpoint():
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def client(endpoint):
    def make(service: str):
        return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    return make


@pytest.fixture
def pump(endpoint, client):
    """A pump over this module's app, on fresh resources; failed messages return after 1 s."""
    requests.post(f"{endpoint}/moto-api/reset", timeout=5).raise_for_status()
    for records in seen.values():
        records.clear()
    for name in (PARTIAL_QUEUE, RAISING_QUEUE, TEMPLATE_QUEUE):
        client("sqs").create_queue(QueueName=name,
                                   Attributes={"VisibilityTimeout": QUEUE_VISIBILITY})
    # The bucket already notifies a queue of its own, as the infra template may configure.
    client("s3").create_bucket(Bucket=BUCKET)
    client("s3").put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"QueueConfigurations": [{
            "Id": "from-template", "QueueArn": queue_arn(client, TEMPLATE_QUEUE),
            "Events": ["s3:ObjectCreated:*"]}]})
    client("s3").create_bucket(Bucket=DIRECT_BUCKET)
    client("sqs").create_queue(QueueName=DIRECT_DLQ)
    pump = EventPump(app, sys.modules[__name__], REGION, endpoint, retry_delay_seconds=1,
                     s3_targets=[DIRECT])
    pump.sources()
    yield pump
    pump.stop()


def queue_arn(client, name: str) -> str:
    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]


def send(client, queue: str, *bodies: str) -> str:
    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)])
    return url


def in_queue(client, url: str) -> dict[str, int]:
    attributes = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return {"visible": int(attributes["ApproximateNumberOfMessages"]),
            "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"])}


def test_uploaded_object_reaches_the_s3_handler_with_the_key_url_encoded(pump, client):
    # given
    key = "incoming/monthly report 2024.pdf"
    # when
    client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"%PDF-1.7")
    delivered = pumped(lambda: pump.poll_once() and seen["uploads"])
    # then
    assert len(delivered) == 1
    record = delivered[0]["record"]
    raw_key = record["s3"]["object"]["key"]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"].startswith("ObjectCreated:")
    assert record["s3"]["bucket"]["name"] == BUCKET
    assert " " not in raw_key and raw_key != key
    assert unquote_plus(raw_key) == key
    assert delivered[0]["key"] == key


def test_delivered_s3_event_is_removed_from_the_local_queue(pump, client, endpoint):
    # given
    client("s3").put_object(Bucket=BUCKET, Key="a.txt", Body=b"a")
    # when
    pumped(lambda: pump.poll_once() and seen["uploads"])
    # then
    url = client("sqs").get_queue_url(QueueName=BUCKET + "-local-s3-events")["QueueUrl"]
    assert in_queue(client, url) == {"visible": 0, "in_flight": 0}
    assert pump.poll_once() == 0
    assert len(seen["uploads"]) == 1


def test_notification_targets_the_bucket_already_had_still_get_events(pump, client):
    # given
    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName=TEMPLATE_QUEUE)["QueueUrl"]
    # when
    client("s3").put_object(Bucket=BUCKET, Key="kept.txt", Body=b"k")
    # then
    def template_queue_keys():
        bodies = [json.loads(m["Body"]) for m in sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
        return [r["s3"]["object"]["key"] for b in bodies for r in b.get("Records", [])]

    assert pumped(template_queue_keys) == ["kept.txt"]
    assert pumped(lambda: pump.poll_once() and seen["uploads"])


def test_only_the_failed_message_of_a_batch_is_redelivered(pump, client):
    # given
    url = send(client, PARTIAL_QUEUE, "a", "bad", "c")
    # when the handler reports one failure of the batch
    pumped(lambda: pump.poll_once() and sum(map(len, seen["partial"])) >= 3)
    # then the others are deleted and only that one comes back
    assert sorted(b for batch in seen["partial"] for b in batch) == ["a", "bad", "c"]
    assert in_queue(client, url) == {"visible": 0, "in_flight": 1}
    again = pumped(lambda: pump.poll_once() and seen["partial"][-1] == ["bad"])
    assert again
    assert sorted(b for batch in seen["partial"] for b in batch) == ["a", "bad", "bad", "c"]


def test_a_raising_handler_gets_the_whole_batch_again(pump, client):
    # given
    send(client, RAISING_QUEUE, "x", "y")
    # when
    pumped(lambda: pump.poll_once() and seen["raising"])
    # then
    def delivered_twice():
        pump.poll_once()
        return sorted(b for batch in seen["raising"] for b in batch) == ["x", "x", "y", "y"]

    assert pumped(delivered_twice)


def test_started_pump_delivers_in_the_background_and_stops_promptly(pump, client):
    # given
    pump.start()
    # when
    send(client, PARTIAL_QUEUE, "hello")
    # then
    assert pumped(lambda: seen["partial"] == [["hello"]])
    began = time.monotonic()
    pump.stop()
    assert time.monotonic() - began < 3


def test_a_bucket_invokes_its_function_directly_with_the_s3_event(pump, client):
    # given a function the bucket invokes (no queue of the app's in between)
    # when
    client("s3").put_object(Bucket=DIRECT_BUCKET, Key="creators/a b.pdf", Body=b"%PDF")
    client("s3").put_object(Bucket=DIRECT_BUCKET, Key="elsewhere/c.pdf", Body=b"%PDF")
    # then only the key under the prefix arrives, once, URL-encoded as S3 sends it
    (raw,) = pumped(lambda: pump.poll_once() and seen["direct"])
    assert " " not in raw and unquote_plus(raw) == "creators/a b.pdf"
    pump.poll_once()
    assert len(seen["direct"]) == 1


def test_a_failing_s3_invocation_is_retried_then_dead_lettered_like_lambda(pump, client):
    # given
    dlq = client("sqs").get_queue_url(QueueName=DIRECT_DLQ)["QueueUrl"]
    # when the function fails every time
    client("s3").put_object(Bucket=DIRECT_BUCKET, Key="creators/bad.pdf", Body=b"x")

    def dead_lettered():
        pump.poll_once()
        return client("sqs").receive_message(QueueUrl=dlq).get("Messages")

    (message,) = eventually(dead_lettered, timeout=10.0, interval=0.2)
    # then: three attempts, and Lambda's destination record holds the S3 event and the error
    assert [unquote_plus(k) for k in seen["direct"]] == ["creators/bad.pdf"] * 3
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    (s3_event,) = record["requestPayload"]["Records"]
    assert unquote_plus(s3_event["s3"]["object"]["key"]) == "creators/bad.pdf"
    assert record["responsePayload"]["errorType"] == "ValueError"
    local = client("sqs").get_queue_url(QueueName=DIRECT_BUCKET + "-local-s3-events")["QueueUrl"]
    assert in_queue(client, local) == {"visible": 0, "in_flight": 0}
