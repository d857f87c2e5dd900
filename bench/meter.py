"""Counting AWS calls and the capacity they consume, from inside the process: every botocore
call (PynamoDB's too) passes through BaseClient._make_api_call."""
from __future__ import annotations

import json
import math
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field

READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


@dataclass
class Tally:
    calls: Counter = field(default_factory=Counter)  # (service, operation) -> n
    read_units: float = 0.0
    write_units: float = 0.0

    def count(self, service: str, operations: set[str] | None = None) -> int:
        return sum(n for (s, op), n in self.calls.items()
                   if s == service and (operations is None or op in operations))

    def merged(self, other: Tally) -> Tally:
        return Tally(self.calls + other.calls, self.read_units + other.read_units,
                     self.write_units + other.write_units)


_state = threading.local()
_installed = False


def _size(item: dict) -> int:
    # DynamoDB sizes items by attribute names and values; their JSON is a close upper bound.
    return len(json.dumps(item, default=str))


def _units(operation: str, params: dict, response: dict) -> tuple[float, float]:
    """Read and write request units, as DynamoDB on-demand bills them (4 KB reads, half for
    eventually consistent; 1 KB writes; transactions twice)."""
    if operation in ("GetItem",):
        size = _size(response.get("Item", {}))
        factor = 1 if params.get("ConsistentRead") else 0.5
        return max(1, math.ceil(size / 4096)) * factor, 0
    if operation == "BatchGetItem":
        reads = 0.0
        for table, items in response.get("Responses", {}).items():
            factor = 1 if params["RequestItems"][table].get("ConsistentRead") else 0.5
            reads += sum(max(1, math.ceil(_size(i) / 4096)) * factor for i in items)
        return reads, 0
    if operation in ("Query", "Scan"):
        size = sum(_size(i) for i in response.get("Items", []))
        factor = 1 if params.get("ConsistentRead") else 0.5
        return max(1, math.ceil(size / 4096)) * factor, 0
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return 0, max(1, math.ceil(_size(params.get("Item", params.get("Key", {}))) / 1024))
    if operation == "BatchWriteItem":
        return 0, sum(max(1, math.ceil(_size(r.get("PutRequest", {}).get("Item", {})) / 1024))
                      for reqs in params["RequestItems"].values() for r in reqs)
    if operation == "TransactWriteItems":
        units = 0
        for entry in params["TransactItems"]:
            body = next(iter(entry.values()))
            units += 2 * max(1, math.ceil(_size(body.get("Item", body.get("Key", {}))) / 1024))
        return 0, units
    return 0, 0


def install() -> None:
    """Wrap botocore once per process; the watchers of the calling thread see each call
    (`watch()`): the benchmarks' one wrapper of BaseClient._make_api_call."""
    global _installed
    if _installed:
        return
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def observed(self, operation_name, api_params):
        watchers = getattr(_state, "watchers", None)
        if not watchers:
            return original(self, operation_name, api_params)
        service = self.meta.service_model.service_name
        # Each watcher sees the call before it is made (a failed call is still a round trip)
        # and may return a function that gets the response.
        finishes = [w(service, operation_name, api_params) for w in watchers]
        response = original(self, operation_name, api_params)
        for finish in finishes:
            if finish is not None:
                finish(response)
        return response

    BaseClient._make_api_call = observed
    _installed = True


@contextmanager
def watch(watcher):
    """Call `watcher(service, operation, params)` for each AWS call this thread makes inside
    the block; what it returns, if anything, is called with the response."""
    install()
    watchers = _state.__dict__.setdefault("watchers", [])
    watchers.append(watcher)
    try:
        yield
    finally:
        watchers.remove(watcher)


@contextmanager
def measure():
    """Count the AWS calls of this thread inside the block."""
    tally = Tally()

    def count(service: str, operation: str, params: dict):
        def done(response: dict) -> None:
            tally.calls[(service, operation)] += 1
            if service == "dynamodb":
                reads, writes = _units(operation, params, response)
                tally.read_units += reads
                tally.write_units += writes
        return done

    with watch(count):
        yield tally
