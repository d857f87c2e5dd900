from __future__ import annotations

import pytest

from tests.support import PDF_BYTES, Api, drain, post_form, publish, take_webhooks


@pytest.fixture
def client(aws):
    """Chalice's test client over the real app, on moto."""
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="local") as c:
        yield c


@pytest.fixture
def api(client) -> Api:
    return Api(client)


@pytest.fixture
def pump(aws):
    """The local stack's event pump over in-process moto: queued events reach the app's own
    handlers exactly as on the local stack."""
    import app as module
    from chalicelib.config import settings
    from devstack.pump import EventPump

    pump = EventPump(module.app, module, settings().region, retry_delay_seconds=0)
    # Wired now, as the local stack wires it at start: the uploads bucket invokes
    # upload_events directly, and its local stand-in queue must exist before any upload.
    pump.sources()
    return pump


@pytest.fixture
def catalog(aws):
    """The default category tree."""
    from chalicelib.catalog import categories
    from chalicelib.catalog.seed import seed_categories

    categories.forget()
    seed_categories()
    yield
    categories.forget()


@pytest.fixture
def creator(api, catalog):
    return api.creator_session()


@pytest.fixture
def admin(api):
    return api.admin_session()


@pytest.fixture
def stripe(aws, monkeypatch):
    """The local Stripe stand-in, with the app's Stripe client pointed at it. Webhook
    deliveries are collected so a test chooses when (and in which order) they arrive."""
    from chalicelib.config import settings
    from chalicelib.payments import gateway
    from devstack.stripe_standin import StripeStandIn
    from tests.conftest import WEBHOOK_SECRETS

    inbox: list[tuple[bytes, str]] = []
    standin = StripeStandIn(WEBHOOK_SECRETS[0], lambda body, sig: inbox.append((body, sig)))
    monkeypatch.setenv("STRIPE_API_BASE", standin.start())
    settings.cache_clear()
    # Read now: the test client re-applies the stage's variables around each request.
    assert settings().stripe_api_base == standin.base_url
    gateway.forget()
    standin.inbox = inbox
    yield standin
    standin.stop()
    monkeypatch.undo()
    settings.cache_clear()
    gateway.forget()


@pytest.fixture
def publisher(api, catalog, pump):
    """Publishes resources through the real flow: draft, upload to S3, check, review."""
    from chalicelib.catalog import moderation, resources
    from chalicelib.catalog.schemas import Money, ResourceIn

    creator, _ = api.creator_session()
    admin, _ = api.admin_session()

    def publish(title: str, description: str = "", tags: tuple[str, ...] = (),
                category: str = "data", check: bool = True) -> str:
        body = ResourceIn(title=title, description=description, category=category,
                          price=Money(amount=100, currency="cny"), kind="ebook",
                          tags=list(tags))
        resource = resources.create(creator["id"], "Tester", body)
        form = resources.create_upload(creator["id"], resource.id, "a.pdf", "application/pdf",
                                       len(PDF_BYTES), "file")
        post_form({"url": form.url, "fields": form.fields}, PDF_BYTES)
        if check:
            drain(pump)
        return resource.id

    def approve_all(ids: list[str]) -> None:
        drain(pump, rounds=len(ids) + 5)
        for resource_id in ids:
            resources.submit(creator["id"], resource_id)
            moderation.approve(admin["id"], resource_id)

    publish.approve_all = approve_all
    return publish


@pytest.fixture
def shop(api, creator, admin, pump, stripe):
    """A published paid resource, a buyer, and helpers to buy it."""
    _, creator_pair = creator
    admin_token = admin[1]["access_token"]
    resource = publish(api, pump, creator_pair["access_token"], admin_token)
    buyer, buyer_pair = api.user_session()

    class Shop:
        pass

    s = Shop()
    s.resource, s.buyer, s.admin_token = resource, buyer, admin_token
    s.token = buyer_pair["access_token"]
    s.creator_token = creator_pair["access_token"]

    def checkout(items=None, token=None):
        reply = api.post("/checkout", {"items": [{"resource_id": r} for r in
                                                 (items or [resource["id"]])]},
                         token=token or s.token)
        assert reply.status == 201, reply.body
        return reply.body

    def pay(outcome="succeeded", delayed=False, token=None):
        made = checkout(token=token)
        stripe.pay(made["checkout_session_id"], outcome, delayed)
        return made, take_webhooks(stripe)

    def order(order_id, token=None):
        return api.get(f"/me/orders/{order_id}", token=token or s.token).body["order"]

    def library(token=None):
        return [i["resource"]["id"] for i in api.get("/me/library", token=token or s.token)
                .body["items"]]

    def download(token=None):
        return api.post(f"/me/library/{resource['id']}/download", token=token or s.token)

    s.checkout, s.pay, s.order, s.library, s.download = checkout, pay, order, library, download
    return s
