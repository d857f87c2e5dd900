"""The local stack under 50 concurrent clients: every connection is accepted (a real listen
backlog, not socketserver's 5) and moto's DynamoDB, which races on concurrent transactions,
never turns one into a 500. Each client is a writer: it registers, signs in, opens a checkout
and writes its profile, all at once."""
from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.flows import PASSWORD

pytestmark = pytest.mark.e2e

CLIENTS = 50


def test_fifty_concurrent_writers_get_no_reset_and_no_5xx(api, stack):
    catalog = api.get("/resources?limit=1").json()["items"]
    assert catalog, "the local stack seeds published resources"
    resource_id = catalog[0]["id"]
    start = threading.Barrier(CLIENTS)
    run = uuid.uuid4().hex[:8]

    def writer(n: int) -> list[tuple[str, int]]:
        email = f"crowd-{run}-{n}@paidres.example.com"
        seen = []
        with requests.Session() as http:
            def call(method: str, path: str, **kw) -> requests.Response:
                reply = http.request(method, stack.base_url + path, timeout=60, **kw)
                seen.append((f"{method} {path}", reply.status_code))
                return reply

            start.wait(timeout=60)
            call("POST", "/auth/register", json={"email": email, "password": PASSWORD,
                                                 "display_name": f"客户 {n}"})
            token = call("POST", "/auth/login", json={"email": email, "password": PASSWORD})
            auth = {"Authorization": f"Bearer {token.json().get('access_token')}"}
            call("POST", "/checkout", headers=auth,
                 json={"items": [{"resource_id": resource_id}]})
            call("PATCH", "/me", headers=auth, json={"display_name": f"客户 {n} 改"})
        return seen

    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(writer, n) for n in range(CLIENTS)]
        errors = [f.exception() for f in futures if f.exception() is not None]
        assert not errors, f"{len(errors)} clients failed, e.g. {errors[0]!r}"
        replies = [r for f in futures for r in f.result()]
    assert len(replies) == 4 * CLIENTS
    wrong = [r for r in replies if r[1] >= 500 or r[1] not in (200, 201)]
    assert not wrong, wrong[:10]
    log = stack.log()
    assert "Traceback" not in log, log[log.find("Traceback") - 300:][:4000]
