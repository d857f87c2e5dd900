"""The local stand-in for Lambda's event sources: polls the queues of the app's
`@app.on_sqs_message` handlers and the S3 notifications of its buckets on moto, and invokes the
same handler objects Lambda invokes, with Lambda-shaped events and a Lambda context.

SQS, as Lambda's event source mapping does it: a batch of up to `batch_size` (at most 10 per
receive) is handed to the handler; a `{"batchItemFailures": [...]}` answer deletes only the
other messages, an exception deletes none. What is not deleted comes back when its visibility
timeout ends, and SQS itself moves it to the dead-letter queue after maxReceiveCount receives.
`retry_delay_seconds` shortens that wait for failed messages (fast tests).

S3, as S3 invokes a Lambda function (asynchronously): moto only notifies SQS, SNS or Lambda
functions it knows, so each bucket with an S3 target gets a local-only queue as an extra
notification target (the targets the template configured stay), playing the part of Lambda's
own queue of asynchronous invocations. The targets are the app's `@app.on_s3_event` handlers
and the functions the infra templates wire to a bucket (`template_s3_targets`: the bucket's
LambdaConfigurations in infra/resources.yaml, retries and on-failure destination from the
function's AWS::Lambda::EventInvokeConfig in infra/app-merge.yaml). Each record read is handed
to the matching handlers as `{"Records": [record]}`. A failing delivery is tried again up to
the target's attempts (Lambda's default: once and two retries), then sent to its on-failure
destination queue in Lambda's destination-record shape, or dropped when it has none.
"""
from __future__ import annotations

import base64
import fnmatch
import importlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote_plus

from chalice import Chalice
from chalice.app import S3EventConfig, SQSEventConfig
from chalice.config import Config
from chalice.constants import DEFAULT_LAMBDA_MEMORY_SIZE, DEFAULT_LAMBDA_TIMEOUT
from chalice.local import LambdaContext
from chalice.utils import to_cfn_resource_name

log = logging.getLogger(__name__)

SQS_MAX_BATCH = 10
# Lambda runs an asynchronous invocation (S3's) at most three times: once and two retries.
S3_MAX_ATTEMPTS = 3
S3_QUEUE_SUFFIX = "-local-s3-events"
S3_QUEUE_VISIBILITY_SECONDS = 60
S3_NOTIFICATION_ID = "local-event-pump"
_NOTIFICATION_TARGETS = ("QueueConfigurations", "TopicConfigurations",
                         "LambdaFunctionConfigurations", "EventBridgeConfiguration")
# The system attributes Lambda copies into an SQS record (the FIFO ones only exist there).
LAMBDA_SQS_ATTRIBUTES = ("ApproximateReceiveCount", "SentTimestamp", "SenderId",
                         "ApproximateFirstReceiveTimestamp", "SequenceNumber",
                         "MessageGroupId", "MessageDeduplicationId", "AWSTraceHeader")


def resolve_handler(module: ModuleType, handler_string: str) -> Any:
    """The object Lambda calls for `handler_string` ("app.name" is an attribute of `module`,
    the app module; a blueprint's handler lives in its own module)."""
    module_name, _, attribute = handler_string.rpartition(".")
    owner = module if module_name == "app" else importlib.import_module(module_name)
    return getattr(owner, attribute)


def _lambda_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """SQS API message attributes in the camel-case shape of a Lambda SQS record."""
    out = {}
    for name, value in attributes.items():
        binary = value.get("BinaryValue")
        out[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": base64.b64encode(binary).decode() if binary is not None else None,
            "stringListValues": list(value.get("StringListValues", [])),
            "binaryListValues": [base64.b64encode(v).decode()
                                 for v in value.get("BinaryListValues", [])],
            "dataType": value["DataType"],
        }
    return out


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One received SQS message as a record of Lambda's SQS event."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {k: attributes[k] for k in LAMBDA_SQS_ATTRIBUTES if k in attributes},
        "messageAttributes": _lambda_message_attributes(message.get("MessageAttributes", {})),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def failed_message_ids(result: Any, message_ids: Iterable[str]) -> set[str]:
    """The messages a handler's answer reports as failed.

    Like Lambda: an answer without `batchItemFailures` means all succeeded; an item whose
    identifier is missing or not in the batch fails the whole batch.
    """
    ids = set(message_ids)
    failures = result.get("batchItemFailures") if isinstance(result, dict) else None
    if not failures:
        return set()
    failed = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in ids:
            return ids
        failed.add(identifier)
    return failed


def s3_handler_wants(config: S3EventConfig, record: dict[str, Any]) -> bool:
    """Whether an S3 notification record matches a handler's bucket, events and key filter."""
    s3 = record.get("s3", {})
    if s3.get("bucket", {}).get("name") != config.bucket:
        return False
    event_name = "s3:" + record.get("eventName", "")
    if not any(fnmatch.fnmatchcase(event_name, pattern) for pattern in config.events):
        return False
    # S3 filters on the object key itself; the record carries it URL-encoded.
    key = unquote_plus(s3.get("object", {}).get("key", ""))
    return key.startswith(config.prefix or "") and key.endswith(config.suffix or "")


def with_queue_notification(current: dict[str, Any], notification_id: str, queue_arn: str,
                            events: list[str]) -> dict[str, Any]:
    """A bucket's notification configuration plus one queue target (replacing an earlier one
    with the same id); the targets the template configured keep their events."""
    kept = {k: v for k, v in current.items() if k in _NOTIFICATION_TARGETS}
    queues = [q for q in kept.get("QueueConfigurations", []) if q.get("Id") != notification_id]
    queues.append({"Id": notification_id, "QueueArn": queue_arn, "Events": events})
    return {**kept, "QueueConfigurations": queues}


@dataclass(frozen=True)
class S3Target:
    """A function a bucket invokes: which events, how often Lambda tries, where a failed
    event goes (a queue name, or None to drop it)."""

    config: S3EventConfig
    max_attempts: int = S3_MAX_ATTEMPTS
    dead_letter_queue: str | None = None


INFRA = Path(__file__).resolve().parents[1] / "infra"


def template_s3_targets(app: Chalice, stage: str, region: str,
                        infra: Path = INFRA) -> list[S3Target]:
    """The S3 → Lambda wiring the infra templates deploy, for the app's pure Lambda functions
    (`@app.lambda_function`), so the local stack runs what production runs."""
    from devstack.provision import Resolver, load_template

    data = load_template(infra / "resources.yaml")
    merge = load_template(infra / "app-merge.yaml")
    params = {"Stage": stage, "AppName": app.app_name}
    functions = {f"{app.app_name}-{stage}-{f.name}": f for f in app.pure_lambda_functions}
    retries: dict[str, tuple[int, str | None]] = {}
    resolve_merge = Resolver(merge, params, region)
    for res in merge["Resources"].values():
        if res.get("Type") != "AWS::Lambda::EventInvokeConfig":
            continue
        props = res["Properties"]
        destination = resolve_merge(props.get("DestinationConfig", {})).get(
            "OnFailure", {}).get("Destination")
        retries[props["FunctionName"]["Ref"]] = (
            int(props.get("MaximumRetryAttempts", 2)) + 1,
            destination.rsplit(":", 1)[-1] if destination else None)
    resolve = Resolver(data, params, region)
    targets = []
    for res in data["Resources"].values():
        if res.get("Type") != "AWS::S3::Bucket":
            continue
        props = resolve(res.get("Properties", {}))
        for entry in props.get("NotificationConfiguration", {}).get("LambdaConfigurations", []):
            # arn:aws:lambda:<region>:<account>:function:<name>[:<alias>]
            name = entry["Function"].split(":function:", 1)[1].split(":", 1)[0]
            function = functions.get(name)
            if function is None:
                continue
            rules = {r["Name"].lower(): r["Value"] for r in
                     entry.get("Filter", {}).get("S3Key", {}).get("Rules", [])}
            attempts, dead = retries.get(to_cfn_resource_name(function.name),
                                         (S3_MAX_ATTEMPTS, None))
            targets.append(S3Target(
                S3EventConfig(name=function.name, handler_string=function.handler_string,
                              bucket=props["BucketName"], events=[entry["Event"]],
                              prefix=rules.get("prefix"), suffix=rules.get("suffix")),
                max_attempts=attempts, dead_letter_queue=dead))
    return targets


def destination_record(event: dict[str, Any], function_arn: str, attempts: int,
                       error: BaseException) -> dict[str, Any]:
    """What Lambda sends an asynchronous invocation's on-failure destination."""
    return {
        "version": "1.0",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": function_arn,
                           "condition": "RetriesExhausted", "approximateInvokeCount": attempts},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                            "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__},
    }


def s3_queue_name(bucket: str) -> str:
    """The local-only queue a bucket's events wait in for the pump (Lambda's async queue).
    Bucket names may hold dots, queue names may not."""
    return bucket.replace(".", "-") + S3_QUEUE_SUFFIX


class _Source:
    """One queue the pump reads, and what it does with each batch."""

    queue_url: str

    def __init__(self, pump: EventPump) -> None:
        self.pump = pump

    def receive(self, max_messages: int, visibility: int, wait_seconds: int) -> list[dict]:
        return self.pump.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_seconds, VisibilityTimeout=visibility,
            AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])

    def delete(self, messages: list[dict]) -> None:
        for start in range(0, len(messages), SQS_MAX_BATCH):
            chunk = messages[start:start + SQS_MAX_BATCH]
            self.pump.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)])

    def retry_later(self, messages: list[dict]) -> None:
        """Make failed messages visible again after the pump's retry delay, when it has one."""
        delay = self.pump.retry_delay_seconds
        if delay is None or not messages:
            return
        for start in range(0, len(messages), SQS_MAX_BATCH):
            chunk = messages[start:start + SQS_MAX_BATCH]
            self.pump.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": delay}
                for i, m in enumerate(chunk)])

    def poll(self, wait_seconds: int) -> int:
        raise NotImplementedError


class _SqsSource(_Source):
    """An `@app.on_sqs_message` handler and its queue."""

    def __init__(self, pump: EventPump, config: SQSEventConfig) -> None:
        super().__init__(pump)
        self.config = config
        self.handler = resolve_handler(pump.module, config.handler_string)
        name = config.queue or str(config.queue_arn).rsplit(":", 1)[-1]
        try:
            self.queue_url = pump.sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except pump.sqs.exceptions.QueueDoesNotExist:
            raise RuntimeError(f"handler {config.name}: queue {name} does not exist; is it in "
                               "infra/resources.yaml?") from None
        attributes = pump.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn", "VisibilityTimeout"])[
            "Attributes"]
        self.queue_arn = attributes["QueueArn"]
        self.visibility = int(attributes["VisibilityTimeout"])

    def poll(self, wait_seconds: int) -> int:
        messages = self.receive(min(self.config.batch_size, SQS_MAX_BATCH), self.visibility,
                                wait_seconds)
        if not messages:
            return 0
        event = {"Records": [sqs_record(m, self.queue_arn, self.pump.region)
                             for m in messages]}
        ids = [m["MessageId"] for m in messages]
        try:
            result = self.handler(event, self.pump.context(self.config.name))
        except Exception:  # noqa: BLE001 - the handler's failure is what Lambda would see
            log.warning("%s failed; %d message(s) will be retried", self.config.name,
                        len(messages), exc_info=True)
            failed = set(ids)
        else:
            failed = failed_message_ids(result, ids)
            if failed:
                log.warning("%s reported %d failed message(s) of %d", self.config.name,
                            len(failed), len(messages))
        self.delete([m for m in messages if m["MessageId"] not in failed])
        self.retry_later([m for m in messages if m["MessageId"] in failed])
        return len(messages)


class _S3Source(_Source):
    """A bucket's notifications, through a local-only queue, to the S3 targets of that
    bucket (the app's `@app.on_s3_event` handlers and the functions the templates wire)."""

    def __init__(self, pump: EventPump, bucket: str, targets: list[S3Target]) -> None:
        super().__init__(pump)
        self.bucket = bucket
        self.handlers = [(t, resolve_handler(pump.module, t.config.handler_string))
                         for t in targets]
        self.queue_url = pump.sqs.create_queue(
            QueueName=s3_queue_name(bucket),
            Attributes={"VisibilityTimeout": str(S3_QUEUE_VISIBILITY_SECONDS)})["QueueUrl"]
        queue_arn = pump.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = sorted({e for t in targets for e in t.config.events})
        try:
            current = pump.s3.get_bucket_notification_configuration(Bucket=bucket)
        except pump.s3.exceptions.NoSuchBucket:
            raise RuntimeError(f"{', '.join(t.config.name for t in targets)}: bucket {bucket} "
                               "does not exist; is it in infra/resources.yaml?") from None
        pump.s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration=with_queue_notification(
                current, S3_NOTIFICATION_ID, queue_arn, events))

    def poll(self, wait_seconds: int) -> int:
        messages = self.receive(SQS_MAX_BATCH, S3_QUEUE_VISIBILITY_SECONDS, wait_seconds)
        done, failed = [], []
        for message in messages:
            attempt = int(message["Attributes"]["ApproximateReceiveCount"])
            if self._deliver(message, attempt):
                done.append(message)
            else:
                failed.append(message)
        self.delete(done)
        self.retry_later(failed)
        return len(messages)

    def _deliver(self, message: dict, attempt: int) -> bool:
        """Hand each record to the targets that want it; False when one of them failed and
        may be tried again (one out of attempts is dead-lettered or dropped instead)."""
        try:
            notification = json.loads(message["Body"])
        except ValueError:
            log.warning("not an S3 notification on %s: %.200s", self.queue_url, message["Body"])
            return True
        if notification.get("Event") == "s3:TestEvent":
            return True
        ok = True
        for record in notification.get("Records", []):
            for target, handler in self.handlers:
                if not s3_handler_wants(target.config, record):
                    continue
                name = target.config.name
                event = {"Records": [record]}
                try:
                    handler(event, self.pump.context(name))
                except Exception as error:  # noqa: BLE001 - what Lambda would see
                    log.warning("%s failed on %s (attempt %d of %d)", name,
                                record["s3"]["object"]["key"], attempt, target.max_attempts,
                                exc_info=True)
                    if attempt < target.max_attempts:
                        ok = False
                    else:
                        self._give_up(target, event, attempt, error)
        return ok

    def _give_up(self, target: S3Target, event: dict, attempts: int,
                 error: BaseException) -> None:
        if target.dead_letter_queue is None:
            log.error("S3 event for %s dropped after %d attempts: %.500s", target.config.name,
                      attempts, json.dumps(event))
            return
        url = self.pump.sqs.get_queue_url(QueueName=target.dead_letter_queue)["QueueUrl"]
        function = self.pump.context(target.config.name).function_name
        arn = f"arn:aws:lambda:{self.pump.region}:123456789012:function:{function}:live"
        self.pump.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(
            destination_record(event, arn, attempts, error)))
        log.error("S3 event for %s sent to %s after %d attempts", target.config.name,
                  target.dead_letter_queue, attempts)


class EventPump:
    """Delivers queued and S3 events to the app's handlers, from background threads or one
    round at a time (`poll_once`, for tests).

    It wires the notifications of every bucket an S3 target names (an `@app.on_s3_event`
    handler, as `chalice deploy` does, or a function the templates wire; `s3_targets`
    replaces the templates' list), and of no other; `endpoint_url` is the moto server's, and
    `endpoints` names a service served elsewhere (as AWS_ENDPOINT_URL_<SERVICE> does for the
    app's clients).
    """

    def __init__(self, app: Chalice, module: ModuleType, region: str,
                 endpoint_url: str | None = None, *,
                 config: Config | None = None, retry_delay_seconds: int | None = None,
                 stop_event: threading.Event | None = None,
                 endpoints: dict[str, str] | None = None,
                 s3_targets: list[S3Target] | None = None) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self.app = app
        self.module = module
        self.region = region
        self.retry_delay_seconds = retry_delay_seconds
        self.config = config or Config.create(chalice_stage="local", app_name=app.app_name)
        self.stop_event = stop_event or threading.Event()
        self.s3_targets = s3_targets if s3_targets is not None else template_s3_targets(
            app, self.config.chalice_stage, region)
        session = boto3.session.Session()
        # Reads must outlast a long poll; the poll itself is short so stopping is quick.
        boto = BotoConfig(retries={"mode": "standard", "max_attempts": 2}, read_timeout=20)
        endpoints = endpoints or {}
        self.sqs = session.client("sqs", region_name=region, config=boto,
                                  endpoint_url=endpoints.get("sqs", endpoint_url))
        self.s3 = session.client("s3", region_name=region, config=boto,
                                 endpoint_url=endpoints.get("s3", endpoint_url))
        self._sources: list[_Source] | None = None
        self._threads: list[threading.Thread] = []

    def sources(self) -> list[_Source]:
        """The queues to read: resolved, and the buckets' notifications wired, on first use."""
        if self._sources is None:
            sqs_configs = [s for s in self.app.event_sources if isinstance(s, SQSEventConfig)]
            s3_targets = [*(S3Target(s) for s in self.app.event_sources
                            if isinstance(s, S3EventConfig)), *self.s3_targets]
            buckets = dict.fromkeys(t.config.bucket for t in s3_targets)
            self._sources = [
                *(_SqsSource(self, c) for c in sqs_configs),
                *(_S3Source(self, b, [t for t in s3_targets if t.config.bucket == b])
                  for b in buckets),
            ]
        return self._sources

    def context(self, name: str) -> LambdaContext:
        """A Lambda context for the function of handler `name`, named as chalice deploys it."""
        scoped = self.config.scope(self.config.chalice_stage, name)
        timeout = scoped.lambda_timeout or DEFAULT_LAMBDA_TIMEOUT
        return LambdaContext(
            function_name=f"{self.app.app_name}-{self.config.chalice_stage}-{name}",
            memory_size=scoped.lambda_memory_size or DEFAULT_LAMBDA_MEMORY_SIZE,
            max_runtime_ms=timeout * 1000)

    def poll_once(self, wait_seconds: int = 0) -> int:
        """One receive from every queue, delivered; returns how many messages were read."""
        return sum(source.poll(wait_seconds) for source in self.sources())

    def start(self) -> None:
        """Poll every queue in its own daemon thread until `stop`."""
        if self._threads:
            raise RuntimeError("the event pump is already running")
        for source in self.sources():
            thread = threading.Thread(target=self._run, args=(source,), daemon=True,
                                      name=f"event-pump:{source.queue_url.rsplit('/', 1)[-1]}")
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling and wait for the threads (a delivery in progress finishes first)."""
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def _run(self, source: _Source) -> None:
        while not self.stop_event.is_set():
            try:
                source.poll(wait_seconds=1)
            except Exception:  # noqa: BLE001 - keep pumping; moto may be restarting or gone
                if self.stop_event.is_set():
                    return
                log.exception("event pump: polling %s failed", source.queue_url)
                self.stop_event.wait(1)
