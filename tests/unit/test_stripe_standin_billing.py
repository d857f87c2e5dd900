"""Stripe Billing on the local Stripe stand-in, driven by the official stripe SDK over HTTP:
products and prices, subscription-mode Checkout, and a subscription's life (renewed, failed,
lapsed, changed, canceled), with its webhook events captured and verified as the app does."""
from __future__ import annotations

import calendar
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from fractions import Fraction

import pytest
import stripe

from devstack.stripe_standin import StandInError, StripeStandIn
from tests.unit.test_stripe_standin import SECRET, Inbox, fixture_keys, post_json

MONTH = "month"


@pytest.fixture
def inbox():
    return Inbox()


@pytest.fixture
def standin(inbox):
    server = StripeStandIn(SECRET, inbox, retry_delays=(0.01, 0.01, 0.01))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(standin):
    return stripe.StripeClient("sk_test_unit", base_addresses={"api": standin.base_url},
                               max_network_retries=0)


def membership_price(client, amount=3000, interval=MONTH, lookup_key=None, **extra):
    product = client.v1.products.create(params={"name": "会员 Membership",
                                                "metadata": {"plan": "member"}})
    params = {"product": product.id, "currency": "cny", "unit_amount": amount,
              "recurring": {"interval": interval}, **extra}
    if lookup_key:
        params["lookup_key"] = lookup_key
    return client.v1.prices.create(params=params)


def subscription_session(client, price_id, **extra):
    params = {
        "mode": "subscription",
        "line_items": [{"price": price_id, "quantity": 1}],
        "customer_email": "member@example.com",
        "subscription_data": {"metadata": {"user_id": "usr_9", "plan": "member"}},
        "metadata": {"user_id": "usr_9"},
        "payment_method_types": ["card"],
        "success_url": "https://shop.example/member?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://shop.example/cancel",
        **extra,
    }
    return client.v1.checkout.sessions.create(params=params)


def subscribe(client, standin, inbox, **price):
    """A paid monthly membership: the subscription, with the inbox emptied."""
    session = subscription_session(client, membership_price(client, **price).id)
    standin.pay(session.id)
    assert standin.flush(5)
    inbox.received.clear()
    return client.v1.subscriptions.retrieve(standin.get(session.id)["subscription"])


def period(subscription) -> tuple[int, int]:
    item = subscription["items"]["data"][0]
    return item["current_period_start"], item["current_period_end"]


def delivered(inbox) -> list[dict]:
    """The delivered events, each verified with the webhook secret as the app verifies."""
    events = []
    for body, header in inbox.received:
        stripe.Webhook.construct_event(body, header, SECRET)
        events.append(json.loads(body))
    return events


def months_after(timestamp: int, months: int = 1) -> int:
    """A calendar month (or several) later, on the same day or the month's last one."""
    start = datetime.fromtimestamp(timestamp, UTC)
    year, month = divmod(start.month - 1 + months, 12)
    year += start.year
    day = min(start.day, calendar.monthrange(year, month + 1)[1])
    return int(start.replace(year=year, month=month + 1, day=day).timestamp())


def a_month_after(timestamp: int) -> int:
    return months_after(timestamp)


def test_products_and_prices_are_created_and_found_by_lookup_key(client):
    product = client.v1.products.create(params={"id": "prod_member", "name": "Membership",
                                                "metadata": {"tier": "gold"}})
    monthly = client.v1.prices.create(params={
        "product": product.id, "currency": "cny", "unit_amount": 3000,
        "recurring": {"interval": "month"}, "lookup_key": "member_monthly",
        "nickname": "Monthly", "metadata": {"tier": "gold"}})
    yearly = client.v1.prices.create(params={
        "product": product.id, "currency": "cny", "unit_amount": 30000,
        "recurring": {"interval": "year"}, "lookup_key": "member_yearly"})
    one_off = client.v1.prices.create(params={
        "product_data": {"name": "Sticker"}, "currency": "cny", "unit_amount": 500})

    assert client.v1.products.retrieve("prod_member").metadata.to_dict() == {"tier": "gold"}
    assert monthly.id.startswith("price_")
    assert (monthly.type, monthly.recurring.interval, monthly.recurring.interval_count) == \
        ("recurring", "month", 1)
    assert (monthly.unit_amount, monthly.currency, monthly.active) == (3000, "cny", True)
    assert one_off.type == "one_time" and one_off.recurring is None
    assert one_off.product.startswith("prod_") and one_off.product != product.id
    assert client.v1.prices.retrieve(monthly.id).to_dict() == monthly.to_dict()
    found = client.v1.prices.list(params={"lookup_keys": ["member_yearly", "member_monthly"],
                                          "expand": ["data.product"]})
    assert [p.id for p in found.data] == [yearly.id, monthly.id]
    assert found.data[0].product.name == "Membership"
    assert [p.id for p in client.v1.prices.list(params={"product": product.id}).data] == \
        [yearly.id, monthly.id]

    client.v1.prices.update(monthly.id, params={"active": False, "metadata": {"tier": ""}})
    assert [p.id for p in client.v1.prices.list(
        params={"product": product.id, "active": True}).data] == [yearly.id]
    assert client.v1.prices.retrieve(monthly.id).metadata.to_dict() == {}
    with pytest.raises(stripe.InvalidRequestError) as taken:
        client.v1.products.create(params={"id": "prod_member", "name": "Again"})
    assert taken.value.code == "resource_already_exists"


def test_a_lookup_key_belongs_to_one_price_unless_transferred(client):
    first = membership_price(client, lookup_key="member")

    with pytest.raises(stripe.InvalidRequestError) as taken:
        membership_price(client, amount=3500, lookup_key="member")
    second = membership_price(client, amount=3500, lookup_key="member",
                              transfer_lookup_key=True)

    assert taken.value.param == "lookup_key"
    assert first.id in str(taken.value)
    assert client.v1.prices.retrieve(first.id).lookup_key is None
    assert [p.id for p in client.v1.prices.list(params={"lookup_keys": ["member"]}).data] == \
        [second.id]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.update(first.id, params={"lookup_key": "member"})
    client.v1.prices.update(first.id, params={"lookup_key": "member",
                                              "transfer_lookup_key": True})
    assert client.v1.prices.retrieve(second.id).lookup_key is None


def test_a_subscription_session_refuses_alipay_and_wechat_pay(client):
    price = membership_price(client)

    for method in ("alipay", "wechat_pay"):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            subscription_session(client, price.id, payment_method_types=["card", method],
                                 payment_method_options={"wechat_pay": {"client": "web"}})
        assert refused.value.http_status == 400
        assert refused.value.error.type == "invalid_request_error"
        assert refused.value.param == "payment_method_types"
        assert f"`{method}` cannot be used in `subscription` mode" in str(refused.value)


def test_modes_refuse_the_other_modes_prices_and_data(client):
    recurring = membership_price(client)
    one_time = client.v1.prices.create(params={"product_data": {"name": "PDF"},
                                               "currency": "cny", "unit_amount": 990})

    with pytest.raises(stripe.InvalidRequestError) as one_off:
        subscription_session(client, one_time.id)
    with pytest.raises(stripe.InvalidRequestError) as intent_data:
        subscription_session(client, recurring.id,
                             payment_intent_data={"metadata": {"order_id": "ord_1"}})
    with pytest.raises(stripe.InvalidRequestError) as in_payment_mode:
        subscription_session(client, recurring.id, mode="payment", subscription_data={})
    with pytest.raises(stripe.InvalidRequestError) as sub_data_in_payment:
        client.v1.checkout.sessions.create(params={
            "mode": "payment", "line_items": [{"price": one_time.id, "quantity": 1}],
            "subscription_data": {"metadata": {"a": "b"}}})

    assert "at least one recurring price" in str(one_off.value)
    assert intent_data.value.param == "payment_intent_data"
    assert "passed a recurring price" in str(in_payment_mode.value)
    assert sub_data_in_payment.value.param == "subscription_data"
    inline = client.v1.checkout.sessions.create(params={
        "mode": "subscription", "customer_email": "m@example.com",
        "line_items": [{"quantity": 1, "price_data": {
            "currency": "cny", "unit_amount": 1200, "recurring": {"interval": "month"},
            "product_data": {"name": "Inline membership"}}}]})
    assert (inline.mode, inline.amount_total, inline.subscription) == \
        ("subscription", 1200, None)


def test_paying_a_subscription_session_sends_created_paid_and_completed_linked(
        client, standin, inbox):
    price = membership_price(client, lookup_key="member")
    session = subscription_session(client, price.id)
    assert (session.mode, session.amount_total, session.currency) == ("subscription", 3000,
                                                                      "cny")

    events = standin.pay(session.id, "succeeded")
    assert standin.flush(5)

    received = delivered(inbox)
    assert [e["id"] for e in received] == events
    assert [e["type"] for e in received] == [
        "customer.subscription.created", "invoice.paid", "invoice.payment_succeeded",
        "checkout.session.completed"]
    subscription = received[0]["data"]["object"]
    invoice = received[1]["data"]["object"]
    completed = received[3]["data"]["object"]
    assert fixture_keys("subscription") <= set(subscription)
    assert fixture_keys("invoice") <= set(invoice)
    assert subscription["id"].startswith("sub_") and invoice["id"].startswith("in_")
    assert subscription["status"] == "active"
    assert subscription["metadata"] == {"user_id": "usr_9", "plan": "member"}
    assert subscription["latest_invoice"] == invoice["id"]
    [item] = subscription["items"]["data"]
    assert item["id"].startswith("si_") and item["price"]["id"] == price.id
    assert item["current_period_end"] == a_month_after(item["current_period_start"])
    assert (invoice["status"], invoice["billing_reason"]) == ("paid", "subscription_create")
    assert (invoice["amount_paid"], invoice["amount_due"], invoice["currency"]) == \
        (3000, 3000, "cny")
    assert invoice["parent"]["subscription_details"]["subscription"] == subscription["id"]
    assert invoice["subscription"] == subscription["id"]
    assert invoice["customer"] == subscription["customer"]
    [line] = invoice["lines"]["data"]
    assert line["period"] == {"start": item["current_period_start"],
                              "end": item["current_period_end"]}
    assert line["amount"] == 3000
    assert line["parent"]["subscription_item_details"]["subscription_item"] == item["id"]
    assert (completed["status"], completed["payment_status"]) == ("complete", "paid")
    assert completed["subscription"] == subscription["id"]
    assert completed["customer"] == subscription["customer"]
    assert completed["invoice"] == invoice["id"]
    assert completed["payment_intent"] is None
    customer = client.v1.customers.retrieve(subscription["customer"])
    assert customer.id.startswith("cus_") and customer.email == "member@example.com"
    expanded = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["subscription.latest_invoice"]})
    assert expanded.subscription.latest_invoice.amount_paid == 3000
    assert client.v1.invoices.retrieve(invoice["id"]).status == "paid"


def test_a_declined_card_leaves_the_subscription_session_open(client, standin, inbox):
    session = subscription_session(client, membership_price(client).id)

    events = standin.pay(session.id, "failed")
    assert standin.flush(5)

    assert events == [] and inbox.received == []
    assert standin.get(session.id)["status"] == "open"
    assert standin.get(session.id)["subscription"] is None
    assert client.v1.subscriptions.list(params={"status": "all"}).data == []
    with pytest.raises(StandInError):
        standin.pay(session.id, delayed=True)
    standin.pay(session.id)
    assert standin.get(session.id)["subscription"].startswith("sub_")


def test_a_named_customer_is_reused_and_lists_its_subscriptions(client, standin):
    customer = client.v1.customers.create(params={"email": "ada@example.com", "name": "Ada",
                                                  "metadata": {"user_id": "usr_1"}})
    price = membership_price(client)

    session = subscription_session(client, price.id, customer=customer.id,
                                   customer_email=None)
    standin.pay(session.id)
    with pytest.raises(stripe.InvalidRequestError) as both:
        subscription_session(client, price.id, customer=customer.id)

    paid = standin.get(session.id)
    assert paid["customer"] == customer.id
    assert paid["customer_details"]["email"] == "ada@example.com"
    assert both.value.param == "customer_email"
    listed = client.v1.subscriptions.list(params={"customer": customer.id})
    assert [s.id for s in listed.data] == [paid["subscription"]]
    assert client.v1.customers.retrieve(customer.id).metadata.to_dict() == {"user_id": "usr_1"}
    assert client.v1.customers.list(params={"email": "ada@example.com"}).data[0].id == \
        customer.id


def test_renew_advances_the_period_and_sends_invoice_paid(client, standin, inbox):
    subscription = subscribe(client, standin, inbox)
    start, end = period(subscription)

    events = standin.renew(subscription.id)
    assert standin.flush(5)

    received = delivered(inbox)
    assert [e["id"] for e in received] == events
    assert [e["type"] for e in received] == [
        "invoice.paid", "invoice.payment_succeeded", "customer.subscription.updated"]
    invoice = received[0]["data"]["object"]
    renewed = received[2]["data"]["object"]
    assert (invoice["status"], invoice["billing_reason"], invoice["amount_paid"]) == \
        ("paid", "subscription_cycle", 3000)
    assert invoice["lines"]["data"][0]["period"] == {"start": end, "end": a_month_after(end)}
    assert period(renewed) == (end, a_month_after(end))
    assert renewed["latest_invoice"] == invoice["id"] != subscription.latest_invoice
    previous = received[2]["data"]["previous_attributes"]
    assert previous["latest_invoice"] == subscription.latest_invoice
    assert previous["items"]["data"][0]["current_period_start"] == start


def test_a_failed_renewal_is_past_due_and_a_later_renew_pays_it(client, standin, inbox):
    subscription = subscribe(client, standin, inbox)
    _, end = period(subscription)

    standin.fail_renewal(subscription.id)
    standin.fail_renewal(subscription.id)
    assert standin.flush(5)
    failed = delivered(inbox)
    inbox.received.clear()
    standin.renew(subscription.id)
    assert standin.flush(5)

    assert [e["type"] for e in failed] == [
        "invoice.payment_failed", "customer.subscription.updated", "invoice.payment_failed"]
    invoice = failed[0]["data"]["object"]
    assert (invoice["status"], invoice["attempt_count"], invoice["amount_paid"]) == \
        ("open", 1, 0)
    assert failed[2]["data"]["object"]["attempt_count"] == 2
    assert failed[1]["data"]["object"]["status"] == "past_due"
    assert failed[1]["data"]["previous_attributes"]["status"] == "active"
    paid = delivered(inbox)
    assert [e["type"] for e in paid] == [
        "invoice.paid", "invoice.payment_succeeded", "customer.subscription.updated"]
    assert paid[0]["data"]["object"]["id"] == invoice["id"]
    assert paid[0]["data"]["object"]["attempt_count"] == 3
    active = client.v1.subscriptions.retrieve(subscription.id)
    assert active.status == "active"
    assert period(active) == (end, a_month_after(end))


def test_lapse_after_failures_cancels_the_subscription(client, standin, inbox):
    subscription = subscribe(client, standin, inbox)
    with pytest.raises(StandInError) as active:
        standin.lapse(subscription.id)

    standin.fail_renewal(subscription.id)
    standin.lapse(subscription.id)
    assert standin.flush(5)

    assert active.value.status == 409
    assert [e["type"] for e in delivered(inbox)] == [
        "invoice.payment_failed", "customer.subscription.updated",
        "customer.subscription.deleted"]
    lapsed = client.v1.subscriptions.retrieve(subscription.id)
    assert lapsed.status == "canceled" and lapsed.ended_at
    assert lapsed.cancellation_details.reason == "payment_failed"
    assert client.v1.subscriptions.list(params={"customer": lapsed.customer}).data == []
    with pytest.raises(StandInError):
        standin.renew(subscription.id)


def test_cancel_at_period_end_then_renew_ends_the_subscription(client, standin, inbox):
    subscription = subscribe(client, standin, inbox)
    _, end = period(subscription)

    updated = client.v1.subscriptions.update(subscription.id,
                                             params={"cancel_at_period_end": True})
    standin.renew(subscription.id)
    assert standin.flush(5)

    assert (updated.status, updated.cancel_at_period_end, updated.cancel_at) == \
        ("active", True, end)
    received = delivered(inbox)
    assert [e["type"] for e in received] == ["customer.subscription.updated",
                                             "customer.subscription.deleted"]
    previous = received[0]["data"]["previous_attributes"]
    assert previous["cancel_at_period_end"] is False and previous["cancel_at"] is None
    ended = received[1]["data"]["object"]
    assert (ended["status"], ended["ended_at"]) == ("canceled", end)
    assert len(client.v1.invoices.list(params={"subscription": subscription.id}).data) == 1


def test_cancel_at_period_end_can_be_undone(client, standin, inbox):
    subscription = subscribe(client, standin, inbox)

    client.v1.subscriptions.update(subscription.id, params={"cancel_at_period_end": True})
    undone = client.v1.subscriptions.update(subscription.id,
                                            params={"cancel_at_period_end": False})
    standin.renew(subscription.id)
    assert standin.flush(5)

    assert (undone.cancel_at_period_end, undone.cancel_at, undone.canceled_at) == \
        (False, None, None)
    assert client.v1.subscriptions.retrieve(subscription.id).status == "active"
    assert [e["type"] for e in delivered(inbox)][-1] == "customer.subscription.updated"


def test_a_price_change_with_always_invoice_bills_the_prorated_difference(
        client, standin, inbox):
    subscription = subscribe(client, standin, inbox)
    start, end = period(subscription)
    gold = client.v1.prices.create(params={
        "product": subscription["items"]["data"][0]["price"]["product"], "currency": "cny",
        "unit_amount": 5000, "recurring": {"interval": "month"}})
    halfway = start + (end - start) // 2

    updated = client.v1.subscriptions.update(subscription.id, params={
        "items": [{"id": subscription["items"]["data"][0]["id"], "price": gold.id}],
        "proration_behavior": "always_invoice", "proration_date": halfway})
    assert standin.flush(5)

    def share(amount: int) -> int:  # half up, in minor units
        exact = Fraction(amount * (end - halfway), end - start)
        return int(exact + Fraction(1, 2))

    received = delivered(inbox)
    assert [e["type"] for e in received] == [
        "customer.subscription.updated", "invoice.paid", "invoice.payment_succeeded"]
    assert received[0]["data"]["previous_attributes"]["items"]["data"][0]["price"]["id"] != \
        gold.id
    invoice = received[1]["data"]["object"]
    assert invoice["billing_reason"] == "subscription_update"
    assert [line["amount"] for line in invoice["lines"]["data"]] == [-share(3000), share(5000)]
    assert invoice["amount_paid"] == share(5000) - share(3000)
    assert all(isinstance(line["amount"], int) for line in invoice["lines"]["data"])
    assert updated["items"]["data"][0]["price"]["id"] == gold.id
    assert period(updated) == (start, end)
    assert updated.latest_invoice == invoice["id"]


def test_create_prorations_wait_for_the_next_renewal(client, standin, inbox):
    subscription = subscribe(client, standin, inbox)
    start, end = period(subscription)
    gold = client.v1.prices.create(params={
        "product": subscription["items"]["data"][0]["price"]["product"], "currency": "cny",
        "unit_amount": 5000, "recurring": {"interval": "month"}})

    client.v1.subscriptions.update(subscription.id, params={
        "items": [{"id": subscription["items"]["data"][0]["id"], "price": gold.id}],
        "proration_date": start})
    standin.renew(subscription.id)
    assert standin.flush(5)

    assert [e["type"] for e in delivered(inbox)] == [
        "customer.subscription.updated", "invoice.paid", "invoice.payment_succeeded",
        "customer.subscription.updated"]
    renewal = delivered(inbox)[1]["data"]["object"]
    assert [line["amount"] for line in renewal["lines"]["data"]] == [-3000, 5000, 5000]
    assert renewal["amount_paid"] == 7000


def test_delete_cancels_the_subscription_now(client, standin, inbox):
    subscription = subscribe(client, standin, inbox)

    canceled = client.v1.subscriptions.cancel(
        subscription.id, params={"cancellation_details": {"feedback": "too_expensive"}})
    assert standin.flush(5)

    assert canceled.status == "canceled"
    assert canceled.ended_at and canceled.canceled_at == canceled.ended_at
    assert canceled.cancellation_details.feedback == "too_expensive"
    assert [e["type"] for e in delivered(inbox)] == ["customer.subscription.deleted"]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.update(subscription.id, params={"cancel_at_period_end": True})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.cancel(subscription.id)
    assert [s.id for s in client.v1.subscriptions.list(params={"status": "canceled"}).data] \
        == [subscription.id]


def test_the_life_of_a_subscription_over_http(client, standin, inbox):
    subscription = subscribe(client, standin, inbox)
    base = f"{standin.base_url}/_standin/subscriptions/{subscription.id}"

    failed = post_json(f"{base}/fail", {})
    renewed = post_json(f"{standin.base_url}/_local/stripe/subscriptions/{subscription.id}"
                        "/renew", {})
    with pytest.raises(urllib.error.HTTPError) as not_past_due:
        post_json(f"{base}/lapse", {})
    assert standin.flush(5)

    assert failed["status"] == "past_due" and len(failed["events"]) == 2
    assert renewed["status"] == "active" and len(renewed["events"]) == 3
    assert not_past_due.value.code == 409
    assert json.loads(not_past_due.value.read())["error"]["code"] == \
        "subscription_not_past_due"
    missing = urllib.request.Request(f"{standin.base_url}/_standin/subscriptions/sub_x/renew",
                                     data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as unknown:
        urllib.request.urlopen(missing, timeout=5)
    assert unknown.value.code == 404


def test_the_payment_page_of_a_subscription_session(client, standin, inbox):
    session = subscription_session(client, membership_price(client).id)

    with urllib.request.urlopen(session.url, timeout=5) as response:
        page = response.read().decode()
    declined = urllib.request.Request(f"{standin.base_url}/checkout/{session.id}/pay",
                                      data=b"outcome=failed", method="POST",
                                      headers={"Content-Type":
                                               "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(declined, timeout=5) as response:
        after_decline = response.read().decode()
    paid = urllib.request.Request(f"{standin.base_url}/checkout/{session.id}/pay",
                                  data=b"outcome=succeeded", method="POST",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(paid, timeout=5) as response:
        result = response.read().decode()

    assert "30.00" in page and "/ month" in page and ">Subscribe<" in page
    assert "delayed" not in page
    assert "declined" in after_decline and ">Subscribe<" in after_decline
    assert "Payment succeeded" in result
    assert standin.get(session.id)["subscription"] in result


def test_yearly_and_month_end_periods_follow_the_calendar(client, standin, inbox):
    subscription = subscribe(client, standin, inbox, interval="year")
    start, end = period(subscription)

    assert end == months_after(start, 12)
    from devstack.stripe_standin import _shift

    jan31 = int(datetime(2025, 1, 31, 12, tzinfo=UTC).timestamp())
    assert datetime.fromtimestamp(_shift(jan31, "month", 1), UTC).date().isoformat() == \
        "2025-02-28"
    assert datetime.fromtimestamp(_shift(jan31, "month", 2), UTC).date().isoformat() == \
        "2025-03-31"


def half_up_share(amount: int, start: int, at: int, end: int) -> int:
    return int(Fraction(amount * (end - at), end - start) + Fraction(1, 2))


def test_a_new_interval_restarts_the_cycle_and_bills_at_once(client, standin, inbox):
    subscription = subscribe(client, standin, inbox)
    start, end = period(subscription)
    item = subscription["items"]["data"][0]
    yearly = client.v1.prices.create(params={
        "product": item["price"]["product"], "currency": "cny", "unit_amount": 30000,
        "recurring": {"interval": "year"}})
    halfway = start + (end - start) // 2

    updated = client.v1.subscriptions.update(subscription.id, params={
        "items": [{"id": item["id"], "price": yearly.id}], "proration_date": halfway})
    assert standin.flush(5)

    assert [e["type"] for e in delivered(inbox)] == [
        "customer.subscription.updated", "invoice.paid", "invoice.payment_succeeded"]
    invoice = client.v1.invoices.retrieve(updated.latest_invoice)
    assert [line.amount for line in invoice.lines.data] == \
        [-half_up_share(3000, start, halfway, end), 30000]
    assert invoice.amount_paid == 30000 - half_up_share(3000, start, halfway, end)
    assert period(updated) == (halfway, months_after(halfway, 12))
    assert updated.billing_cycle_anchor == halfway


def test_a_downgrade_credit_lowers_the_next_renewal(client, standin, inbox):
    subscription = subscribe(client, standin, inbox, amount=5000)
    start, end = period(subscription)
    item = subscription["items"]["data"][0]
    basic = client.v1.prices.create(params={
        "product": item["price"]["product"], "currency": "cny", "unit_amount": 3000,
        "recurring": {"interval": "month"}})
    halfway = start + (end - start) // 2
    credit = half_up_share(5000, start, halfway, end) - half_up_share(3000, start, halfway,
                                                                      end)

    updated = client.v1.subscriptions.update(subscription.id, params={
        "items": [{"id": item["id"], "price": basic.id}], "proration_date": halfway,
        "proration_behavior": "always_invoice"})
    standin.renew(subscription.id)
    assert standin.flush(5)

    downgrade = client.v1.invoices.retrieve(updated.latest_invoice)
    assert (downgrade.total, downgrade.amount_due, downgrade.status) == (-credit, 0, "paid")
    assert downgrade.ending_balance == -credit
    renewal = client.v1.invoices.retrieve(
        client.v1.subscriptions.retrieve(subscription.id).latest_invoice)
    assert (renewal.total, renewal.starting_balance, renewal.amount_paid) == \
        (3000, -credit, 3000 - credit)
    assert client.v1.customers.retrieve(subscription.customer).balance == 0


def test_no_proration_changes_the_price_from_the_next_renewal(client, standin, inbox):
    subscription = subscribe(client, standin, inbox)
    item = subscription["items"]["data"][0]
    gold = client.v1.prices.create(params={
        "product": item["price"]["product"], "currency": "cny", "unit_amount": 5000,
        "recurring": {"interval": "month"}})

    client.v1.subscriptions.update(subscription.id, params={
        "items": [{"id": item["id"], "price": gold.id}], "proration_behavior": "none",
        "metadata": {"tier": "gold"}})
    standin.renew(subscription.id)
    assert standin.flush(5)

    invoices = client.v1.invoices.list(params={"subscription": subscription.id}).data
    assert [i.amount_paid for i in invoices] == [5000, 3000]
    renewed = client.v1.subscriptions.retrieve(subscription.id)
    assert renewed.metadata.to_dict() == {"user_id": "usr_9", "plan": "member", "tier": "gold"}
    with pytest.raises(stripe.InvalidRequestError) as other_item:
        client.v1.subscriptions.update(subscription.id, params={
            "items": [{"id": "si_other", "price": gold.id}]})
    assert other_item.value.param == "items[0][id]"
    with pytest.raises(stripe.InvalidRequestError) as trial:
        client.v1.subscriptions.update(subscription.id, params={"trial_end": "now"})
    assert trial.value.param == "trial_end"


def test_an_inline_recurring_price_pays_like_a_stored_one(client, standin, inbox):
    session = client.v1.checkout.sessions.create(params={
        "mode": "subscription", "customer_email": "m@example.com",
        "line_items": [{"quantity": 2, "price_data": {
            "currency": "usd", "unit_amount": 700,
            "recurring": {"interval": "week", "interval_count": 2},
            "product_data": {"name": "Fortnightly box"}}}]})

    standin.pay(session.id)

    subscription = client.v1.subscriptions.retrieve(
        standin.get(session.id)["subscription"], params={"expand": ["latest_invoice"]})
    start, end = period(subscription)
    assert end - start == 14 * 86400
    assert subscription.latest_invoice.amount_paid == 1400
    assert subscription.latest_invoice.lines.data[0].description == \
        "2 × Fortnightly box (at $7.00 USD every 2 weeks)"
    price = client.v1.prices.retrieve(subscription["items"]["data"][0]["price"]["id"])
    assert price.active is False and price.recurring.interval == "week"


def test_renew_pays_the_failed_invoice_even_after_a_later_one(client, standin, inbox):
    subscription = subscribe(client, standin, inbox)
    item = subscription["items"]["data"][0]
    gold = client.v1.prices.create(params={
        "product": item["price"]["product"], "currency": "cny", "unit_amount": 5000,
        "recurring": {"interval": "month"}})
    standin.fail_renewal(subscription.id)
    failed = client.v1.subscriptions.retrieve(subscription.id).latest_invoice

    client.v1.subscriptions.update(subscription.id, params={
        "items": [{"id": item["id"], "price": gold.id}],
        "proration_behavior": "always_invoice"})
    standin.renew(subscription.id)

    assert client.v1.invoices.retrieve(failed).status == "paid"
    assert client.v1.subscriptions.retrieve(subscription.id).status == "active"
    assert client.v1.invoices.list(params={"subscription": subscription.id,
                                           "status": "open"}).data == []


def test_a_refused_session_keeps_none_of_its_inline_prices(client):
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.create(params={
            "mode": "subscription", "expires_at": 1,
            "line_items": [{"quantity": 1, "price_data": {
                "currency": "cny", "unit_amount": 1200, "recurring": {"interval": "month"},
                "product_data": {"name": "Inline membership"}}}]})

    assert client.v1.prices.list().data == []
    assert client.v1.products.list().data == []
