"""db.batch_read: the one BatchGetItem of several contexts' reads, answered in their order."""
from __future__ import annotations

import pytest

from chalicelib import db


class FakeDynamoDB:
    """Answers each BatchGetItem from `replies`, and records what it was asked."""

    def __init__(self, replies: list[dict]) -> None:
        self.replies, self.requests = replies, []

    def batch_get_item(self, RequestItems: dict) -> dict:
        self.requests.append(RequestItems)
        return self.replies.pop(0)


def key(value: str) -> dict:
    return {"pk": {"S": value}}


def test_results_come_in_the_order_of_the_reads_and_unprocessed_keys_are_asked_again(
        monkeypatch):
    # Given DynamoDB leaving one key of the second table unprocessed the first time
    fake = FakeDynamoDB([
        {"Responses": {"b": [key("b1")], "a": [key("a1")]},
         "UnprocessedKeys": {"b": {"Keys": [key("b2")]}}},
        {"Responses": {"b": [key("b2")]}},
    ])
    monkeypatch.setattr("chalicelib.aws.dynamodb", lambda: fake)
    # When three reads are sent, one of them with no keys
    found = db.batch_read(db.Read("a", [key("a1")], projection="email"),
                          db.Read("c", []),
                          db.Read("b", [key("b1"), key("b2")], "sk, #s", {"#s": "status"}))
    # Then each read's items come back in its place, the empty read is never sent,
    # and only the unprocessed key is asked again
    assert found == [[key("a1")], [], [key("b1"), key("b2")]]
    assert fake.requests == [
        {"a": {"Keys": [key("a1")], "ProjectionExpression": "email"},
         "b": {"Keys": [key("b1"), key("b2")], "ProjectionExpression": "sk, #s",
               "ExpressionAttributeNames": {"#s": "status"}}},
        {"b": {"Keys": [key("b2")]}},
    ]


def test_two_reads_of_one_table_are_refused_and_keys_left_unprocessed_for_good_raise(
        monkeypatch):
    with pytest.raises(ValueError):
        db.batch_read(db.Read("a", [key("1")]), db.Read("a", [key("2")]))
    stuck = {"UnprocessedKeys": {"a": {"Keys": [key("1")]}}}
    fake = FakeDynamoDB([stuck] * 5)
    monkeypatch.setattr("chalicelib.aws.dynamodb", lambda: fake)
    with pytest.raises(RuntimeError):
        db.batch_read(db.Read("a", [key("1")]))
    assert len(fake.requests) == 5
