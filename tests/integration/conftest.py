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
