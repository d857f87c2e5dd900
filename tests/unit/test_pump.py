"""The event pump's translations between SQS/S3 and Lambda, without any AWS."""
from __future__ import annotations

import base64
import types

import pytest
from chalice.app import S3EventConfig

from devstack.pump import (
    destination_record,
    failed_message_ids,
    resolve_handler,
    s3_handler_wants,
    sqs_record,
    template_s3_targets,
    with_queue_notification,
)

ARN = "arn:aws:sqs:us-east-1:123456789012:jobs"

RECEIVED = {
    "MessageId": "m-1",
    "ReceiptHandle": "rh-1",
    "MD5OfBody": "0cc175b9c0f1b6a831c399e269772661",
    "Body": "a",
    "Attributes": {"SenderId": "AID", "SentTimestamp": "1700000000000",
                   "ApproximateReceiveCount": "2",
                   "ApproximateFirstReceiveTimestamp": "1700000000100",
                   "Policy": "not a message attribute"},
    "MessageAttributes": {
        "kind": {"DataType": "String", "StringValue": "invoice"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    },
}


def test_received_message_becomes_a_lambda_sqs_record():
    record = sqs_record(RECEIVED, ARN, "us-east-1")

    assert record == {
        "messageId": "m-1",
        "receiptHandle": "rh-1",
        "body": "a",
        "attributes": {"SenderId": "AID", "SentTimestamp": "1700000000000",
                       "ApproximateReceiveCount": "2",
                       "ApproximateFirstReceiveTimestamp": "1700000000100"},
        "messageAttributes": {
            "kind": {"stringValue": "invoice", "binaryValue": None, "stringListValues": [],
                     "binaryListValues": [], "dataType": "String"},
            "blob": {"stringValue": None, "binaryValue": base64.b64encode(b"\x00\x01").decode(),
                     "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
        },
        "md5OfBody": "0cc175b9c0f1b6a831c399e269772661",
        "eventSource": "aws:sqs",
        "eventSourceARN": ARN,
        "awsRegion": "us-east-1",
    }


@pytest.mark.parametrize(("result", "failed"), [
    (None, set()),
    ({"batchItemFailures": []}, set()),
    ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
    ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, {"a", "b", "c"}),
    ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"a", "b", "c"}),
    ({"batchItemFailures": ["b"]}, {"a", "b", "c"}),
], ids=["no-answer", "no-failures", "one-failure", "unknown-id", "empty-id", "malformed"])
def test_handler_answer_decides_which_messages_failed(result, failed):
    assert failed_message_ids(result, ["a", "b", "c"]) == failed


def s3_record(bucket: str = "up", key: str = "reports/q1+summary.csv",
              event: str = "ObjectCreated:Put") -> dict:
    return {"eventName": event, "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}


def s3_config(bucket: str = "up", events: tuple[str, ...] = ("s3:ObjectCreated:*",),
              prefix: str | None = None, suffix: str | None = None) -> S3EventConfig:
    return S3EventConfig(name="h", bucket=bucket, events=list(events), prefix=prefix,
                         suffix=suffix, handler_string="app.h")


@pytest.mark.parametrize(("config", "record", "wanted"), [
    (s3_config(), s3_record(), True),
    (s3_config(bucket="other"), s3_record(), False),
    (s3_config(events=("s3:ObjectRemoved:*",)), s3_record(), False),
    (s3_config(events=("s3:ObjectCreated:Put",)), s3_record(event="ObjectCreated:Copy"), False),
    (s3_config(prefix="reports/", suffix=".csv"), s3_record(), True),
    (s3_config(prefix="reports/q1 "), s3_record(), True),
    (s3_config(prefix="invoices/"), s3_record(), False),
    (s3_config(suffix=".pdf"), s3_record(), False),
], ids=["match", "bucket", "event-kind", "event-exact", "prefix-suffix", "decoded-prefix",
        "prefix-miss", "suffix-miss"])
def test_s3_record_goes_to_handlers_whose_filter_it_matches(config, record, wanted):
    assert s3_handler_wants(config, record) is wanted


def test_app_handler_is_the_attribute_of_the_given_app_module():
    module = types.ModuleType("app_under_test")
    module.consume = object()

    assert resolve_handler(module, "app.consume") is module.consume


def test_blueprint_handler_is_found_in_its_own_module():
    from devstack import pump

    assert resolve_handler(types.ModuleType("unused"),
                           "devstack.pump.sqs_record") is pump.sqs_record


def test_pump_notification_is_added_beside_the_bucket_s_own_targets():
    current = {
        "ResponseMetadata": {"HTTPStatusCode": 200},
        "QueueConfigurations": [
            {"Id": "template", "QueueArn": "arn:q:template", "Events": ["s3:ObjectCreated:*"]},
            {"Id": "pump", "QueueArn": "arn:q:stale", "Events": ["s3:ObjectRemoved:*"]},
        ],
        "TopicConfigurations": [{"Id": "t", "TopicArn": "arn:t", "Events": ["s3:*"]}],
    }

    config = with_queue_notification(current, "pump", "arn:q:local", ["s3:ObjectCreated:*"])

    assert config == {
        "QueueConfigurations": [
            {"Id": "template", "QueueArn": "arn:q:template", "Events": ["s3:ObjectCreated:*"]},
            {"Id": "pump", "QueueArn": "arn:q:local", "Events": ["s3:ObjectCreated:*"]},
        ],
        "TopicConfigurations": [{"Id": "t", "TopicArn": "arn:t", "Events": ["s3:*"]}],
    }


def test_the_templates_wire_the_uploads_bucket_to_the_upload_events_function_locally():
    # given the real app and infra/ templates
    import app as module

    # when
    (target,) = template_s3_targets(module.app, "local", "us-east-1")

    # then: the function S3 invokes in production, with Lambda's retries and the DLQ
    assert target.config.name == "upload_events"
    assert target.config.handler_string == "app.upload_events"
    assert target.config.bucket == "paidres-local-uploads"
    assert target.config.events == ["s3:ObjectCreated:*"]
    assert (target.config.prefix, target.config.suffix) == ("creators/", None)
    assert target.max_attempts == 3
    assert target.dead_letter_queue == "paidres-local-upload-events-dlq"


def test_a_function_the_app_does_not_define_gets_no_local_target():
    from chalice import Chalice

    # given an app without upload_events
    other = Chalice(app_name="paidres")

    # when / then
    assert template_s3_targets(other, "local", "us-east-1") == []


def test_an_event_lambda_gave_up_on_is_dead_lettered_as_lambda_s_destination_record():
    event = {"Records": [s3_record()]}

    record = destination_record(event, "arn:aws:lambda:us-east-1:1:function:f:live", 3,
                                ValueError("boom"))

    assert record["version"] == "1.0"
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"].endswith(":function:f:live")
    assert record["requestPayload"] == event
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"] == {"errorMessage": "boom", "errorType": "ValueError"}
