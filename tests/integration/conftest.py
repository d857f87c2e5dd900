from __future__ import annotations

import pytest


@pytest.fixture
def client(aws):
    """Chalice's test client over the real app, on moto."""
    from chalice.test import Client

    from app import app

    with Client(app) as c:
        yield c
