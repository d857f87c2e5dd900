"""The local Stripe stand-in, driven by the official stripe SDK over HTTP, with its webhook
events captured by an in-memory deliverer and verified the way the app verifies them."""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import stripe

from devstack import stripe_standin
from devstack.stripe_standin import (
    StandInError,
    StripeStandIn,
    decode_form,
    format_amount,
    http_deliverer,
)

SECRET = "whsec_unit_standin"
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "stripe"


class Inbox:
    """A deliverer that keeps what it is given; can be told to fail the next N calls."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str]] = []
        self.fail_next = 0
        self.lock = threading.Lock()

    def __call__(self, body: bytes, signature: str) -> None:
        with self.lock:
            if self.fail_next:
                self.fail_next -= 1
                raise RuntimeError("endpoint down")
            self.received.append((body, signature))

    def events(self) -> list[dict]:
        return [json.loads(body) for body, _ in self.received]

    def types(self) -> list[str]:
        return [e["type"] for e in self.events()]


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


def session_params(**extra):
    params = {
        "mode": "payment",
        "line_items": [
            {"price_data": {"currency": "cny", "unit_amount": 1250,
                            "product_data": {"name": "PDF 教程"}}, "quantity": 2},
            {"price_data": {"currency": "cny", "unit_amount": 300,
                            "product_data": {"name": "Icons"}}, "quantity": 1},
        ],
        "client_reference_id": "ord_123",
        "metadata": {"order_id": "ord_123", "user_id": "usr_9"},
        "payment_intent_data": {"metadata": {"order_id": "ord_123"}},
        "payment_method_types": ["card", "alipay"],
        "success_url": "https://shop.example/ok?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://shop.example/cancel",
        "customer_email": "buyer@example.com",
    }
    params.update(extra)
    return params


def create_session(client, key="idem-1", **extra):
    return client.v1.checkout.sessions.create(params=session_params(**extra),
                                              options={"idempotency_key": key})


def fixture_keys(name: str) -> set[str]:
    return set(json.loads((FIXTURES / f"{name}.json").read_text()).keys())


def test_create_session_keeps_what_the_platform_sends(client, standin):
    session = create_session(client)

    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert session.mode == "payment"
    assert session.status == "open"
    assert session.payment_status == "unpaid"
    assert session.currency == "cny"
    assert session.amount_subtotal == session.amount_total == 2 * 1250 + 300
    assert session.client_reference_id == "ord_123"
    assert session.metadata.to_dict() == {"order_id": "ord_123", "user_id": "usr_9"}
    assert session.payment_method_types == ["card", "alipay"]
    assert session.customer_email == "buyer@example.com"
    assert session.payment_intent is None
    assert session.url == f"{standin.base_url}/checkout/{session.id}"
    assert session.success_url.startswith("https://shop.example/ok")
    assert 23 * 3600 < session.expires_at - time.time() <= 24 * 3600
    assert fixture_keys("checkout.session") <= set(session.to_dict())

    again = client.v1.checkout.sessions.retrieve(session.id)
    assert again.to_dict() == session.to_dict()
    items = client.v1.checkout.sessions.line_items.list(session.id)
    assert [(i.description, i.quantity, i.amount_total) for i in items.data] == \
        [("PDF 教程", 2, 2500), ("Icons", 1, 300)]


def test_idempotency_key_replays_the_same_session(client, standin):
    first = create_session(client, key="same-key")
    second = create_session(client, key="same-key")
    other = create_session(client, key="other-key")

    assert second.id == first.id
    assert second.to_dict() == first.to_dict()
    assert other.id != first.id
    with pytest.raises(stripe.IdempotencyError):
        create_session(client, key="same-key", client_reference_id="ord_other")


def test_bad_requests_answer_stripe_errors(client):
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.checkout.sessions.retrieve("cs_test_nope")
    assert unknown.value.http_status == 404
    assert unknown.value.code == "resource_missing"

    with pytest.raises(stripe.InvalidRequestError) as typo:
        create_session(client, key="k-typo", metdata={"a": "b"})
    assert typo.value.http_status == 400
    assert typo.value.param == "metdata"

    with pytest.raises(stripe.InvalidRequestError) as wechat:
        create_session(client, key="k-wechat", payment_method_types=["wechat_pay"])
    assert wechat.value.param == "payment_method_options[wechat_pay][client]"

    with pytest.raises(stripe.InvalidRequestError) as expiry:
        create_session(client, key="k-exp", expires_at=int(time.time()) + 60)
    assert expiry.value.param == "expires_at"


def test_an_api_key_is_required(standin):
    no_key = urllib.request.Request(f"{standin.base_url}/v1/payment_intents/pi_x")
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(no_key, timeout=5)
    assert denied.value.code == 401
    assert json.loads(denied.value.read())["error"]["type"] == "invalid_request_error"


def test_pay_succeeded_sends_a_signed_completed_event(client, standin, inbox):
    session = create_session(client)

    events = standin.pay(session.id, "succeeded")
    assert standin.flush(5)

    assert inbox.types() == ["checkout.session.completed"]
    body, header = inbox.received[0]
    assert stripe.WebhookSignature.verify_header(body.decode(), header, SECRET, 300)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(body.decode(), header, "whsec_other", 300)
    event = stripe.Webhook.construct_event(body, header, SECRET)
    assert event.id == events[0]
    assert fixture_keys("event") <= set(json.loads(body))
    assert event.object == "event" and event.livemode is False
    assert event.pending_webhooks == 1
    completed = event.data.object
    assert fixture_keys("checkout.session") <= set(completed.to_dict())
    assert completed.id == session.id
    assert completed.status == "complete"
    assert completed.payment_status == "paid"
    assert completed.metadata.to_dict()["order_id"] == "ord_123"
    assert completed.client_reference_id == "ord_123"
    assert completed.payment_intent.startswith("pi_")

    intent = client.v1.payment_intents.retrieve(completed.payment_intent)
    assert fixture_keys("payment_intent") <= set(intent.to_dict())
    assert (intent.status, intent.amount, intent.currency) == ("succeeded", 2800, "cny")
    assert intent.metadata.to_dict() == {"order_id": "ord_123"}
    assert intent.latest_charge.startswith("ch_")
    expanded = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent.latest_charge"]})
    assert expanded.payment_intent.latest_charge.paid is True
    assert expanded.payment_intent.latest_charge.amount_captured == 2800

    with pytest.raises(StandInError) as again:
        standin.pay(session.id)
    assert again.value.status == 409


def test_delayed_pay_sends_unpaid_completed_then_async_succeeded(client, standin, inbox):
    session = create_session(client)

    standin.pay(session.id, "succeeded", delayed=True)
    assert standin.flush(5)

    events = inbox.events()
    assert [e["type"] for e in events] == ["checkout.session.completed",
                                           "checkout.session.async_payment_succeeded"]
    assert [e["data"]["object"]["payment_status"] for e in events] == ["unpaid", "paid"]
    assert events[0]["data"]["object"]["payment_intent"] == \
        events[1]["data"]["object"]["payment_intent"]


def test_failed_pay_sends_unpaid_completed_then_async_failed(client, standin, inbox):
    session = create_session(client)

    standin.pay(session.id, "failed")
    assert standin.flush(5)

    events = inbox.events()
    assert [e["type"] for e in events] == ["checkout.session.completed",
                                           "checkout.session.async_payment_failed"]
    assert {e["data"]["object"]["payment_status"] for e in events} == {"unpaid"}
    intent = client.v1.payment_intents.retrieve(events[1]["data"]["object"]["payment_intent"])
    assert intent.status == "requires_payment_method"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"payment_intent": intent.id})


def test_expire_an_open_session_only(client, standin, inbox):
    session = create_session(client)

    expired = client.v1.checkout.sessions.expire(session.id)
    assert standin.flush(5)

    assert expired.status == "expired"
    assert inbox.types() == ["checkout.session.expired"]
    assert inbox.events()[0]["data"]["object"]["id"] == session.id
    with pytest.raises(StandInError):
        standin.pay(session.id)

    paid = create_session(client, key="idem-2")
    standin.pay(paid.id)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.expire(paid.id)
    assert refused.value.http_status == 400


def test_refund_in_parts_then_over_refund(client, standin, inbox):
    session = create_session(client)
    standin.pay(session.id)
    intent_id = standin.get(session.id)["payment_intent"]

    first = client.v1.refunds.create(
        params={"payment_intent": intent_id, "amount": 1000, "reason": "requested_by_customer",
                "metadata": {"refund_id": "rf_1"}},
        options={"idempotency_key": "refund-1"})
    replay = client.v1.refunds.create(
        params={"payment_intent": intent_id, "amount": 1000, "reason": "requested_by_customer",
                "metadata": {"refund_id": "rf_1"}},
        options={"idempotency_key": "refund-1"})
    rest = client.v1.refunds.create(params={"payment_intent": intent_id},
                                    options={"idempotency_key": "refund-2"})
    assert standin.flush(5)

    assert replay.id == first.id
    assert fixture_keys("refund") <= set(first.to_dict())
    assert (first.amount, first.status, first.currency) == (1000, "succeeded", "cny")
    assert first.payment_intent == intent_id
    assert first.metadata.to_dict() == {"refund_id": "rf_1"}
    assert first.reason == "requested_by_customer"
    assert rest.amount == 1800
    events = inbox.events()
    assert [e["type"] for e in events] == [
        "checkout.session.completed", "charge.refunded", "refund.created",
        "charge.refunded", "refund.created"]
    charges = [e["data"]["object"] for e in events if e["type"] == "charge.refunded"]
    assert [(c["amount_refunded"], c["refunded"]) for c in charges] == \
        [(1000, False), (2800, True)]
    assert all(fixture_keys("charge") <= set(c) for c in charges)
    assert charges[0]["payment_intent"] == intent_id
    assert charges[0]["amount"] == charges[0]["amount_captured"] == 2800
    assert charges[0]["paid"] is True and charges[0]["status"] == "succeeded"
    assert [e["data"]["object"]["id"] for e in events if e["type"] == "refund.created"] == \
        [first.id, rest.id]
    assert events[1]["request"]["idempotency_key"] == "refund-1"

    with pytest.raises(stripe.InvalidRequestError) as over:
        client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 1})
    assert over.value.http_status == 400


def test_over_refund_is_refused(client, standin):
    session = create_session(client)
    standin.pay(session.id)
    intent_id = standin.get(session.id)["payment_intent"]

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 2801})
    assert refused.value.param == "amount"
    assert refused.value.code == "amount_too_large"


def test_dispute_opened_and_won(client, standin, inbox):
    session = create_session(client)
    standin.pay(session.id)
    intent_id = standin.get(session.id)["payment_intent"]

    dispute_id = standin.open_dispute(intent_id)
    with pytest.raises(stripe.InvalidRequestError) as disputed:
        client.v1.refunds.create(params={"payment_intent": intent_id})
    assert disputed.value.code == "charge_disputed"
    standin.close_dispute(dispute_id, won=True)
    assert standin.flush(5)

    events = inbox.events()
    assert [e["type"] for e in events] == ["checkout.session.completed",
                                           "charge.dispute.created", "charge.dispute.closed"]
    created, closed = events[1]["data"]["object"], events[2]["data"]["object"]
    assert fixture_keys("dispute") <= set(created)
    assert (created["id"], created["status"], created["reason"]) == \
        (dispute_id, "needs_response", "fraudulent")
    assert (created["amount"], created["currency"], created["payment_intent"]) == \
        (2800, "cny", intent_id)
    assert closed["status"] == "won"
    with pytest.raises(StandInError):
        standin.close_dispute(dispute_id, won=False)


def test_dispute_over_http_closed_lost(client, standin, inbox):
    session = create_session(client)
    standin.pay(session.id)
    intent_id = standin.get(session.id)["payment_intent"]

    opened = post_json(f"{standin.base_url}/_standin/disputes", {"payment_intent": intent_id})
    closed = post_json(f"{standin.base_url}/_standin/disputes/{opened['id']}/close",
                       {"won": False})
    assert standin.flush(5)

    assert opened["status"] == "needs_response"
    assert closed["status"] == "lost"
    assert inbox.types()[-1] == "charge.dispute.closed"


def post_json(url: str, payload: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_payment_page_shows_the_amount_and_pays(client, standin, inbox):
    session = create_session(client)

    with urllib.request.urlopen(session.url, timeout=5) as response:
        page = response.read().decode()
        assert response.headers["Content-Type"].startswith("text/html")
    assert "28.00" in page and "CNY" in page
    assert "PDF 教程" in page
    assert f"/checkout/{session.id}/pay" in page
    assert ">Pay<" in page and ">Fail payment<" in page

    form = urllib.request.Request(f"{standin.base_url}/checkout/{session.id}/pay",
                                  data=b"outcome=succeeded", method="POST",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(form, timeout=5) as response:
        result = response.read().decode()
    assert "Payment succeeded" in result
    assert f"https://shop.example/ok?session={session.id}" in result
    assert standin.flush(5)
    assert inbox.types() == ["checkout.session.completed"]


def test_pay_over_http_answers_events_or_409(client, standin, inbox):
    session = create_session(client)
    url = f"{standin.base_url}/checkout/{session.id}/pay"

    answer = post_json(url, {"outcome": "succeeded", "delayed": True})
    assert answer["session_id"] == session.id
    assert len(answer["events"]) == 2
    with pytest.raises(urllib.error.HTTPError) as conflict:
        post_json(url, {"outcome": "succeeded"})
    assert conflict.value.code == 409
    assert "error" in json.loads(conflict.value.read())


def test_failed_deliveries_are_retried_and_events_can_be_resent(client, standin, inbox):
    session = create_session(client)
    inbox.fail_next = 2

    [event_id] = standin.pay(session.id)
    assert standin.flush(5)
    standin.resend(event_id)
    assert standin.flush(5)

    assert [json.loads(body)["id"] for body, _ in inbox.received] == [event_id, event_id]
    assert inbox.received[0][0] == inbox.received[1][0]
    deliveries = standin.deliveries
    assert [(d.attempts, d.delivered) for d in deliveries] == [(3, True), (1, True)]

    inbox.fail_next = 10
    standin.resend(event_id)
    assert standin.flush(5)
    assert standin.deliveries[-1].attempts == 4
    assert standin.deliveries[-1].delivered is False


def test_http_deliverer_posts_signed_events_and_raises_on_errors(standin):
    received: list[tuple[dict, bytes]] = []
    answer = {"status": 200}

    class Endpoint(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(answer["status"])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        deliver = http_deliverer(f"http://127.0.0.1:{server.server_address[1]}/webhooks/stripe")
        deliver(b'{"id":"evt_1"}', "t=1,v1=abc")
        assert received[0][1] == b'{"id":"evt_1"}'
        assert received[0][0]["Stripe-Signature"] == "t=1,v1=abc"
        assert received[0][0]["Content-Type"].startswith("application/json")
        answer["status"] = 500
        with pytest.raises(urllib.error.HTTPError):
            deliver(b"{}", "t=1,v1=abc")
    finally:
        server.shutdown()
        server.server_close()


def test_registry_holds_the_running_stand_in(standin):
    stripe_standin.register(standin)
    assert stripe_standin.current() is standin
    standin.stop()
    assert stripe_standin.current() is None


def test_form_decoding_and_amounts():
    assert decode_form("line_items[0][price_data][currency]=cny&line_items[0][quantity]=2"
                       "&metadata[0]=x&expand[0]=a&expand[1]=b&tags[]=t") == {
        "line_items": [{"price_data": {"currency": "cny"}, "quantity": "2"}],
        "metadata": {"0": "x"},
        "expand": ["a", "b"],
        "tags": ["t"],
    }
    assert format_amount(123456, "cny") == "¥1,234.56 CNY"
    assert format_amount(500, "jpy") == "¥500 JPY"
    assert format_amount(5, "usd") == "$0.05 USD"


def test_the_stand_ins_fixture_copies_equal_the_shared_fixtures():
    from devstack.stripe_standin import DEFAULT_FIXTURES_DIR

    shared = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "stripe"
    copies = sorted(DEFAULT_FIXTURES_DIR.glob("*.json"))
    assert copies
    for copy in copies:
        assert copy.read_bytes() == (shared / copy.name).read_bytes(), copy.name
