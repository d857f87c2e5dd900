"""Helpers shared by the tests (a plain module: conftest files are not for importing)."""
from __future__ import annotations

import inspect
import json
import uuid
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
    the test that caused it."""
    from botocore.client import BaseClient

    original = BaseClient._make_api_call
    if hasattr(original, "scans"):
        return

    def guarded(self, operation_name, api_params):
        if operation_name == "Scan":
            frames = [f.filename for f in inspect.stack(context=0)]
            culprit = next((f for f in frames if f.startswith(APP_CODE)), None)
            if culprit:
                guarded.scans.append(f"Scan of {api_params.get('TableName')} from {culprit}")
        return original(self, operation_name, api_params)

    guarded.scans = []
    BaseClient._make_api_call = guarded


def scans_from_app_code() -> list[str]:
    from botocore.client import BaseClient

    return BaseClient._make_api_call.scans

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
        from chalicelib.accounts import service

        email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
        record = service.ensure_admin(email, PASSWORD, "Admin")
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
