from __future__ import annotations

import pytest

from tests.support import Api


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
    from chalicelib.local.pump import EventPump

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
