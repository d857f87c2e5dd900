"""PynamoDB plumbing shared by the repositories: table metadata from configuration, the
connection for transactions, reading why a transaction was cancelled, and `batch_read`: one
BatchGetItem over the tables of several contexts, each handing its keys over as a `Read`."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

from chalicelib.config import settings


def global_index(name: str, number_sort: str | None = None) -> Any:
    """A PynamoDB global index `name` keyed by `<name>pk` / `<name>sk`, all attributes
    projected: the shape of every GSI in infra/resources.yaml; or, with `number_sort`, sorted
    by that number attribute instead (a ranking)."""
    from pynamodb.attributes import NumberAttribute, UnicodeAttribute
    from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

    meta = type("Meta", (), {"index_name": name, "projection": AllProjection()})
    sort = ({number_sort: NumberAttribute(range_key=True)} if number_sort
            else {f"{name}sk": UnicodeAttribute(range_key=True)})
    return type(f"{name.title()}Index", (GlobalSecondaryIndex,), {
        "Meta": meta, f"{name}pk": UnicodeAttribute(hash_key=True), **sort})()


def _share_botocore_session() -> None:
    """PynamoDB builds a botocore session per connection, and each model has its own
    connection; point them all at the process's one session (see chalicelib.aws)."""
    import pynamodb.connection.base as base

    from chalicelib import aws

    base.get_session = aws.botocore_session


def table_meta(setting: str) -> Any:
    """A PynamoDB `Meta` for the table named by `settings().<setting>`.

    Read when a model class is defined; no connection is made until the first request.
    (Typed Any: PynamoDB types `Model.Meta` as its MetaProtocol, which a class built at run
    time cannot name.)
    """
    _share_botocore_session()
    cfg = settings()

    class Meta:
        table_name = getattr(cfg, setting)
        region = cfg.region
        host = cfg.endpoint_url("dynamodb")
        max_retry_attempts = 3
        connect_timeout_seconds = 3
        read_timeout_seconds = 10

    return Meta


_connection: Any = None


def connection() -> Any:
    """The shared PynamoDB connection used for TransactWrite/TransactGet."""
    global _connection
    if _connection is None:
        from pynamodb.connection import Connection

        cfg = settings()
        _connection = Connection(region=cfg.region, host=cfg.endpoint_url("dynamodb"))
    return _connection


def transaction() -> Any:
    """A PynamoDB TransactWrite on the shared connection whose failures report reasons in
    the order the items were added.

    PynamoDB sends condition checks, then deletes, then puts, then updates, whatever order
    they were added in, and DynamoDB answers in the order sent; reading reasons by position
    would otherwise blame the wrong item.
    """
    from pynamodb.exceptions import TransactWriteError
    from pynamodb.transactions import TransactWrite

    class Transaction(TransactWrite):
        def __init__(self) -> None:
            super().__init__(connection=connection())
            self.kinds: list[str] = []

        def condition_check(self, *args: Any, **kwargs: Any) -> None:
            self.kinds.append("check")
            super().condition_check(*args, **kwargs)

        def delete(self, *args: Any, **kwargs: Any) -> None:
            self.kinds.append("delete")
            super().delete(*args, **kwargs)

        def save(self, *args: Any, **kwargs: Any) -> None:
            self.kinds.append("put")
            super().save(*args, **kwargs)

        def update(self, *args: Any, **kwargs: Any) -> None:
            self.kinds.append("update")
            super().update(*args, **kwargs)

        def _commit(self) -> Any:
            try:
                return super()._commit()
            except TransactWriteError as exc:
                sent = [i for kind in ("check", "delete", "put", "update")
                        for i, k in enumerate(self.kinds) if k == kind]
                raw = _raw_codes(exc)
                by_call: list[str | None] = [None] * len(self.kinds)
                for position, call in enumerate(sent):
                    by_call[call] = raw[position] if position < len(raw) else None
                exc.codes_by_call = by_call  # type: ignore[attr-defined]
                raise

    return Transaction()


def _raw_codes(exc: Exception) -> list[str | None]:
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return [getattr(r, "code", None) if r is not None else None for r in reasons]


def cancellation_codes(exc: Exception) -> list[str | None]:
    """The reason code of each item of a cancelled `transaction()`, in the order the items
    were added (None where the item passed)."""
    codes = getattr(exc, "codes_by_call", None)
    return codes if codes is not None else _raw_codes(exc)


def is_condition_failure(exc: Exception) -> bool:
    """True when a put/update/delete failed on its condition (not on a fault)."""
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def plain_map(value: Any) -> dict:
    """A stored map attribute (PynamoDB's raw MapAttribute, a dict, or None) as a dict."""
    return value.as_dict() if hasattr(value, "as_dict") else dict(value or {})


def now_iso() -> str:
    return iso_at(datetime.now(UTC).timestamp())


def iso_at(seconds: float) -> str:
    """The sortable UTC timestamp (the one stored in keys) of epoch `seconds`."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


T = TypeVar("T")


def mutate(load: Callable[[], T], change: Callable[[T], list], conflict: Exception,
           attempts: int = 4) -> T:
    """Read an item, compute update actions from it, and write them under the version read
    (the model's VersionAttribute adds the condition). When another writer got there first the
    change is recomputed on fresh state; after `attempts` losses, `conflict` is raised."""
    from pynamodb.exceptions import UpdateError

    for _ in range(attempts):
        item = load()
        actions = change(item)
        if not actions:
            return item
        try:
            item.update(actions=actions)  # type: ignore[attr-defined]
            return item
        except UpdateError as exc:
            if not is_condition_failure(exc):
                raise
    raise conflict


def page(results: Iterable[Any]) -> tuple[list[Any], dict | None]:
    """Drain a PynamoDB result iterator: (items, position to resume from)."""
    items = list(results)
    return items, getattr(results, "last_evaluated_key", None)


class Read(NamedTuple):
    """One table's part of a `batch_read`: raw DynamoDB keys of that table, and what to
    project of each item. How a context hands another its keys without its models: the
    owning context builds the Read (and parses the raw items it gets back)."""

    table: str
    keys: list[dict]
    projection: str | None = None  # ProjectionExpression
    names: dict | None = None  # ExpressionAttributeNames
    consistent: bool = False  # ConsistentRead


BATCH_GET_KEYS = 100  # DynamoDB's most keys in one BatchGetItem


def batch_read(*reads: Read) -> list[list[dict]]:
    """One BatchGetItem over several tables (one per BATCH_GET_KEYS keys): the raw items each
    read found, in the order of the reads (keys DynamoDB left unprocessed are asked again).
    One read per table; a read without keys finds nothing and is not sent."""
    from chalicelib import aws

    tables = [read.table for read in reads]
    if len(set(tables)) != len(tables):
        raise ValueError(f"one read per table in a BatchGetItem: {tables}")
    found: dict[str, list[dict]] = {table: [] for table in tables}
    wanted = [(read, key) for read in reads for key in read.keys]
    for start in range(0, len(wanted), BATCH_GET_KEYS):
        request: dict[str, dict] = {}
        for read, key in wanted[start:start + BATCH_GET_KEYS]:
            if read.table not in request:
                request[read.table] = {"Keys": []}
                if read.projection:
                    request[read.table]["ProjectionExpression"] = read.projection
                if read.names:
                    request[read.table]["ExpressionAttributeNames"] = read.names
                if read.consistent:
                    request[read.table]["ConsistentRead"] = True
            request[read.table]["Keys"].append(key)
        pending = request
        for _ in range(5):
            if not pending:
                break
            reply = aws.dynamodb().batch_get_item(RequestItems=pending)
            for table, items in reply.get("Responses", {}).items():
                found[table].extend(items)
            pending = reply.get("UnprocessedKeys") or {}
        if pending:
            raise RuntimeError("DynamoDB left keys unprocessed")
    return [found[table] for table in tables]
