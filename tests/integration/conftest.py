from __future__ import annotations

import pytest

from tests.support import PDF_BYTES, Api, drain, post_form


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

    return EventPump(module.app, module, settings().region, retry_delay_seconds=0)


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
