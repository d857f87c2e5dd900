"""The catalog on the local stack over real HTTP: seeded demo data, a creator's file POSTed
to the embedded S3 through the presigned form and checked by the upload-events handler via
the event pump, review, and search finding the publish at once."""
from __future__ import annotations

import hashlib
import time
import uuid

import pytest

from tests.e2e.flows import new_creator, send_file, token_for
from tests.support import PDF_BYTES, PNG_BYTES, eventually

pytestmark = pytest.mark.e2e
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
    found = eventually(lambda: [r for r in api.get("/search", params={"q": title}).json()[
        "items"] if r["id"] == resource["id"]], timeout=5)
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
