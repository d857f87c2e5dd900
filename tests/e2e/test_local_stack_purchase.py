"""The whole purchase over HTTP on the local stack: checkout, the local payment page, a signed
webhook through the queue to the consumer, the library, and a download whose bytes equal the
upload. Concurrent duplicate deliveries grant once."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.flows import PASSWORD, new_creator, send_file, token_for
from tests.support import eventually

pytestmark = pytest.mark.e2e

BOOK = b"%PDF-1.7\n% e2e purchase " + uuid.uuid4().hex.encode() + b"\n%%EOF\n"


@pytest.fixture(scope="module")
def on_sale(api, stack):
    """A creator's resource, uploaded through the presigned form and approved."""
    token = new_creator(api)
    auth = {"Authorization": f"Bearer {token}"}
    resource = api.post("/creator/resources", headers=auth, json={
        "title": "端到端 Purchase", "description": "", "price": {"amount": 2500,
                                                                 "currency": "cny"},
        "category": "data", "kind": "ebook"}).json()["resource"]
    assert send_file(api, token, resource["id"], BOOK, "application/pdf")["status"] == "verified"
    api.post(f"/creator/resources/{resource['id']}/submit", headers=auth)
    admin = token_for(api, stack.admin_email, stack.admin_password)["access_token"]
    approved = api.post(f"/admin/resources/{resource['id']}/approve",
                        headers={"Authorization": f"Bearer {admin}"})
    assert approved.status_code == 200
    return resource


def new_buyer(api) -> dict:
    email = f"buyer-{uuid.uuid4().hex[:10]}@paidres.example.com"
    api.post("/auth/register", json={"email": email, "password": PASSWORD,
                                     "display_name": "Buyer"})
    return {"Authorization": f"Bearer {token_for(api, email)['access_token']}"}


def order_status(api, auth, order_id) -> str:
    return api.get(f"/me/orders/{order_id}", headers=auth).json()["order"]["status"]


def test_checkout_pay_webhook_library_download(api, on_sale):
    auth = new_buyer(api)
    made = api.post("/checkout", headers=auth,
                    json={"items": [{"resource_id": on_sale["id"]}]}).json()
    page = requests.get(made["checkout_url"], timeout=10)
    assert page.status_code == 200 and "25.00" in page.text
    paid = api.post(f"/_local/stripe/checkout/{made['checkout_session_id']}/pay",
                    json={"outcome": "succeeded"})
    assert paid.status_code == 202
    order_id = made["order"]["id"]
    assert eventually(lambda: order_status(api, auth, order_id) == "paid")
    library = api.get("/me/library", headers=auth).json()["items"]
    assert [i["resource"]["id"] for i in library] == [on_sale["id"]]
    link = api.post(f"/me/library/{on_sale['id']}/download", headers=auth)
    assert link.status_code == 200
    downloaded = requests.get(link.json()["url"], timeout=10)
    assert downloaded.status_code == 200
    assert hashlib.sha256(downloaded.content).digest() == hashlib.sha256(BOOK).digest()
    stranger = new_buyer(api)
    assert api.get(f"/me/orders/{order_id}", headers=stranger).status_code == 404
    assert api.post(f"/me/library/{on_sale['id']}/download",
                    headers=stranger).status_code == 404


def test_a_failed_payment_leaves_the_order_failed(api, on_sale):
    auth = new_buyer(api)
    made = api.post("/checkout", headers=auth,
                    json={"items": [{"resource_id": on_sale["id"]}]}).json()
    api.post(f"/_local/stripe/checkout/{made['checkout_session_id']}/pay",
             json={"outcome": "failed"})
    assert eventually(lambda: order_status(api, auth, made["order"]["id"]) == "failed")
    assert api.get("/me/library", headers=auth).json()["items"] == []


def paid_order(api, on_sale) -> tuple[str, dict]:
    auth = new_buyer(api)
    made = api.post("/checkout", headers=auth,
                    json={"items": [{"resource_id": on_sale["id"]}]}).json()
    api.post(f"/_local/stripe/checkout/{made['checkout_session_id']}/pay",
             json={"outcome": "succeeded"})
    order_id = made["order"]["id"]
    assert eventually(lambda: order_status(api, auth, order_id) == "paid")
    return order_id, auth


def test_the_same_event_delivered_five_times_at_once_grants_once(api, stack, on_sale):
    order_id, auth = paid_order(api, on_sale)
    events = requests.get(f"{stack.stripe_url}/_standin/events", timeout=10).json()["data"]
    completed = next(e for e in events if e["type"] == "checkout.session.completed"
                     and e["data"]["object"]["client_reference_id"] == order_id)
    body = json.dumps(completed).encode()
    stamp = int(time.time())
    mac = hmac.new(stack.webhook_secret.encode(), f"{stamp}.".encode() + body,
                   hashlib.sha256).hexdigest()
    answers: list[int] = []

    def deliver():
        answers.append(api.post("/webhooks/stripe", data=body, headers={
            "Content-Type": "application/json",
            "Stripe-Signature": f"t={stamp},v1={mac}"}).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 5
    time.sleep(3)  # let the pump work through the five copies
    order = api.get(f"/me/orders/{order_id}", headers=auth).json()["order"]
    assert order["status"] == "paid"
    library = api.get("/me/library", headers=auth).json()["items"]
    assert [(i["resource"]["id"], i["status"]) for i in library] == [(on_sale["id"], "active")]


def test_twenty_concurrent_partial_refunds_each_202_happens_and_none_is_5xx(api, stack,
                                                                           on_sale):
    order_id, buyer = paid_order(api, on_sale)
    admin = {"Authorization": "Bearer "
             f"{token_for(api, stack.admin_email, stack.admin_password)['access_token']}"}
    start = threading.Barrier(20)

    def refund(n: int) -> requests.Response:
        start.wait(timeout=30)
        return requests.post(f"{stack.base_url}/admin/orders/{order_id}/refund", headers=admin,
                             json={"amount": 100, "reason": f"partial {n}"}, timeout=60)

    with ThreadPoolExecutor(20) as pool:
        replies = list(pool.map(refund, range(20)))
    statuses = sorted(r.status_code for r in replies)
    assert all(s in (202, 409) for s in statuses), [(r.status_code, r.text) for r in replies]
    accepted = sum(100 for r in replies if r.status_code == 202)
    assert accepted >= 100
    for r in replies:
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "refund_in_flight"

    def refunded() -> int | None:
        order = api.get(f"/me/orders/{order_id}", headers=buyer).json()["order"]
        done = order["amount_refunded"]["amount"]
        return done if done == accepted else None

    # Every 202 ends as a refund: the order's refunds add up to exactly what was accepted.
    assert eventually(refunded, timeout=30) == accepted, \
        api.get(f"/me/orders/{order_id}", headers=buyer).json()
    again = requests.post(f"{stack.base_url}/admin/orders/{order_id}/refund", headers=admin,
                          json={"amount": 100, "reason": "one more, alone"}, timeout=60)
    assert again.status_code == 202, again.text


def test_ten_concurrent_checkouts_of_one_basket_open_one_session_and_charge_once(api, on_sale):
    auth = new_buyer(api)
    start = threading.Barrier(10)

    def checkout(_: int) -> requests.Response:
        start.wait(timeout=30)
        return api.post("/checkout", headers=auth,
                        json={"items": [{"resource_id": on_sale["id"]}]})

    with ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(checkout, range(10)))
    assert all(r.status_code in (201, 409) for r in replies), [r.text for r in replies]
    assert all(r.json()["error"]["code"] == "checkout_in_progress"
               for r in replies if r.status_code == 409)
    sessions = {r.json()["checkout_session_id"] for r in replies if r.status_code == 201}
    assert len(sessions) == 1, sessions
    made = next(r.json() for r in replies if r.status_code == 201)
    api.post(f"/_local/stripe/checkout/{made['checkout_session_id']}/pay",
             json={"outcome": "succeeded"})
    assert eventually(lambda: order_status(api, auth, made["order"]["id"]) == "paid")
    mine = api.get("/me/orders", headers=auth).json()["items"]
    assert [o["status"] for o in mine] == ["paid"]


def test_a_sale_shows_in_the_reports_once_the_analytics_queue_is_drained(api, stack, on_sale):
    admin = {"Authorization": "Bearer " + token_for(
        api, stack.admin_email, stack.admin_password)["access_token"]}
    today = time.strftime("%Y-%m-%d", time.gmtime())
    path = f"/admin/reports/revenue?from={today}&to={today}&currency=cny"

    def gross() -> int:
        return api.get(path, headers=admin).json()["rows"][0]["gross"]

    def funnel_paid() -> int:
        return api.get(f"/admin/reports/funnel?from={today}&to={today}"
                       f"&resource_id={on_sale['id']}", headers=admin).json()["paid"]

    before, paid_before = gross(), funnel_paid()
    # When a buyer pays through the local payment page
    auth = new_buyer(api)
    made = api.post("/checkout", headers=auth,
                    json={"items": [{"resource_id": on_sale["id"]}]}).json()
    assert api.post(f"/_local/stripe/checkout/{made['checkout_session_id']}/pay",
                    json={"outcome": "succeeded"}).status_code == 202
    # Then the revenue report and the funnel count it, through the webhook, the payments
    # queue, the outbox and the analytics queue
    assert eventually(lambda: gross() == before + 2500), (gross(), before)
    assert eventually(lambda: funnel_paid() == paid_before + 1)
