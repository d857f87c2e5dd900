"""The local stand-in for Lambda's event sources: polls the queues of the app's
`@app.on_sqs_message` handlers and the S3 notifications of its buckets on moto, and invokes the
same handler objects Lambda invokes, with Lambda-shaped events and a Lambda context.

SQS, as Lambda's event source mapping does it: a batch of up to `batch_size` (at most 10 per
receive) is handed to the handler; a `{"batchItemFailures": [...]}` answer deletes only the
other messages, an exception deletes none. What is not deleted comes back when its visibility
timeout ends, and SQS itself moves it to the dead-letter queue after maxReceiveCount receives.
`retry_delay_seconds` shortens that wait for failed messages (fast tests).

S3: moto only notifies SQS, SNS or Lambda functions it knows, so each bucket an
`@app.on_s3_event` handler names gets a local-only queue as an extra notification target (the
targets the template configured stay). Each record read from it is handed to the matching
handlers as `{"Records": [record]}`, as S3 invokes a Lambda function. A failing delivery is
tried again up to Lambda's asynchronous-invocation limit, then dropped.
"""
from __future__ import annotations

import base64
import fnmatch
import importlib
import json
import logging
import threading
from collections.abc import Iterable
from types import ModuleType
from typing import Any
from urllib.parse import unquote_plus

from chalice import Chalice
from chalice.app import S3EventConfig, SQSEventConfig
from chalice.config import Config
from chalice.constants import DEFAULT_LAMBDA_MEMORY_SIZE, DEFAULT_LAMBDA_TIMEOUT
from chalice.local import LambdaContext

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
    """A bucket's ObjectCreated notifications, through a local-only queue, to the
    `@app.on_s3_event` handlers of that bucket."""

    def __init__(self, pump: EventPump, bucket: str, configs: list[S3EventConfig]) -> None:
        super().__init__(pump)
        self.bucket = bucket
        self.handlers = [(c, resolve_handler(pump.module, c.handler_string)) for c in configs]
        # Bucket names may hold dots, queue names may not.
        self.queue_url = pump.sqs.create_queue(
            QueueName=bucket.replace(".", "-") + S3_QUEUE_SUFFIX,
            Attributes={"VisibilityTimeout": str(S3_QUEUE_VISIBILITY_SECONDS)})["QueueUrl"]
        queue_arn = pump.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = sorted({e for c in configs for e in c.events})
        try:
            current = pump.s3.get_bucket_notification_configuration(Bucket=bucket)
        except pump.s3.exceptions.NoSuchBucket:
            raise RuntimeError(f"{', '.join(c.name for c in configs)}: bucket {bucket} does "
                               "not exist; is it in infra/resources.yaml?") from None
        pump.s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration=with_queue_notification(
                current, S3_NOTIFICATION_ID, queue_arn, events))

    def poll(self, wait_seconds: int) -> int:
        messages = self.receive(SQS_MAX_BATCH, S3_QUEUE_VISIBILITY_SECONDS, wait_seconds)
        done, failed = [], []
        for message in messages:
            if self._deliver(message):
                done.append(message)
            elif int(message["Attributes"]["ApproximateReceiveCount"]) >= S3_MAX_ATTEMPTS:
                log.error("S3 event for %s dropped after %d attempts: %s", self.bucket,
                          S3_MAX_ATTEMPTS, message["Body"][:500])
                done.append(message)
            else:
                failed.append(message)
        self.delete(done)
        self.retry_later(failed)
        return len(messages)

    def _deliver(self, message: dict) -> bool:
        """Hand each record to the handlers that want it; False when one of them failed."""
        try:
            notification = json.loads(message["Body"])
        except ValueError:
            log.warning("not an S3 notification on %s: %.200s", self.queue_url, message["Body"])
            return True
        if notification.get("Event") == "s3:TestEvent":
            return True
        ok = True
        for record in notification.get("Records", []):
            for config, handler in self.handlers:
                if not s3_handler_wants(config, record):
                    continue
                try:
                    handler({"Records": [record]}, self.pump.context(config.name))
                except Exception:  # noqa: BLE001 - the handler's failure is what Lambda sees
                    log.warning("%s failed on %s", config.name,
                                record["s3"]["object"]["key"], exc_info=True)
                    ok = False
        return ok


class EventPump:
    """Delivers queued and S3 events to the app's handlers, from background threads or one
    round at a time (`poll_once`, for tests).

    Like `chalice deploy`, it wires the notifications of every bucket an `@app.on_s3_event`
    handler names, and of no other; `endpoint_url` is the moto server's, and `endpoints` names
    a service served elsewhere (as AWS_ENDPOINT_URL_<SERVICE> does for the app's clients).
    """

    def __init__(self, app: Chalice, module: ModuleType, region: str,
                 endpoint_url: str | None = None, *,
                 config: Config | None = None, retry_delay_seconds: int | None = None,
                 stop_event: threading.Event | None = None,
                 endpoints: dict[str, str] | None = None) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self.app = app
        self.module = module
        self.region = region
        self.retry_delay_seconds = retry_delay_seconds
        self.config = config or Config.create(chalice_stage="local", app_name=app.app_name)
        self.stop_event = stop_event or threading.Event()
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
            s3_configs = [s for s in self.app.event_sources if isinstance(s, S3EventConfig)]
            buckets = dict.fromkeys(c.bucket for c in s3_configs)
            self._sources = [
                *(_SqsSource(self, c) for c in sqs_configs),
                *(_S3Source(self, b, [c for c in s3_configs if c.bucket == b])
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
