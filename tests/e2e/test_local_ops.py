"""Operator jobs against the running local stack: the payments dead-letter queue is listed
and redriven; reconciliation runs on demand and reports drift."""
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


def test_reconciliation_runs_on_demand_and_finds_no_drift_on_a_healthy_stack(stack):
    result = json.loads(ops("reconcile", "--ahead", "40"))
    assert set(result) == {"payments", "relayed", "points", "differences",
                           "search_and_cards_rebuilt"}
    assert set(result["payments"]) == {"pending_seen", "repaired", "reranked"}
    assert set(result["points"]) == {"lots_due", "points_expired", "failed"}
    assert result["points"]["failed"] == 0
    assert result["differences"] == []
    assert result["search_and_cards_rebuilt"] > 0  # the seeded catalog
