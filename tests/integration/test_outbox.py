"""The transactional outbox: a domain event commits with the change it reports, reaches its
subscribers after the commit, survives a crash or a queue outage in between (the relay
sends it), and counts once however often it is delivered."""
from __future__ import annotations

import pytest

from tests.support import drain, post_webhooks, publish, take_webhooks


@pytest.fixture
def sold(api, creator, admin, pump, stripe):
    """A published resource and a buyer who has paid for it, payment events not yet sent."""
    resource = publish(api, pump, creator[1]["access_token"], admin[1]["access_token"])
    _, pair = api.user_session()
    made = api.post("/checkout", {"items": [{"resource_id": resource["id"]}]},
                    token=pair["access_token"]).body
    stripe.pay(made["checkout_session_id"])
    return resource, made["order"]["id"], take_webhooks(stripe)


def sales(api, resource_id: str) -> int:
    return api.get(f"/resources/{resource_id}").body["resource"]["counts"]["sales"]


@pytest.fixture
def queue_down():
    """SQS refuses every batch sent (injected on the client, as throttling would come) until
    `restore()`."""
    from botocore.exceptions import ClientError

    from chalicelib import aws

    def refuse(**_):
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "injected"}},
                          "SendMessageBatch")

    events = aws.sqs().meta.events
    events.register("before-call.sqs.SendMessageBatch", refuse, unique_id="queue-down")

    class Down:
        restore = staticmethod(lambda: events.unregister("before-call.sqs.SendMessageBatch",
                                                         unique_id="queue-down"))

    yield Down()
    Down.restore()


def test_an_event_the_queue_did_not_take_waits_in_the_outbox_until_the_relay_sends_it(
        api, pump, sold, queue_down):
    from chalicelib import outbox
    from chalicelib.payments.processing import load

    resource, order_id, deliveries = sold
    # Given the payment commits while the analytics queue cannot be reached,
    post_webhooks(api, deliveries, pump)
    assert load(order_id).status == "paid"
    # then its event is kept, committed with the payment, and nothing is counted yet;
    left = outbox.pending("orders_table")
    assert [(item.pk[:7], item.event.count(order_id)) for item in left] == [("OUTBOX#", 1)]
    assert sales(api, resource["id"]) == 0
    # a relay while the queue is still down loses nothing,
    assert outbox.relay(everything=True) == 0 and len(outbox.pending("orders_table")) == 1
    # and once it is back, the relay sends it and the sale is counted.
    queue_down.restore()
    assert outbox.relay(everything=True) == 1
    drain(pump)
    assert outbox.pending("orders_table") == []
    assert sales(api, resource["id"]) == 1


def test_the_relay_leaves_events_young_enough_to_be_on_their_way(api, pump, sold,
                                                                  queue_down):
    import time

    from chalicelib import outbox

    _, _, deliveries = sold
    post_webhooks(api, deliveries, pump)
    queue_down.restore()
    assert outbox.relay() == 0  # written a moment ago: its request may still send it
    assert outbox.relay(now=time.time() + outbox.RELAY_AFTER_SECONDS + 1) == 1


def test_an_event_delivered_three_times_counts_once(api, pump, sold, aws):
    import boto3

    from chalicelib import aws as clients
    from chalicelib.config import settings
    from chalicelib.payments.store import OrderRecord

    resource, order_id, deliveries = sold
    post_webhooks(api, deliveries, pump)
    assert sales(api, resource["id"]) == 1
    # The event as it was sent, sent twice more (a relay racing the request's own send).
    from chalicelib import outbox

    event = outbox.DomainEvent(event_id="e" * 32, type="order.paid", at="2026-12-02T00:00:00Z",
                               payload={"order_id": order_id,
                                        "resource_ids": [resource["id"]]})
    import msgspec

    body = msgspec.json.encode(event).decode()
    sqs = boto3.client("sqs", region_name=settings().region)
    url = clients.queue_url(settings().analytics_queue)
    for _ in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    drain(pump)
    assert sales(api, resource["id"]) == 2  # the first delivery counted, its repeats did not
    assert OrderRecord.get(OrderRecord.key(order_id), "META").status == "paid"


def test_reconcile_finds_and_repairs_what_a_lost_derived_update_left_behind(api, pump, sold):
    from chalicelib.catalog.store import ResourceRecord
    from chalicelib.payments.store import Entitlement
    from chalicelib.reconcile import run

    resource, order_id, deliveries = sold
    post_webhooks(api, deliveries, pump)
    assert run()["differences"] == []
    # Given derived data that drifted from the facts (a crash between a change and the
    # update that follows it): the sale uncounted, the buyer's entitlement gone,
    ResourceRecord(pk=ResourceRecord.key(resource["id"]), sk="META").update(
        actions=[ResourceRecord.sales.set(0)], add_version_condition=False)
    [ent] = [e for e in Entitlement.scan() if e.pk.startswith("ENT#") and e.order_id == order_id]
    ent.delete()
    # when reconciliation runs, it reports both and repairs them,
    report = run()
    assert sorted((d["view"], d["expected"], d["found"]) for d in report["differences"]) == \
        [("entitlement", "active", None), ("sales", 1, 0)]
    assert sales(api, resource["id"]) == 1
    assert Entitlement.get(ent.pk, ent.sk).status == "active"
    # and the next run finds nothing.
    assert run()["differences"] == []
