"""Uploads and downloads through an S3 that refuses what AWS's refuses (LocalStack's, with
signature validation on), with the rest of the local stack on moto: the storage itself turns
away an expired link, an altered key, a file over the policy's size, a wrong content type and
a part URL used for another part. moto accepts all of those, so only this proves them.
Every request is SigV4 too: LocalStack, like S3 for buckets made before June 2020, would still
accept SigV2, which S3 refuses for every bucket made since.

LocalStack does not check the signature of a POST policy: tests/integration/
test_presigned_sigv4.py checks it with an independent verifier (docs/testing.md)."""
from __future__ import annotations

import hashlib
import time
import uuid

import pytest
import requests

from tests.e2e.conftest import api_session
from tests.e2e.flows import PASSWORD, new_creator, send_file, token_for
from tests.support import eventually

pytestmark = pytest.mark.e2e

SIGV4 = "AWS4-HMAC-SHA256"
BOOK = b"%PDF-1.7\n% real S3 " + uuid.uuid4().hex.encode() + b"\n%%EOF\n"


@pytest.fixture(scope="module")
def api(real_s3_stack):
    """The API of the stack whose S3 is LocalStack's (this module's, not the session's)."""
    with api_session(real_s3_stack.base_url, timeout=20) as session:
        yield session


@pytest.fixture(scope="module")
def creator(api):
    token = new_creator(api)
    return token, {"Authorization": f"Bearer {token}"}


def draft(api, auth, kind="ebook", price=0) -> dict:
    return api.post("/creator/resources", headers=auth, json={
        "title": "真实 S3", "description": "", "price": {"amount": price, "currency": "cny"},
        "category": "data", "kind": kind}).json()["resource"]


def upload_form(api, auth, resource_id, size, content_type="application/pdf") -> dict:
    reply = api.post(f"/creator/resources/{resource_id}/uploads", headers=auth,
                     json={"filename": "书.pdf", "content_type": content_type, "size": size})
    assert reply.status_code == 201, reply.text
    form = reply.json()
    if form["method"] == "post":
        assert form["fields"]["x-amz-algorithm"] == SIGV4
    for part in form.get("parts") or []:
        assert f"X-Amz-Algorithm={SIGV4}" in part["url"]
    return form


def post(form: dict, data: bytes, **changed: str) -> requests.Response:
    return requests.post(form["url"], data={**form["fields"], **changed},
                         files={"file": ("书.pdf", data)}, timeout=30)


def error_code(reply: requests.Response) -> str:
    import re

    found = re.search(r"<Code>([^<]+)</Code>", reply.text)
    return found[1] if found else reply.text[:200]


def test_a_form_upload_is_stored_by_the_real_s3_and_checked_through_its_notification(
        api, creator, real_s3_stack):
    token, auth = creator
    resource = draft(api, auth)
    form = upload_form(api, auth, resource["id"], len(BOOK))
    assert form["url"].startswith(real_s3_stack.log().split("S3 (elsewhere):")[1].split()[0])
    file = send_file(api, token, resource["id"], BOOK, "application/pdf")
    assert file["status"] == "verified"
    assert file["sha256"] == hashlib.sha256(BOOK).hexdigest()


@pytest.mark.parametrize("what, sent, changed, status, code", [
    ("one byte more than declared", BOOK + b"x", {}, 400, "EntityTooLarge"),
    ("another content type", BOOK, {"Content-Type": "text/html"}, 403, "AccessDenied"),
    ("another key", BOOK, {"key": "creators/someone-else/evil.pdf"}, 403, "AccessDenied"),
    ("no encryption header", BOOK, {"x-amz-server-side-encryption": "aws:kms"}, 403,
     "AccessDenied"),
])
def test_the_storage_refuses_a_post_its_policy_does_not_allow(api, creator, what, sent,
                                                             changed, status, code):
    _, auth = creator
    form = upload_form(api, auth, draft(api, auth)["id"], len(BOOK))
    refused = post(form, sent, **changed)
    assert (refused.status_code, error_code(refused)) == (status, code), what
    assert post(form, BOOK).status_code == 204, "the form itself is good"


def test_a_multipart_upload_through_part_urls_is_assembled_and_a_part_url_is_its_part_only(
        api, creator):
    token, auth = creator
    resource = draft(api, auth, kind="video")
    data = BOOK + b"\n%" + b"0" * (6 * 1024 * 1024)
    form = upload_form(api, auth, resource["id"], len(data))
    assert form["method"] == "multipart"
    first = form["parts"][0]
    stolen = requests.put(first["url"].replace("partNumber=1", "partNumber=2"),
                          data=b"x", timeout=30)
    assert (stolen.status_code, error_code(stolen)) == (403, "SignatureDoesNotMatch")
    etags = []
    for part in form["parts"]:
        start = (part["part_number"] - 1) * form["part_size"]
        sent = requests.put(part["url"], data=data[start:start + form["part_size"]],
                            timeout=60)
        assert sent.status_code == 200, sent.text
        etags.append({"part_number": part["part_number"], "etag": sent.headers["ETag"]})
    done = api.post(f"/creator/resources/{resource['id']}/uploads/{form['upload_id']}/complete",
                    headers=auth, json={"parts": etags})
    assert done.status_code == 202, done.text

    def checked():
        file = api.get(f"/creator/resources/{resource['id']}", headers=auth).json()[
            "resource"]["file"]
        return file if file["status"] in ("verified", "rejected") else None

    file = eventually(checked, timeout=30)
    assert file and file["status"] == "verified"
    assert file["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def bought(api, creator, real_s3_stack):
    """A free resource on sale, its file on the real S3, and a buyer who owns it."""
    token, auth = creator
    resource = draft(api, auth)
    assert send_file(api, token, resource["id"], BOOK, "application/pdf")["status"] == \
        "verified"
    api.post(f"/creator/resources/{resource['id']}/submit", headers=auth)
    admin = token_for(api, real_s3_stack.admin_email, real_s3_stack.admin_password)
    assert api.post(f"/admin/resources/{resource['id']}/approve", headers={
        "Authorization": f"Bearer {admin['access_token']}"}).status_code == 200
    email = f"buyer-{uuid.uuid4().hex[:10]}@paidres.example.com"
    api.post("/auth/register", json={"email": email, "password": PASSWORD,
                                     "display_name": "买家"})
    buyer = {"Authorization": f"Bearer {token_for(api, email)['access_token']}"}
    made = api.post("/checkout", headers=buyer, json={"items": [{"resource_id": resource["id"]}]})
    assert made.status_code == 201 and made.json()["order"]["status"] == "paid"
    return resource, buyer


def download_link(api, bought) -> str:
    resource, buyer = bought
    reply = api.post(f"/me/library/{resource['id']}/download", headers=buyer)
    assert reply.status_code == 200, reply.text
    url = reply.json()["url"]
    assert f"X-Amz-Algorithm={SIGV4}" in url
    return url


def test_a_download_link_serves_the_file_until_it_expires_then_the_storage_refuses_it(
        api, bought):
    url = download_link(api, bought)
    issued = time.monotonic()
    fetched = requests.get(url, timeout=30)
    assert fetched.status_code == 200 and fetched.content == BOOK
    assert "attachment" in fetched.headers["Content-Disposition"]
    time.sleep(max(0.0, issued + 5 + 1.5 - time.monotonic()))
    expired = requests.get(url, timeout=30)
    assert (expired.status_code, error_code(expired)) == (403, "AccessDenied")
    assert "expired" in expired.text


def test_a_download_link_with_another_key_or_method_is_refused_by_the_storage(api, bought):
    url = download_link(api, bought)
    path, query = url.split("?", 1)
    other = requests.get(path.rsplit("/", 1)[0] + "/other.pdf?" + query, timeout=30)
    assert (other.status_code, error_code(other)) == (403, "SignatureDoesNotMatch")
    overwrite = requests.put(url, data=b"replaced", timeout=30)
    assert (overwrite.status_code, error_code(overwrite)) == (403, "SignatureDoesNotMatch")
    assert requests.get(url, timeout=30).content == BOOK


def test_the_bucket_lets_the_storefront_origin_upload_and_no_other(api, creator):
    _, auth = creator
    form = upload_form(api, auth, draft(api, auth)["id"], len(BOOK))
    asked = {"Access-Control-Request-Method": "POST"}
    allowed = requests.options(form["url"], headers={**asked, "Origin": "http://127.0.0.1:8000"},
                               timeout=30)
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8000"
    other = requests.options(form["url"], headers={**asked, "Origin": "https://evil.example"},
                             timeout=30)
    assert other.status_code == 403
