"""Money in, access out: checkout through the Stripe stand-in (the real SDK), signed webhooks
through the queue to the payments consumer, entitlements, downloads, refunds, disputes and
reconciliation. Whatever order or how often events arrive, the end state is the same."""
from __future__ import annotations

import itertools
import json
import time

import pytest
import requests

from tests.support import (
    PDF_BYTES,
    assert_envelope,
    drain,
    fixture_object,
    post_webhooks,
    publish,
    signed_event,
    take_webhooks,
)


def test_quote_prices_without_storing_anything(api, shop):
    reply = api.post("/checkout/quote", {"items": [{"resource_id": shop.resource["id"]}]},
                     token=shop.token)
    assert reply.status == 200
    assert reply.body["total"] == {"amount": 4900, "currency": "cny"}
    assert reply.body["items"][0]["unit_price"] == {"amount": 4900, "currency": "cny"}
    assert api.get("/me/orders", token=shop.token).body["items"] == []


def test_checkout_stores_a_pending_order_and_a_stripe_session_for_it(api, shop, stripe):
    made = shop.checkout()
    order = made["order"]
    assert order["status"] == "pending" and order["total"] == {"amount": 4900,
                                                                "currency": "cny"}
    assert order["items"] == [{"resource_id": shop.resource["id"],
                               "title": shop.resource["title"],
                               "unit_price": {"amount": 4900, "currency": "cny"}}]
    session = stripe.get(made["checkout_session_id"])
    assert session["mode"] == "payment"
    assert session["client_reference_id"] == order["id"]
    assert session["metadata"]["order_id"] == order["id"]
    assert session["amount_total"] == 4900 and session["currency"] == "cny"
    assert session["payment_method_types"] == ["card", "alipay", "wechat_pay"]
    assert session["payment_method_options"]["wechat_pay"]["client"] == "web"
    assert 29 * 60 <= session["expires_at"] - time.time() <= 31 * 60
    assert order["id"] in session["success_url"] and order["id"] in session["cancel_url"]
    assert made["checkout_url"] == session["url"]


def test_each_currency_offers_the_methods_stripe_has_for_it(api, shop, stripe, pump):
    # Given resources priced in USD and in EUR
    usd = publish(api, pump, shop.creator_token, shop.admin_token,
                  price={"amount": 999, "currency": "usd"}, title="English")
    eur = publish(api, pump, shop.creator_token, shop.admin_token,
                  price={"amount": 1500, "currency": "eur"}, title="Deutsch")
    # When each is checked out, Then the quote and the session name the same methods:
    # Alipay and WeChat Pay present USD too; PayPal is for EUR (and GBP), never Alipay there
    made = shop.checkout(items=[usd["id"]])
    assert stripe.get(made["checkout_session_id"])["payment_method_types"] == \
        ["card", "alipay", "wechat_pay"]
    quote = api.post("/checkout/quote", {"items": [{"resource_id": eur["id"]}]},
                     token=shop.token).body
    assert quote["payment_methods"] == ["card", "alipay", "wechat_pay", "paypal"]
    made = shop.checkout(items=[eur["id"]])
    assert stripe.get(made["checkout_session_id"])["payment_method_types"] == \
        quote["payment_methods"]


def test_checkout_refuses_unknown_unpublished_mixed_and_owned(api, shop, pump):
    assert_envelope(api.post("/checkout", {"items": [{"resource_id": "nope"}]},
                             token=shop.token), 404)
    usd = publish(api, pump, shop.creator_token, shop.admin_token,
                  price={"amount": 999, "currency": "usd"}, title="English")
    mixed = api.post("/checkout", {"items": [{"resource_id": shop.resource["id"]},
                                             {"resource_id": usd["id"]}]}, token=shop.token)
    assert_envelope(mixed, 422, "mixed_currencies")
    api.post(f"/creator/resources/{usd['id']}/unpublish", token=shop.creator_token)
    assert_envelope(api.post("/checkout", {"items": [{"resource_id": usd["id"]}]},
                             token=shop.token), 404)
    twice = api.post("/checkout", {"items": [{"resource_id": shop.resource["id"]}] * 2},
                     token=shop.token)
    assert "items" in assert_envelope(twice, 400, "validation_error")["details"]["fields"]
    assert_envelope(api.post("/checkout", {"items": []}, token=shop.token), 422,
                    "items_required")
    assert_envelope(api.post("/checkout", {"items": [{"resource_id": shop.resource["id"]}],
                                           "coupon_code": "FREE"}, token=shop.token), 422)


def test_the_whole_purchase_grants_access_once_and_sends_a_receipt(api, shop, pump, stripe):
    made, deliveries = shop.pay()
    replies = post_webhooks(api, deliveries, pump)
    assert [r.status for r in replies] == [200]
    order = shop.order(made["order"]["id"])
    assert order["status"] == "paid" and order["paid_at"] and order["checkout_url"] is None
    assert shop.library() == [shop.resource["id"]]
    reply = shop.download()
    assert reply.status == 200
    assert "response-content-disposition=attachment" in reply.body["url"]
    fetched = requests.get(reply.body["url"], timeout=30)
    assert fetched.content == PDF_BYTES
    mail = api.get(f"/_local/outbox?to={shop.buyer['email']}").body["items"]
    assert [m["subject"][:7] for m in mail] == ["Receipt"]
    assert_envelope(api.post("/checkout", {"items": [{"resource_id": shop.resource["id"]}]},
                             token=shop.token), 409, "already_owned")


def test_a_free_resource_is_granted_at_once_without_stripe(api, shop, pump, stripe):
    free = publish(api, pump, shop.creator_token, shop.admin_token,
                   price={"amount": 0, "currency": "cny"}, title="免费")
    made = shop.checkout(items=[free["id"]])
    assert made["checkout_url"] is None and made["checkout_session_id"] is None
    assert made["order"]["status"] == "paid"
    assert made["order"]["total"]["amount"] == 0
    assert free["id"] in shop.library()
    assert not [e for e in stripe.events]


def test_unsigned_or_badly_signed_webhooks_are_400_and_queue_nothing(api, shop, aws):
    from chalicelib import aws as factories

    body, _ = signed_event("checkout.session.completed", fixture_object("checkout.session"),
                           "whsec_test_current")
    assert_envelope(api.post("/webhooks/stripe", raw=body), 400, "invalid_signature")
    _, forged = signed_event("checkout.session.completed", {}, "whsec_attacker")
    assert_envelope(api.post("/webhooks/stripe", raw=body,
                             headers={"Stripe-Signature": forged}), 400)
    queued = factories.sqs().get_queue_attributes(
        QueueUrl=aws["PaymentsQueue"], AttributeNames=["ApproximateNumberOfMessages"])
    assert queued["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_a_webhook_signed_with_the_previous_secret_is_accepted(api, shop, stripe, pump):
    made = shop.checkout()
    session = stripe.get(made["checkout_session_id"])
    session.update(status="complete", payment_status="paid")
    delivery = signed_event("checkout.session.completed", session, "whsec_test_previous")
    assert post_webhooks(api, [delivery], pump)[0].status == 200
    assert shop.order(made["order"]["id"])["status"] == "paid"


def test_a_webhook_that_cannot_be_queued_gets_a_5xx_so_stripe_retries(api, shop, stripe, aws):
    from chalicelib import aws as factories

    made = shop.checkout()
    stripe.pay(made["checkout_session_id"])
    deliveries = take_webhooks(stripe)
    factories.sqs().delete_queue(QueueUrl=aws["PaymentsQueue"])
    reply = post_webhooks(api, deliveries)[0]
    assert_envelope(reply, 503, "queue_unavailable")


def test_the_same_event_five_times_grants_once(api, shop, pump, stripe):
    from chalicelib.payments.store import LedgerEntry

    made, deliveries = shop.pay()
    post_webhooks(api, deliveries * 5, pump)
    order_id = made["order"]["id"]
    assert shop.order(order_id)["status"] == "paid"
    ledger = list(LedgerEntry.query(f"LEDGER#{order_id}"))
    assert [(e.kind, int(e.amount)) for e in ledger] == [("payment", 4900)]
    mail = api.get(f"/_local/outbox?to={shop.buyer['email']}").body["items"]
    assert len(mail) == 1


def test_a_delayed_payment_grants_access_only_when_it_succeeds(api, shop, pump, stripe):
    made, deliveries = shop.pay(delayed=True)
    post_webhooks(api, deliveries[:1], pump)
    assert shop.order(made["order"]["id"])["status"] == "pending"
    assert shop.library() == []
    post_webhooks(api, deliveries[1:], pump)
    assert shop.order(made["order"]["id"])["status"] == "paid"


def test_a_failed_payment_grants_nothing(api, shop, pump, stripe):
    made, deliveries = shop.pay(outcome="failed")
    post_webhooks(api, deliveries, pump)
    assert shop.order(made["order"]["id"])["status"] == "failed"
    assert shop.library() == []
    assert_envelope(shop.download(), 404)


def test_expired_after_paid_stays_paid(api, shop, pump, stripe):
    made, paid = shop.pay()
    session = stripe.get(made["checkout_session_id"])
    session.update(status="expired")
    expired = signed_event("checkout.session.expired", session, "whsec_test_current")
    post_webhooks(api, paid + [expired], pump)
    assert shop.order(made["order"]["id"])["status"] == "paid"
    assert shop.library() == [shop.resource["id"]]


def test_an_unpaid_session_that_expires_expires_the_order(api, shop, pump, stripe):
    made = shop.checkout()
    from chalicelib.payments import gateway

    gateway.client().v1.checkout.sessions.expire(made["checkout_session_id"])
    post_webhooks(api, take_webhooks(stripe), pump)
    assert shop.order(made["order"]["id"])["status"] == "expired"


def test_full_refund_revokes_access_and_partial_keeps_it(api, shop, pump, stripe):
    made, paid = shop.pay()
    post_webhooks(api, paid, pump)
    order_id = made["order"]["id"]
    reply = api.post(f"/admin/orders/{order_id}/refund", {"amount": 900, "reason": "部分退款"},
                     token=shop.admin_token)
    assert reply.status == 202 and reply.body["amount"] == {"amount": 900, "currency": "cny"}
    assert shop.order(order_id)["status"] == "paid"  # until Stripe's webhook confirms
    post_webhooks(api, take_webhooks(stripe), pump)
    order = shop.order(order_id)
    assert order["status"] == "partially_refunded"
    assert order["amount_refunded"] == {"amount": 900, "currency": "cny"}
    assert shop.download().status == 200
    too_much = api.post(f"/admin/orders/{order_id}/refund", {"amount": 4001, "reason": "x"},
                        token=shop.admin_token)
    assert_envelope(too_much, 422, "refund_too_large")
    api.post(f"/admin/orders/{order_id}/refund", {"reason": "the rest"},
             token=shop.admin_token)
    post_webhooks(api, take_webhooks(stripe), pump)
    assert shop.order(order_id)["status"] == "refunded"
    assert shop.library() == []
    assert_envelope(shop.download(), 404, "not_entitled")
    assert_envelope(api.post(f"/admin/orders/{order_id}/refund", {"reason": "again"},
                             token=shop.admin_token), 422, "not_refundable")


def test_a_refund_arriving_before_the_payment_ends_refunded_without_access(api, shop, pump,
                                                                           stripe):
    from chalicelib.payments import gateway

    made, paid = shop.pay()
    session = stripe.get(made["checkout_session_id"])
    gateway.create_refund({"payment_intent": session["payment_intent"]}, "test-refund")
    refunds = take_webhooks(stripe)
    post_webhooks(api, refunds, pump)
    assert shop.order(made["order"]["id"])["status"] == "pending"
    post_webhooks(api, paid, pump)
    assert shop.order(made["order"]["id"])["status"] == "refunded"
    assert shop.library() == []


def test_a_dispute_suspends_access_and_winning_it_restores_access(api, shop, pump, stripe):
    made, paid = shop.pay()
    post_webhooks(api, paid, pump)
    session = stripe.get(made["checkout_session_id"])
    dispute = stripe.open_dispute(session["payment_intent"])
    post_webhooks(api, take_webhooks(stripe), pump)
    assert shop.order(made["order"]["id"])["status"] == "disputed"
    assert_envelope(shop.download(), 403, "access_suspended")
    stripe.close_dispute(dispute, won=True)
    post_webhooks(api, take_webhooks(stripe), pump)
    assert shop.order(made["order"]["id"])["status"] == "paid"
    assert shop.download().status == 200


def test_a_lost_dispute_revokes_access(api, shop, pump, stripe):
    made, paid = shop.pay()
    post_webhooks(api, paid, pump)
    session = stripe.get(made["checkout_session_id"])
    dispute = stripe.open_dispute(session["payment_intent"])
    stripe.close_dispute(dispute, won=False)
    post_webhooks(api, take_webhooks(stripe), pump)
    assert shop.order(made["order"]["id"])["status"] == "disputed"
    assert_envelope(shop.download(), 404)


def test_a_lost_webhook_is_repaired_by_reconciliation(api, shop, pump, stripe):
    from chalicelib.payments.reconciliation import reconcile

    made, _lost = shop.pay()
    assert reconcile()["repaired"] == 0  # not 35 minutes old yet
    outcome = reconcile(now=time.time() + 36 * 60)
    assert (outcome["pending_seen"], outcome["repaired"]) == (1, 1)
    assert shop.order(made["order"]["id"])["status"] == "paid"
    assert shop.library() == [shop.resource["id"]]


def test_an_amount_that_differs_from_the_order_is_flagged_and_grants_nothing(api, shop, pump,
                                                                             stripe):
    made = shop.checkout()
    session = stripe.get(made["checkout_session_id"])
    session.update(status="complete", payment_status="paid", amount_total=1)
    post_webhooks(api, [signed_event("checkout.session.completed", session,
                                     "whsec_test_current")], pump)
    order = shop.order(made["order"]["id"])
    assert order["status"] == "pending" and order["flag"].startswith("amount_mismatch")
    assert shop.library() == []


def test_events_for_unknown_orders_are_acknowledged_not_retried(api, shop, pump, client):
    session = fixture_object("checkout.session")
    session.update(client_reference_id="no-such-order", metadata={"order_id": "no-such-order"},
                   payment_status="paid")
    body, _ = signed_event("checkout.session.completed", session, "whsec_test_current")
    record = {"messageId": "m1", "receiptHandle": "r", "body": body.decode(), "attributes": {
        "ApproximateReceiveCount": "1", "SentTimestamp": "1", "SenderId": "s",
        "ApproximateFirstReceiveTimestamp": "1"}, "messageAttributes": {}, "md5OfBody": "x",
        "eventSource": "aws:sqs", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:paidres-local-payments"}
    result = client.lambda_.invoke("payment_events", {"Records": [record]}).payload
    assert result == {"batchItemFailures": []}


def test_other_users_get_404_for_the_order_and_the_download(api, shop, pump, stripe):
    made, paid = shop.pay()
    post_webhooks(api, paid, pump)
    _, other = api.user_session()
    assert_envelope(api.get(f"/me/orders/{made['order']['id']}", token=other["access_token"]),
                    404)
    assert_envelope(shop.download(token=other["access_token"]), 404)


def test_downloads_stop_at_the_resource_cap(api, shop, pump, stripe):
    api.patch(f"/creator/resources/{shop.resource['id']}", {"download_cap": 2},
              token=shop.creator_token)
    _, paid = shop.pay()
    post_webhooks(api, paid, pump)
    assert [shop.download().status for _ in range(2)] == [200, 200]
    refused = shop.download()
    assert_envelope(refused, 429, "download_limit_reached")
    assert "Retry-After" in refused.headers


def test_downloads_are_logged_with_the_source_ip(api, shop, pump, stripe):
    from chalicelib.payments.store import DownloadLog

    _, paid = shop.pay()
    post_webhooks(api, paid, pump)
    shop.download()
    logs = list(DownloadLog.query(f"DL#{shop.buyer['id']}#{shop.resource['id']}"))
    assert len(logs) == 1 and logs[0].file_version == 1


def test_orders_for_buyers_admins_and_creators(api, shop, pump, stripe):
    made, paid = shop.pay()
    post_webhooks(api, paid, pump)
    second = shop.checkout(items=None, token=api.user_session()[1]["access_token"])
    mine = api.get("/me/orders", token=shop.token).body["items"]
    assert [o["id"] for o in mine] == [made["order"]["id"]]
    everything = api.get("/admin/orders", token=shop.admin_token).body["items"]
    assert [o["id"] for o in everything] == [second["order"]["id"], made["order"]["id"]]
    paid_only = api.get("/admin/orders?status=paid", token=shop.admin_token).body["items"]
    assert [o["id"] for o in paid_only] == [made["order"]["id"]]
    by_user = api.get(f"/admin/orders?user_id={shop.buyer['id']}", token=shop.admin_token)
    assert [o["id"] for o in by_user.body["items"]] == [made["order"]["id"]]
    by_resource = api.get(f"/admin/orders?resource_id={shop.resource['id']}&status=pending",
                          token=shop.admin_token).body["items"]
    assert [o["id"] for o in by_resource] == [second["order"]["id"]]
    future = api.get("/admin/orders?from=2999-01-01", token=shop.admin_token).body["items"]
    assert future == []
    sales = api.get("/creator/sales", token=shop.creator_token).body["items"]
    assert {(s["order_id"], s["status"]) for s in sales} == {
        (made["order"]["id"], "paid"), (second["order"]["id"], "pending")}
    assert_envelope(api.get("/admin/orders", token=shop.token), 403)


def _final_state(order_id: str) -> tuple:
    from chalicelib.payments.processing import load
    from chalicelib.payments.store import Entitlement, LedgerEntry

    order = load(order_id)
    ents = [(e.resource_id, e.status) for e in Entitlement.query(Entitlement.key(order.user_id))]
    ledger = sorted((e.sk, int(e.amount)) for e in LedgerEntry.query(f"LEDGER#{order_id}"))
    return order.status, int(order.amount_refunded), order.dispute_status, ents, ledger


def test_every_delivery_order_converges_to_the_same_state(api, shop, pump, stripe):
    """Payment, partial refund, dispute opened and won: all 24 orders of arrival end alike."""
    from chalicelib.payments import gateway

    outcomes = set()
    for permutation in itertools.permutations(range(4)):
        made, paid = shop.pay(token=api.user_session()[1]["access_token"])
        session = stripe.get(made["checkout_session_id"])
        gateway.create_refund({"payment_intent": session["payment_intent"], "amount": 1000},
                              f"r-{made['order']['id']}")
        refund = take_webhooks(stripe)
        dispute = stripe.open_dispute(session["payment_intent"])
        opened = take_webhooks(stripe)
        stripe.close_dispute(dispute, won=True)
        closed = take_webhooks(stripe)
        groups = [paid, refund, opened, closed]
        for index in permutation:
            post_webhooks(api, groups[index])
        drain(pump, rounds=20)
        state = _final_state(made["order"]["id"])
        outcomes.add(json.dumps(state[:3]))
        assert state[0] == "partially_refunded", (permutation, state)
    assert len(outcomes) == 1


def test_a_paid_order_counts_a_sale_once_and_reranks_popular(api, shop, pump, stripe):
    other = publish(api, pump, shop.creator_token, shop.admin_token, title="Less popular")
    from chalicelib.payments.reconciliation import reconcile

    made, paid = shop.pay()
    post_webhooks(api, paid * 3, pump)
    detail = api.get(f"/resources/{shop.resource['id']}").body["resource"]
    assert detail["counts"]["sales"] == 1
    assert reconcile()["reranked"] == 1  # the 15-minute schedule re-ranks the cards
    popular = [r["id"] for r in api.get("/resources?sort=popular").body["items"]]
    assert popular == [shop.resource["id"], other["id"]]


def test_a_flagged_order_waits_for_an_admin_not_for_reconciliation(api, shop, pump, stripe):
    from chalicelib.payments.reconciliation import reconcile

    made = shop.checkout()
    session = stripe.get(made["checkout_session_id"])
    session.update(status="complete", payment_status="paid", currency="usd")
    post_webhooks(api, [signed_event("checkout.session.completed", session,
                                     "whsec_test_current")], pump)
    flagged = api.get("/admin/orders?status=flagged", token=shop.admin_token).body["items"]
    assert [o["id"] for o in flagged] == [made["order"]["id"]]
    assert reconcile(now=time.time() + 36 * 60)["pending_seen"] == 0


def test_a_deployed_stage_reads_the_webhook_secrets_from_the_secrets_parameter(
        api, shop, stripe, pump, monkeypatch):
    from chalicelib import vault
    from chalicelib.config import settings

    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET")
    settings.cache_clear()
    assert settings().stripe_webhook_secrets == ()
    vault.store({**vault.load(), "stripe_webhook_secrets": ["whsec_from_ssm"]})
    made = shop.checkout()
    session = stripe.get(made["checkout_session_id"])
    session.update(status="complete", payment_status="paid")
    good = signed_event("checkout.session.completed", session, "whsec_from_ssm")
    bad = signed_event("checkout.session.completed", session, "whsec_test_current")
    assert [r.status for r in post_webhooks(api, [bad, good], pump)] == [400, 200]
    assert shop.order(made["order"]["id"])["status"] == "paid"
    settings.cache_clear()


# ---------------------------------------------------------------- refunds: 202 means it happens

@pytest.fixture
def paid(api, shop, pump, stripe):
    made, deliveries = shop.pay()
    post_webhooks(api, deliveries, pump)
    return made["order"]["id"]


def refund(api, shop, order_id, amount=100):
    return api.post(f"/admin/orders/{order_id}/refund", {"amount": amount, "reason": "测试"},
                    token=shop.admin_token)


def test_while_a_refund_is_being_made_another_of_the_order_is_409(api, shop, paid):
    import time as clock

    from chalicelib.payments.processing import load
    from chalicelib.payments.store import OrderRecord

    load(paid).update(actions=[OrderRecord.refund_in_flight.set("another-request"),
                               OrderRecord.refund_in_flight_at.set(int(clock.time()))])
    assert_envelope(refund(api, shop, paid), 409, "refund_in_flight")
    # A reservation its request never released (a crash) stops blocking after a minute.
    load(paid).update(actions=[OrderRecord.refund_in_flight_at.set(int(clock.time()) - 61)])
    assert refund(api, shop, paid).status == 202
    assert load(paid).refund_in_flight is None


def test_accepted_refunds_count_before_their_webhook_so_they_never_exceed_the_payment(
        api, shop, paid, pump, stripe):
    total = shop.order(paid)["total"]["amount"]
    assert refund(api, shop, paid, total - 100).status == 202
    # Stripe's webhook has not arrived: the order still says paid, yet only 100 is left.
    assert shop.order(paid)["status"] == "paid"
    assert_envelope(refund(api, shop, paid, 101), 422, "refund_too_large")
    assert refund(api, shop, paid, 100).status == 202
    post_webhooks(api, take_webhooks(stripe), pump)
    order = shop.order(paid)
    assert order["status"] == "refunded" and order["amount_refunded"]["amount"] == total
    from chalicelib.payments.processing import load

    assert not load(paid).refunds_pending


@pytest.fixture
def stripe_down(stripe, monkeypatch):
    """Stripe unreachable until `stripe_down.restore()`."""
    from chalicelib.config import settings
    from chalicelib.payments import gateway

    def point_at(url: str) -> None:
        monkeypatch.setenv("STRIPE_API_BASE", url)
        settings.cache_clear()
        gateway.forget()
        assert settings().stripe_api_base == url

    point_at("http://127.0.0.1:9")  # nothing listens there

    class Down:
        restore = staticmethod(lambda: point_at(stripe.base_url))

    return Down()


def test_stripe_unreachable_is_502_and_releases_the_reservation(api, shop, paid, stripe_down):
    assert_envelope(refund(api, shop, paid), 502, "payment_provider_unavailable")
    stripe_down.restore()
    assert refund(api, shop, paid).status == 202


def test_a_checkout_while_stripe_is_unreachable_is_502_and_stores_no_order(api, shop,
                                                                          stripe_down):
    reply = api.post("/checkout", {"items": [{"resource_id": shop.resource["id"]}]},
                     token=shop.token)
    assert_envelope(reply, 502, "payment_provider_unavailable")
    assert api.get("/me/orders", token=shop.token).body["items"] == []


def test_a_refund_stripe_refuses_is_422_and_releases_the_reservation(api, shop, paid, pump,
                                                                     stripe):
    from chalicelib.payments import gateway
    from chalicelib.payments.processing import load

    # Refunded in full at Stripe behind our back; its webhook has not arrived yet.
    gateway.create_refund({"payment_intent": load(paid).payment_intent},
                          idempotency_key="outside")
    assert_envelope(refund(api, shop, paid), 422, "refund_refused")
    assert load(paid).refund_in_flight is None
    post_webhooks(api, take_webhooks(stripe), pump)
    assert shop.order(paid)["status"] == "refunded"


def test_an_accepted_refund_that_fails_later_is_recorded_and_frees_its_amount(
        api, shop, paid, pump, stripe):
    from chalicelib.payments.processing import load

    accepted = refund(api, shop, paid, 500).body
    take_webhooks(stripe)  # Stripe's success events are not delivered: this refund failed
    failed = {**fixture_object("refund"), "id": accepted["refund_id"], "amount": 500,
              "status": "failed", "failure_reason": "expired_or_canceled_card",
              "payment_intent": load(paid).payment_intent,
              "metadata": {"order_id": paid}}
    post_webhooks(api, [signed_event("refund.failed", failed, "whsec_test_current")], pump)
    order = load(paid)
    assert not order.refunds_pending
    assert order.refund_failures == {f"{accepted['refund_id']}:500:expired_or_canceled_card"}
    assert shop.order(paid)["status"] == "paid"


# ---------------------------------------------------------------- one open checkout per basket

def test_a_second_checkout_of_the_same_items_returns_the_open_one(api, shop, stripe):
    first = shop.checkout()
    again = shop.checkout()
    assert again["checkout_session_id"] == first["checkout_session_id"]
    assert again["order"]["id"] == first["order"]["id"]
    orders = api.get("/me/orders", token=shop.token).body["items"]
    assert [o["id"] for o in orders] == [first["order"]["id"]]


def test_paying_both_tabs_of_one_basket_charges_once(api, shop, pump, stripe):
    tab1, tab2 = shop.checkout(), shop.checkout()
    stripe.pay(tab1["checkout_session_id"])
    post_webhooks(api, take_webhooks(stripe), pump)
    assert shop.order(tab2["order"]["id"])["status"] == "paid"
    charges = [e for e in stripe.events if e["type"] == "checkout.session.completed"]
    assert len(charges) == 1


def test_once_the_open_checkout_has_expired_a_new_one_opens(api, shop, pump, stripe):
    first = shop.checkout()
    stripe.expire_checkout_session(first["checkout_session_id"])
    post_webhooks(api, take_webhooks(stripe), pump)
    assert shop.order(first["order"]["id"])["status"] == "expired"
    second = shop.checkout()
    assert second["checkout_session_id"] != first["checkout_session_id"]


# ---------------------------------------------------------------- a payment for what is owned

@pytest.fixture
def two_baskets(api, shop, pump):
    """The shop's resource and a second one; a buyer with two open checkouts that overlap:
    the first for the shop's resource alone, the second for both."""
    second = publish(api, pump, shop.creator_token, shop.admin_token, title="第二本书",
                     price={"amount": 2900, "currency": "cny"})
    first = shop.checkout()
    both = shop.checkout(items=[shop.resource["id"], second["id"]])
    return first, both, second


def settle(api, stripe, pump) -> None:
    """Deliver Stripe's events, and the events of what their processing asked of Stripe."""
    for _ in range(5):
        deliveries = take_webhooks(stripe)
        if not deliveries:
            return
        post_webhooks(api, deliveries, pump)


def pay_in_turn(api, stripe, pump, *checkouts) -> None:
    """Pay each checkout, and let everything its payment brings settle before the next."""
    for made in checkouts:
        stripe.pay(made["checkout_session_id"])
        settle(api, stripe, pump)


def _ledger(order_id: str) -> int:
    from chalicelib.payments.store import LedgerEntry

    return sum(int(e.amount) for e in LedgerEntry.query(f"LEDGER#{order_id}"))


def test_a_payment_for_something_already_owned_refunds_its_share_as_duplicate(
        api, shop, pump, stripe, two_baskets):
    first, both, second = two_baskets
    # Given the buyer paid the first checkout, when the overlapping one is paid too,
    pay_in_turn(api, stripe, pump, first, both)
    # then the resource owned already is refunded (reason duplicate) and the new one granted.
    order = shop.order(both["order"]["id"])
    price = shop.resource["price"]
    assert order["status"] == "partially_refunded"
    assert order["amount_refunded"] == price
    assert order["auto_refund"]["reason"] == "duplicate"
    assert order["auto_refund"]["resource_ids"] == [shop.resource["id"]]
    assert order["auto_refund"]["amount"] == price and order["auto_refund"]["refund_id"]
    refunds = [e["data"]["object"] for e in stripe.events if e["type"] == "refund.created"]
    assert [(r["reason"], r["amount"]) for r in refunds] == [("duplicate", price["amount"])]
    assert sorted(shop.library()) == sorted([shop.resource["id"], second["id"]])
    library = api.get("/me/library", token=shop.token).body["items"]
    assert {i["resource"]["id"]: i["order_id"] for i in library}[shop.resource["id"]] == \
        first["order"]["id"]
    # The ledger balances: each order holds what it kept.
    assert _ledger(first["order"]["id"]) == price["amount"]
    assert _ledger(both["order"]["id"]) == second["price"]["amount"]
    log = api.get(f"/admin/audit?resource_id={both['order']['id']}",
                  token=shop.admin_token).body["items"]
    assert [(e["action"], e["actor_id"], e["target_type"], e["reason"]) for e in log] == \
        [("refund_duplicate", "system", "order", "duplicate")]
    assert log[0]["details"]["resource_ids"] == [shop.resource["id"]]


def test_a_duplicate_refund_is_the_line_as_the_engine_priced_it(api, shop, pump, stripe):
    # Given a buyer who owns the shop's resource, and a coupon of ¥10.00 off the second only
    second = publish(api, pump, shop.creator_token, shop.admin_token, title="第二本书",
                     price={"amount": 2900, "currency": "cny"})
    first = shop.checkout()
    assert api.post("/admin/coupons", {"code": "TEN", "kind": "fixed",
                                       "amounts_off": {"cny": 1000},
                                       "resource_ids": [second["id"]]},
                    token=shop.admin_token).status == 201
    basket = {"items": [{"resource_id": shop.resource["id"]}, {"resource_id": second["id"]}],
              "coupon_code": "TEN"}
    lines = {line["resource_id"]: line["total"]["amount"] for line in
             api.post("/checkout/quote", basket, token=shop.token).body["items"]}
    both = api.post("/checkout", basket, token=shop.token).body
    assert lines == {shop.resource["id"]: 4900, second["id"]: 1900}
    # When both are paid, the owned line comes back at what it cost: its full price, since
    # the coupon took nothing off it (not a share of the order's discount)
    pay_in_turn(api, stripe, pump, first, both)
    order = shop.order(both["order"]["id"])
    assert order["auto_refund"]["amount"]["amount"] == 4900


def test_an_order_of_only_owned_resources_is_refunded_in_full(api, shop, pump, stripe,
                                                               two_baskets):
    first, both, second = two_baskets
    pay_in_turn(api, stripe, pump, both, first)
    order = shop.order(first["order"]["id"])
    assert order["status"] == "refunded" and order["amount_refunded"] == order["total"]
    assert _ledger(first["order"]["id"]) == 0
    # The owner order's access is untouched by the refunded duplicate.
    assert sorted(shop.library()) == sorted([shop.resource["id"], second["id"]])
    assert shop.download().status == 200


def test_a_duplicate_found_while_stripe_is_down_is_refunded_when_the_event_is_retried(
        api, shop, pump, stripe, two_baskets, stripe_down):
    from chalicelib.payments.processing import load

    first, both, second = two_baskets
    stripe.pay(first["checkout_session_id"])
    stripe.pay(both["checkout_session_id"])
    deliveries = take_webhooks(stripe)
    # Given the payment events are processed once while Stripe cannot be reached,
    post_webhooks(api, deliveries)
    pump.poll_once()
    # then the duplicate is recorded with the payment, but no refund could be asked for yet,
    due = load(both["order"]["id"])
    assert due.duplicates and due.duplicate_refund_due and not due.duplicate_refund_id
    # and an admin cannot refund what is owed to the duplicate meanwhile.
    remaining = int(due.amount_paid) - int(due.duplicate_refund_due)
    assert_envelope(refund(api, shop, both["order"]["id"], remaining + 1), 422,
                    "refund_too_large")
    # When Stripe is back, the retried event (its facts already applied) still refunds.
    stripe_down.restore()
    drain(pump, rounds=10)
    settle(api, stripe, pump)
    order = shop.order(both["order"]["id"])
    assert order["status"] == "partially_refunded"
    assert order["amount_refunded"] == shop.resource["price"]
    refunds = [e for e in stripe.events if e["type"] == "refund.created"]
    assert len(refunds) == 1
