"""The catalog on the local stack over real HTTP: seeded demo data, a creator's file POSTed
to the embedded S3 through the presigned form and checked by the upload-events handler via
the event pump, review, and search finding the publish at once."""
from __future__ import annotations

import hashlib
import time
import uuid

import pytest
import requests

from tests.support import PDF_BYTES, PNG_BYTES

pytestmark = pytest.mark.e2e
PASSWORD = "correct-horse-battery-9"


def token_for(api, email: str, password: str = PASSWORD) -> dict:
    reply = api.post("/auth/login", json={"email": email, "password": password})
    assert reply.status_code == 200, reply.text
    return reply.json()


def new_creator(api) -> str:
    email = f"maker-{uuid.uuid4().hex[:10]}@paidres.example.com"
    assert api.post("/auth/register", json={"email": email, "password": PASSWORD,
                                            "display_name": "小王"}).status_code == 201
    pair = token_for(api, email)
    auth = {"Authorization": f"Bearer {pair['access_token']}"}
    assert api.post("/me/creator", headers=auth).status_code == 200
    pair = api.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}).json()
    return pair["access_token"]


def wait_for(check, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def send_file(api, token: str, resource_id: str, data: bytes, content_type: str) -> dict:
    auth = {"Authorization": f"Bearer {token}"}
    form = api.post(f"/creator/resources/{resource_id}/uploads", headers=auth,
                    json={"filename": "第一册.pdf", "content_type": content_type,
                          "size": len(data)}).json()
    posted = requests.post(form["url"], data=form["fields"],
                           files={"file": ("第一册.pdf", data)}, timeout=30)
    assert posted.status_code in (200, 201, 204), posted.text

    def checked():
        file = api.get(f"/creator/resources/{resource_id}", headers=auth).json()[
            "resource"]["file"]
        return file if file["status"] in ("verified", "rejected") else None

    file = wait_for(checked)
    assert file, "the upload was not checked through the event pump"
    return file


def test_the_demo_catalog_is_seeded(api):
    tree = api.get("/categories").json()["items"]
    tech = next(c for c in tree if c["slug"] == "tech")
    assert {c["slug"] for c in tech["children"]} >= {"programming", "data"}
    titles = {r["title"] for r in api.get("/resources?limit=100").json()["items"]}
    assert "Python数据分析实战" in titles


def test_a_file_posted_to_s3_is_verified_reviewed_and_findable_at_once(api, stack):
    token = new_creator(api)
    auth = {"Authorization": f"Bearer {token}"}
    title = f"机器学习速成 {uuid.uuid4().hex[:6]}"
    resource = api.post("/creator/resources", headers=auth, json={
        "title": title, "description": "从零开始", "price": {"amount": 1999, "currency": "cny"},
        "category": "programming", "tags": ["ML"], "kind": "ebook"}).json()["resource"]
    file = send_file(api, token, resource["id"], PDF_BYTES, "application/pdf")
    assert file["status"] == "verified"
    assert file["sha256"] == hashlib.sha256(PDF_BYTES).hexdigest()
    assert api.post(f"/creator/resources/{resource['id']}/submit", headers=auth
                    ).status_code == 200
    admin = token_for(api, stack.admin_email, stack.admin_password)["access_token"]
    approved = api.post(f"/admin/resources/{resource['id']}/approve",
                        headers={"Authorization": f"Bearer {admin}"})
    assert approved.status_code == 200
    started = time.monotonic()
    found = wait_for(lambda: [r for r in api.get("/search", params={"q": title}).json()[
        "items"] if r["id"] == resource["id"]], seconds=5)
    assert found and time.monotonic() - started < 5
    public = api.get(f"/resources/{resource['id']}").json()["resource"]
    assert public["file"]["filename"] == "第一册.pdf" and "key" not in public["file"]


def test_a_png_declared_as_pdf_is_rejected_by_the_check(api):
    token = new_creator(api)
    auth = {"Authorization": f"Bearer {token}"}
    resource = api.post("/creator/resources", headers=auth, json={
        "title": "伪装的文件", "description": "", "price": {"amount": 0, "currency": "cny"},
        "category": "data", "kind": "file"}).json()["resource"]
    file = send_file(api, token, resource["id"], PNG_BYTES, "application/pdf")
    assert file["status"] == "rejected" and "image/png" in file["reason"]
    submitted = api.post(f"/creator/resources/{resource['id']}/submit", headers=auth)
    assert submitted.status_code == 409
    assert submitted.json()["error"]["code"] == "file_not_verified"
