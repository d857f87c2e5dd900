"""The recommendations context's repository: its one table (`recommendations_table`), every
key and item shape. Derived data, kept by the order events (rebuildable from paid orders).

    USER#<user> / PROFILE         the buyer's Profile (JSON) and its version
    CO#<resource> / COUNTS        c_<other resource>: buyers who own both (one attribute each)
    TAG#<tag> / COUNTS            c_<resource>: purchases of it counted under the tag
    TREND#<day>#<shard> / COUNTS  c_<resource>: its purchases that day (TTL expires_at)
    APPLIED#<event id> / <sub>    a domain event applied (outbox.applied_marker, TTL)

Counts are top-level number attributes so an `ADD` creates or increments them in one write
(DynamoDB's ADD takes no nested path); a request reads a counts item whole with its key.
Raw client calls: the attributes are named by data, which a PynamoDB model cannot declare."""
from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

import msgspec

from chalicelib import db
from chalicelib.config import settings
from chalicelib.recommendations.ranking import TREND_DAYS, Profile, trend_shard

SHARDS = 4  # trending items per day: purchases of one day spread over this many items
COUNT = "c_"
COUNTS = "COUNTS"
TREND_KEEP_DAYS = TREND_DAYS + 3


class Applied(Exception):
    """The event was applied already (its marker exists)."""


class Conflict(Exception):
    """The profile changed since it was read (or the transaction met another): read again."""


def _key(pk: str, sk: str = COUNTS) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def profile_key(user_id: str) -> dict:
    return _key(f"USER#{user_id}", "PROFILE")


def co_key(resource_id: str) -> dict:
    return _key(f"CO#{resource_id}")


def tag_key(tag: str) -> dict:
    return _key(f"TAG#{tag}")


def trend_key(day: str, shard: int) -> dict:
    return _key(f"TREND#{day}#{shard}")


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
    """A raw counts item as the ADDs leave it (what bench/scale.py loads)."""
    item = {**key, **{COUNT + rid: {"N": str(n)} for rid, n in counts.items()}}
    if expires_at is not None:
        item["expires_at"] = {"N": str(expires_at)}
    return item


def _add(key: dict, resource_ids: list[str], expires_at: int | None = None) -> dict:
    names = {f"#c{i}": COUNT + rid for i, rid in enumerate(resource_ids)}
    expression = "ADD " + ", ".join(f"{name} :one" for name in names)
    values: dict[str, Any] = {":one": {"N": "1"}}
    if expires_at is not None:
        expression += " SET expires_at = :exp"
        values[":exp"] = {"N": str(expires_at)}
    return {"Update": {"TableName": settings().recommendations_table, "Key": key,
                       "UpdateExpression": expression, "ExpressionAttributeNames": names,
                       "ExpressionAttributeValues": values}}


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
                    day: str) -> None:
    """In one transaction: the marker (condition: absent), the new profile (condition: the
    version read), the co-purchase counts both ways, the tag counts and the day's trending
    count. Raises Applied or Conflict."""
    items = [_marker_put(marker), _profile_put(user_id, profile, version)]
    if partners:
        items.append(_add(co_key(resource_id), partners))
        items += [_add(co_key(partner), [resource_id]) for partner in partners]
    items += [_add(tag_key(tag), [resource_id]) for tag in tags]
    expires = int(time.mktime(date.fromisoformat(day).timetuple())) + TREND_KEEP_DAYS * 86400
    items.append(_add(trend_key(day, trend_shard(resource_id, SHARDS)), [resource_id],
                      expires))
    _commit(items)


def record_applied(marker: Any, user_id: str, profile: Profile | None, version: int) -> None:
    """The marker alone, or with a new profile (condition: the version read)."""
    items = [_marker_put(marker)]
    if profile is not None:
        items.append(_profile_put(user_id, profile, version))
    _commit(items)
