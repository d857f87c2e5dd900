"""Operator jobs against the running local stack: the payments dead-letter queue is listed
and redriven, and so are the upload events Lambda gave up on (invoked again, through the
event pump); reconciliation runs on demand and reports drift."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.conftest import ROOT
from tests.support import eventually, fixture_object

pytestmark = pytest.mark.e2e


def ops(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "devstack.ops", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def depth(sqs, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return sum(int(v) for v in attributes.values())


def test_dead_letters_are_listed_and_redriven_to_the_consumer(boto, stack):
    sqs = boto("sqs")
    dlq = sqs.get_queue_url(QueueName="paidres-local-payments-dlq")["QueueUrl"]
    event = fixture_object("event")
    session = fixture_object("checkout.session")
    session.update(client_reference_id="gone-order", metadata={"order_id": "gone-order"})
    event.update(id="evt_dead_letter_e2e", type="checkout.session.expired",
                 data={"object": session})
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(event))
    assert "evt_dead_letter_e2e" in ops("dlq", "list", "payments")
    assert "moved 1 message" in ops("dlq", "redrive", "payments")
    queue = sqs.get_queue_url(QueueName="paidres-local-payments")["QueueUrl"]
    # The consumer acknowledges an event about an unknown order: nothing comes back.
    assert eventually(lambda: depth(sqs, queue) == 0 and depth(sqs, dlq) == 0)


def test_upload_events_lambda_gave_up_on_are_listed_and_invoked_again(boto, stack):
    # given an upload event in the on-failure destination, as Lambda writes it there
    sqs = boto("sqs")
    dlq = sqs.get_queue_url(QueueName="paidres-local-upload-events-dlq")["QueueUrl"]
    key = "creators/u_gone/r_gone/up_gone/book.pdf"
    s3_event = {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-12-03T10:00:00.000Z", "eventName": "ObjectCreated:Post",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "upload-events",
               "bucket": {"name": "paidres-local-uploads",
                          "arn": "arn:aws:s3:::paidres-local-uploads"},
               "object": {"key": key, "size": 10}}}]}
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({
        "version": "1.0", "timestamp": "2026-12-03T10:05:00.000Z",
        "requestContext": {"requestId": "r-1", "condition": "RetriesExhausted",
                           "approximateInvokeCount": 3,
                           "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:"
                                          "paidres-local-upload_events:live"},
        "requestPayload": s3_event,
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorType": "ClientError", "errorMessage": "S3 was down"}}))
    # when / then: listed with its key and error, then invoked again
    listed = ops("dlq", "list", "upload_events")
    assert key in listed and "ClientError: S3 was down" in listed
    assert "moved 1 message" in ops("dlq", "redrive", "upload_events")
    inbox = sqs.get_queue_url(QueueName="paidres-local-uploads-local-s3-events")["QueueUrl"]
    # The function acknowledges an object without an upload record: nothing comes back.
    assert eventually(lambda: depth(sqs, inbox) == 0 and depth(sqs, dlq) == 0)


def test_reconciliation_runs_on_demand_and_finds_no_drift_on_a_healthy_stack(stack):
    result = json.loads(ops("reconcile", "--ahead", "40"))
    assert set(result) == {"payments", "relayed", "points", "differences",
                           "search_and_cards_rebuilt"}
    assert set(result["payments"]) == {"pending_seen", "repaired", "reranked"}
    assert set(result["points"]) == {"lots_due", "points_expired", "failed"}
    assert result["points"]["failed"] == 0
    assert result["differences"] == []
    assert result["search_and_cards_rebuilt"] > 0  # the seeded catalog
