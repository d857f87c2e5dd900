"""Helpers shared by the tests (a plain module: conftest files are not for importing)."""
from __future__ import annotations

import inspect
import json
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "tests" / "events"
APP_CODE = (str(ROOT / "chalicelib"), str(ROOT / "app.py"))


def load_event(name: str) -> dict:
    """A Lambda event from tests/events/."""
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def install_scan_guard() -> None:
    """Every AWS call goes through BaseClient._make_api_call (PynamoDB's too). A DynamoDB Scan
    whose call stack passes through the application's code is recorded, so a fixture can fail
    the test that caused it; inside `operations_made()` every operation's name is kept."""
    from botocore.client import BaseClient

    original = BaseClient._make_api_call
    if hasattr(original, "scans"):
        return

    def guarded(self, operation_name, api_params):
        if guarded.operations is not None:
            guarded.operations.append(operation_name)
        if operation_name == "Scan":
            frames = [f.filename for f in inspect.stack(context=0)]
            culprit = next((f for f in frames if f.startswith(APP_CODE)), None)
            if culprit:
                guarded.scans.append(f"Scan of {api_params.get('TableName')} from {culprit}")
        return original(self, operation_name, api_params)

    guarded.scans = []
    guarded.operations = None
    BaseClient._make_api_call = guarded


def scans_from_app_code() -> list[str]:
    from botocore.client import BaseClient

    return BaseClient._make_api_call.scans


@contextmanager
def operations_made():
    """`with operations_made() as ops:` lists the AWS operations made inside the block."""
    from botocore.client import BaseClient

    guard = BaseClient._make_api_call
    guard.operations = []
    try:
        yield guard.operations
    finally:
        guard.operations = None

def eventually(probe, timeout: float = 10.0, interval: float = 0.2):
    """The first truthy result of `probe()` within `timeout` seconds, else its last result."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(interval)


PASSWORD = "correct horse battery staple"


@dataclass
class Reply:
    status: int
    headers: dict
    body: Any


class Api:
    """Chalice's test client with JSON in and out, so tests read like HTTP sessions."""

    def __init__(self, client) -> None:
        self.client = client

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             headers: dict | None = None, raw: str | bytes | None = None) -> Reply:
        sent = {"Content-Type": "application/json"}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
        response = getattr(self.client.http, method.lower())(path, headers=sent, body=payload)
        text = response.body.decode() if isinstance(response.body, bytes) else response.body
        parsed = json.loads(text) if text else None
        return Reply(response.status_code, dict(response.headers), parsed)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body, **kw)

    def register(self, email: str | None = None, password: str = PASSWORD,
                 name: str = "Tester") -> dict:
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
        reply = self.post("/auth/register", {"email": email, "password": password,
                                             "display_name": name})
        assert reply.status == 201, reply.body
        return reply.body["user"]

    def login(self, email: str, password: str = PASSWORD) -> dict:
        reply = self.post("/auth/login", {"email": email, "password": password})
        assert reply.status == 200, reply.body
        return reply.body

    def user_session(self, **kw) -> tuple[dict, dict]:
        user = self.register(**kw)
        return user, self.login(user["email"], kw.get("password", PASSWORD))

    def creator_session(self, **kw) -> tuple[dict, dict]:
        """A new user granted the creator role (auto-approval is on locally), with a token
        pair that carries it."""
        user, pair = self.user_session(**kw)
        assert self.post("/me/creator", token=pair["access_token"]).status == 200
        pair = self.post("/auth/refresh", {"refresh_token": pair["refresh_token"]}).body
        return user, pair

    def admin_session(self) -> tuple[dict, dict]:
        from chalicelib.accounts import registration

        email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
        record = registration.ensure_admin(email, PASSWORD, "Admin")
        return {"id": record.user_id, "email": email}, self.login(email)


def assert_envelope(reply: Reply, status: int, code: str | None = None) -> dict:
    assert reply.status == status, (reply.status, reply.body)
    assert set(reply.body) == {"error"}, reply.body
    error = reply.body["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["message"], str) and error["message"]
    if code:
        assert error["code"] == code, error
    return error


# A minimal valid PDF and PNG: real magic bytes, so the upload checks accept or refuse them.
PDF_BYTES = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
             b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
PNG_BYTES = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01"
             b"\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f"
             b"\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


def post_form(form: dict, data: bytes, filename: str = "upload.bin"):
    """Send a file the way a browser does with a presigned POST: multipart/form-data, the
    policy fields first and the file last."""
    import requests

    return requests.post(form["url"], data=form["fields"],
                         files={"file": (filename, data)}, timeout=30)


def drain(pump, rounds: int = 5) -> None:
    """Deliver queued events until the queues are quiet."""
    for _ in range(rounds):
        if pump.poll_once() == 0:
            return


DRAFT = {"title": "Python数据分析实战", "description": "用 **pandas** 做数据分析。",
         "price": {"amount": 4900, "currency": "cny"}, "category": "data",
         "tags": ["Python", "数据"], "kind": "ebook"}


def new_draft(api, token, **over) -> dict:
    reply = api.post("/creator/resources", {**DRAFT, **over}, token=token)
    assert reply.status == 201, reply.body
    return reply.body["resource"]


def upload(api, pump, token, resource_id, data=PDF_BYTES, content_type="application/pdf",
           purpose="file", filename="book.pdf") -> dict:
    reply = api.post(f"/creator/resources/{resource_id}/uploads",
                     {"filename": filename, "content_type": content_type, "size": len(data),
                      "purpose": purpose}, token=token)
    assert reply.status == 201, reply.body
    form = reply.body
    assert post_form(form, data, filename).status_code in (200, 201, 204)
    drain(pump)
    return form


def publish(api, pump, creator_token, admin_token, **over) -> dict:
    resource = new_draft(api, creator_token, **over)
    upload(api, pump, creator_token, resource["id"])
    assert api.post(f"/creator/resources/{resource['id']}/submit", token=creator_token
                    ).status == 200
    reply = api.post(f"/admin/resources/{resource['id']}/approve", token=admin_token)
    assert reply.status == 200, reply.body
    return reply.body["resource"]


def take_webhooks(standin) -> list[tuple[bytes, str]]:
    """The signed deliveries the stand-in has made so far (and forget them)."""
    assert standin.flush(10)
    taken = list(standin.inbox)
    standin.inbox.clear()
    return taken


def post_webhooks(api, deliveries, pump=None) -> list[Reply]:
    """Deliver signed events to the webhook route as Stripe would; then, with a pump, let the
    payments consumer process them."""
    replies = [api.post("/webhooks/stripe", raw=body,
                        headers={"Stripe-Signature": signature}) for body, signature in deliveries]
    if pump is not None:
        drain(pump, rounds=10)
    return replies


def fixture_object(name: str) -> dict:
    """A real-shaped Stripe object from ../shared/fixtures/stripe/."""
    path = ROOT.parent / "shared" / "fixtures" / "stripe" / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def signed_event(event_type: str, obj: dict, secret: str, event_id: str | None = None,
                 at: int | None = None) -> tuple[bytes, str]:
    """A Stripe event around `obj` on the fixture envelope, signed the way Stripe signs."""
    import hashlib
    import hmac
    import time

    event = fixture_object("event")
    event.update(id=event_id or f"evt_{uuid.uuid4().hex[:24]}", type=event_type,
                 created=int(time.time()), data={"object": obj})
    body = json.dumps(event).encode()
    at = at or int(time.time())
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={at},v1={mac}"


def publish_one(publisher, title, **kw) -> str:
    """Publish one resource through the `publisher` fixture (draft, upload, review)."""
    resource_id = publisher(title, **kw)
    publisher.approve_all([resource_id])
    return resource_id
