"""Stripe Billing in the local Stripe stand-in, driven by the official stripe SDK over HTTP:
Prices found by lookup key, subscription-mode Checkout refusing what Stripe refuses, and a
subscription's life (paid, renewed, failed, lapsed, cancelled, changed) in signed events."""
from __future__ import annotations

import pytest
import stripe

from devstack.stripe_standin import StripeStandIn

SECRET = "whsec_unit_billing"


@pytest.fixture
def inbox():
    return []


@pytest.fixture
def standin(inbox):
    server = StripeStandIn(SECRET, lambda body, sig: inbox.append((body, sig)),
                           retry_delays=(0.01,))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(standin):
    return stripe.StripeClient("sk_test_unit", base_addresses={"api": standin.base_url},
                               max_network_retries=0).v1


def events(standin, inbox):
    assert standin.flush(10)
    found = []
    for body, header in inbox:
        found.append(stripe.Webhook.construct_event(body, header, SECRET))  # signed for real
    inbox.clear()
    return found


@pytest.fixture
def monthly(client):
    client.products.create(params={"id": "prod_club", "name": "会员"})
    return client.prices.create(params={
        "product": "prod_club", "currency": "cny", "unit_amount": 3000,
        "recurring": {"interval": "month"}, "lookup_key": "club-month"})


def subscribe(client, standin, price_id, **extra):
    session = client.checkout.sessions.create(params={
        "mode": "subscription", "line_items": [{"price": price_id, "quantity": 1}],
        "customer_email": "member@example.com",
        "subscription_data": {"metadata": {"user_id": "u1"}},
        "success_url": "https://shop.example/ok", **extra})
    standin.pay(session.id)
    return client.checkout.sessions.retrieve(session.id)


def test_prices_are_found_by_lookup_key_and_keys_are_unique(client, monthly):
    found = client.prices.list(params={"lookup_keys": ["club-month"], "active": True}).data
    assert [p.id for p in found] == [monthly.id]
    assert found[0].recurring.interval == "month"
    with pytest.raises(stripe.InvalidRequestError, match="lookup key"):
        client.prices.create(params={"product": "prod_club", "currency": "cny",
                                     "unit_amount": 3500, "recurring": {"interval": "month"},
                                     "lookup_key": "club-month"})


def test_subscription_mode_refuses_alipay_one_off_prices_and_intent_data(client, monthly):
    base = {"mode": "subscription", "line_items": [{"price": monthly.id, "quantity": 1}]}
    with pytest.raises(stripe.InvalidRequestError, match="alipay"):
        client.checkout.sessions.create(params={**base,
                                                "payment_method_types": ["card", "alipay"]})
    with pytest.raises(stripe.InvalidRequestError, match="payment_intent_data"):
        client.checkout.sessions.create(params={**base, "payment_intent_data": {
            "metadata": {"a": "b"}}})
    one_off = client.prices.create(params={"product": "prod_club", "currency": "cny",
                                           "unit_amount": 100})
    with pytest.raises(stripe.InvalidRequestError, match="recurring"):
        client.checkout.sessions.create(params={
            **base, "line_items": [{"price": one_off.id, "quantity": 1}]})


def test_paying_a_subscription_session_sends_the_subscription_its_invoice_and_the_session(
        client, standin, inbox, monthly):
    session = subscribe(client, standin, monthly.id)
    sent = events(standin, inbox)
    assert [e.type for e in sent] == ["customer.subscription.created", "invoice.paid",
                                      "checkout.session.completed"]
    sub = client.subscriptions.retrieve(session.subscription)
    item = sub["items"].data[0]
    assert (sub.status, sub.customer, sub.metadata["user_id"]) == \
        ("active", session.customer, "u1")
    assert item.current_period_end > item.current_period_start
    invoice = client.invoices.retrieve(session.invoice)
    assert (invoice.status, invoice.amount_paid, invoice.billing_reason) == \
        ("paid", 3000, "subscription_create")
    assert invoice.parent.subscription_details.subscription == sub.id


def test_renewal_failure_and_lapse(client, standin, inbox, monthly):
    sub_id = subscribe(client, standin, monthly.id).subscription
    events(standin, inbox)
    first_end = client.subscriptions.retrieve(sub_id)["items"].data[0].current_period_end
    standin.renew(sub_id)
    assert [e.type for e in events(standin, inbox)] == ["invoice.paid",
                                                        "customer.subscription.updated"]
    renewed = client.subscriptions.retrieve(sub_id)["items"].data[0]
    assert renewed.current_period_start == first_end
    standin.fail_renewal(sub_id)
    failed = events(standin, inbox)
    assert [e.type for e in failed] == ["invoice.payment_failed",
                                        "customer.subscription.updated"]
    assert client.subscriptions.retrieve(sub_id).status == "past_due"
    standin.renew(sub_id)  # paid after all
    events(standin, inbox)
    assert client.subscriptions.retrieve(sub_id).status == "active"
    standin.fail_renewal(sub_id)
    standin.lapse(sub_id)
    assert events(standin, inbox)[-1].type == "customer.subscription.deleted"
    assert client.subscriptions.retrieve(sub_id).status == "canceled"


def test_cancel_at_period_end_ends_at_renewal_and_delete_ends_now(client, standin, inbox,
                                                                   monthly):
    sub_id = subscribe(client, standin, monthly.id).subscription
    events(standin, inbox)
    client.subscriptions.update(sub_id, params={"cancel_at_period_end": True})
    updated = events(standin, inbox)
    assert updated[0].data.previous_attributes["cancel_at_period_end"] is False
    standin.renew(sub_id)
    assert [e.type for e in events(standin, inbox)] == ["customer.subscription.deleted"]
    other = subscribe(client, standin, monthly.id).subscription
    events(standin, inbox)
    assert client.subscriptions.cancel(other).status == "canceled"


def test_a_price_change_invoices_the_prorated_difference_at_once(client, standin, inbox,
                                                                  monthly):
    sub_id = subscribe(client, standin, monthly.id).subscription
    events(standin, inbox)
    premium = client.prices.create(params={"product": "prod_club", "currency": "cny",
                                           "unit_amount": 6800,
                                           "recurring": {"interval": "month"}})
    item = client.subscriptions.retrieve(sub_id)["items"].data[0]
    changed = client.subscriptions.update(sub_id, params={
        "items": [{"id": item.id, "price": premium.id}],
        "proration_behavior": "always_invoice"})
    assert changed["items"].data[0].price.id == premium.id
    sent = events(standin, inbox)
    assert [e.type for e in sent] == ["customer.subscription.updated", "invoice.paid"]
    assert 0 < sent[1].data.object.amount_paid <= 3800
