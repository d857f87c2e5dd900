"""The recommendations context's repository: its one table (`recommendations_table`), every
key and item shape. Derived data, kept by the order events (rebuildable from paid orders).

    USER#<user> / PROFILE         the buyer's Profile (JSON) and its version
    CO#<resource> / R#<other>     n: buyers who own both                 (a count row)
    TAG#<tag> / R#<resource>      n: purchases of it counted under the tag
    TREND#<day>#<shard> / R#<r>   n: its purchases that day (TTL expires_at)
    <any of those pks> / TOP      c_<id>: the KEEP largest counts of its rows, total (TTL
                                  expires_at on a trend's): what a request reads
    APPLIED#<event id> / <sub>    a domain event applied (outbox.applied_marker, TTL)

Why rows and a summary: one item holding every count of a key (the design before) grows with
the catalog (a tag's item reached 314 KB at 47,000 resources in bench/scale.py, past 400 KB
DynamoDB refuses the write) and every ADD to it is billed for its whole size. A count row is
~100 bytes whatever the catalog, counted exactly once in the event's transaction; the sparse
GSI `rank` (rankpk = the row's pk, by n) ranks a key's rows, and `refresh` writes the key's
TOP summary from it, bounded at KEEP counts, so a request still reads every key it needs in
one BatchGetItem. The summary is refreshed once per key per SQS batch (`refresh`), with the
rows this writer touched read consistently (the index lags its table), and never replaced
by one with a smaller total (the counts only grow, so a smaller total is an older view)."""
from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

import msgspec
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib import db
from chalicelib.config import settings
from chalicelib.recommendations.ranking import TREND_DAYS, Profile, trend_shard

SHARDS = 4  # trending keys per day: purchases of one day spread over this many
COUNT = "c_"
TOP = "TOP"
ROW = "R#"
KEEP = 50  # counts a summary keeps (~2 KB): a request ranks at most CANDIDATES of them
TREND_KEEP_DAYS = TREND_DAYS + 3


class CountRow(Model):
    """One count of a key (see the module's docstring); written by raw ADDs in the event's
    transaction, read here through the `rank` index when a summary is refreshed."""

    Meta = db.table_meta("recommendations_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    n = NumberAttribute(null=True)
    rankpk = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)
    rank = db.global_index("rank", number_sort="n")


class Applied(Exception):
    """The event was applied already (its marker exists)."""


class Conflict(Exception):
    """The profile changed since it was read (or the transaction met another): read again."""


def _key(pk: str, sk: str = TOP) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def profile_key(user_id: str) -> dict:
    return _key(f"USER#{user_id}", "PROFILE")


def co_key(resource_id: str) -> dict:
    """The summary of the resource's co-purchases (as every `*_key`: what a request reads)."""
    return _key(f"CO#{resource_id}")


def tag_key(tag: str) -> dict:
    return _key(f"TAG#{tag}")


def trend_key(day: str, shard: int) -> dict:
    return _key(f"TREND#{day}#{shard}")


def _trend_expiry(day: str) -> int:
    return int(time.mktime(date.fromisoformat(day).timetuple())) + TREND_KEEP_DAYS * 86400


def trend_keys(today: date) -> list[dict]:
    """The trending items of the last TREND_DAYS days (today included)."""
    return [trend_key((today - timedelta(days=age)).isoformat(), shard)
            for age in range(TREND_DAYS) for shard in range(SHARDS)]


def read(keys: list[dict]) -> db.Read:
    """The part of a `db.batch_read` that reads these items of the table."""
    unique = list({(k["pk"]["S"], k["sk"]["S"]): k for k in keys}.values())
    return db.Read(settings().recommendations_table, unique)


def by_key(items: list[dict]) -> dict[tuple[str, str], dict]:
    return {(item["pk"]["S"], item["sk"]["S"]): item for item in items}


def _at(found: dict[tuple[str, str], dict], key: dict) -> dict | None:
    return found.get((key["pk"]["S"], key["sk"]["S"]))


def counts_in(found: dict[tuple[str, str], dict], key: dict) -> dict[str, int]:
    """The counts of the item at `key` (empty when it was not found)."""
    item = _at(found, key) or {}
    return {name[len(COUNT):]: int(value["N"]) for name, value in item.items()
            if name.startswith(COUNT) and "N" in value}


def trend_in(found: dict[tuple[str, str], dict], today: date) -> dict[int, dict[str, int]]:
    """{age in days: {resource: purchases}} of what `trend_keys(today)` found."""
    out: dict[int, dict[str, int]] = {}
    for age in range(TREND_DAYS):
        day = (today - timedelta(days=age)).isoformat()
        merged: dict[str, int] = {}
        for shard in range(SHARDS):
            merged.update(counts_in(found, trend_key(day, shard)))
        if merged:
            out[age] = merged
    return out


def profile_in(found: dict[tuple[str, str], dict], user_id: str) -> tuple[Profile, int]:
    """The user's profile and its version (an empty profile, version 0, when none)."""
    item = _at(found, profile_key(user_id))
    if not item:
        return Profile(), 0
    return (msgspec.json.decode(item["profile"]["S"], type=Profile),
            int(item["version"]["N"]))


def load_profile(user_id: str) -> tuple[Profile, int]:
    """The user's profile, read consistently (before a conditioned write)."""
    from chalicelib import aws

    reply = aws.dynamodb().get_item(TableName=settings().recommendations_table,
                                    Key=profile_key(user_id), ConsistentRead=True)
    item = reply.get("Item")
    return profile_in(by_key([item]) if item else {}, user_id)


def _profile_put(user_id: str, profile: Profile, version: int) -> dict:
    condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"} \
        if version == 0 else {"ConditionExpression": "#v = :v",
                              "ExpressionAttributeNames": {"#v": "version"},
                              "ExpressionAttributeValues": {":v": {"N": str(version)}}}
    return {"Put": {"TableName": settings().recommendations_table,
                    "Item": profile_item(user_id, profile, version + 1), **condition}}


def profile_item(user_id: str, profile: Profile, version: int) -> dict:
    """The raw profile item (also what bench/scale.py loads)."""
    return {**profile_key(user_id), "profile": {"S": msgspec.json.encode(profile).decode()},
            "version": {"N": str(version)}}


def counts_item(key: dict, counts: dict[str, int], expires_at: int | None = None) -> dict:
    """A raw summary item of these counts, the KEEP largest kept (what `refresh` writes and
    bench/scale.py loads)."""
    kept = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:KEEP]
    item = {**key, **{COUNT + rid: {"N": str(n)} for rid, n in kept},
            "total": {"N": str(sum(n for _, n in kept))}}
    if expires_at is not None:
        item["expires_at"] = {"N": str(expires_at)}
    return item


def _row_adds(pk: str, ids: list[str], expires_at: int | None = None) -> list[dict]:
    """One ADD per count row: the row is created by its first count."""
    expression = "ADD n :one SET rankpk = :pk"
    values: dict[str, Any] = {":one": {"N": "1"}, ":pk": {"S": pk}}
    if expires_at is not None:
        expression += ", expires_at = :exp"
        values[":exp"] = {"N": str(expires_at)}
    return [{"Update": {"TableName": settings().recommendations_table,
                        "Key": _key(pk, ROW + rid), "UpdateExpression": expression,
                        "ExpressionAttributeValues": values}} for rid in ids]


def _marker_put(marker: Any) -> dict:
    return {"Put": {"TableName": settings().recommendations_table, "Item": marker.serialize(),
                    "ConditionExpression": "attribute_not_exists(pk)"}}


def _commit(items: list[dict]) -> None:
    """One transaction whose first item is the event's marker and second the profile."""
    from botocore.exceptions import ClientError

    from chalicelib import aws

    try:
        aws.dynamodb().transact_write_items(TransactItems=items)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
            raise
        codes = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
        if codes[:1] == ["ConditionalCheckFailed"]:
            raise Applied() from None
        if "ConditionalCheckFailed" in codes or "TransactionConflict" in codes:
            raise Conflict() from None
        raise


def record_purchase(marker: Any, user_id: str, profile: Profile, version: int,
                    resource_id: str, partners: list[str], tags: list[str],
                    day: str) -> dict[str, set[str]]:
    """In one transaction: the marker (condition: absent), the new profile (condition: the
    version read), the co-purchase counts both ways, the tag counts and the day's trending
    count (at most 2 + 2 * PARTNERS + TAGS_PER_RESOURCE + 1 = 88 items, under DynamoDB's
    100). Returns the rows counted, {pk: ids}, whose summaries are now behind them. Raises
    Applied or Conflict."""
    counted: dict[str, set[str]] = {}
    if partners:
        counted[co_key(resource_id)["pk"]["S"]] = set(partners)
        for partner in partners:
            counted[co_key(partner)["pk"]["S"]] = {resource_id}
    for tag in tags:
        counted[tag_key(tag)["pk"]["S"]] = {resource_id}
    trend = trend_key(day, trend_shard(resource_id, SHARDS))["pk"]["S"]
    counted[trend] = {resource_id}
    adds = [add for pk, ids in counted.items()
            for add in _row_adds(pk, sorted(ids), _trend_expiry(day) if pk == trend else None)]
    _commit([_marker_put(marker), _profile_put(user_id, profile, version), *adds])
    return counted


def refresh(touched: dict[str, set[str]]) -> None:
    """Rewrite the summary of each key {pk: ids of its rows this writer counted}: its KEEP
    largest rows by the `rank` index, those counted here read consistently from the table
    (the index may not show them yet). A summary with a larger total is left as it is."""
    from botocore.exceptions import ClientError

    from chalicelib import aws

    table = settings().recommendations_table
    wanted = [_key(pk, ROW + rid) for pk, ids in touched.items() for rid in ids]
    [fresh] = db.batch_read(db.Read(table, wanted, consistent=True))
    exact = {(item["pk"]["S"], item["sk"]["S"]): int(item["n"]["N"]) for item in fresh}
    for pk, ids in sorted(touched.items()):
        counts = {row.sk[len(ROW):]: int(row.n or 0) for row in
                  CountRow.rank.query(pk, scan_index_forward=False, limit=KEEP)}
        for rid in ids:
            n = exact.get((pk, ROW + rid))
            if n is not None:
                counts[rid] = max(n, counts.get(rid, 0))
        expires = _trend_expiry(pk.split("#")[1]) if pk.startswith("TREND#") else None
        item = counts_item(_key(pk), counts, expires)
        try:
            aws.dynamodb().put_item(
                TableName=table, Item=item,
                ConditionExpression="attribute_not_exists(pk) OR #t <= :t",
                ExpressionAttributeNames={"#t": "total"},
                ExpressionAttributeValues={":t": item["total"]})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise


def record_applied(marker: Any, user_id: str, profile: Profile | None, version: int) -> None:
    """The marker alone, or with a new profile (condition: the version read)."""
    items = [_marker_put(marker)]
    if profile is not None:
        items.append(_profile_put(user_id, profile, version))
    _commit(items)
