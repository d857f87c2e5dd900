"""Every presigned request the API hands out is Signature Version 4, and holds when checked
by an independent verifier (tests/sigv4.py, not botocore): moto accepts any signature, any
expiry and any violated policy, so what moto lets through proves nothing here."""
from __future__ import annotations

import base64
import json
import os
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from tests import sigv4
from tests.support import PNG_BYTES, new_draft, publish, upload

FREE = {"amount": 0, "currency": "cny"}


@pytest.fixture
def secret(aws) -> str:
    """The secret key the app signs with: moto's fake one while it is active."""
    return os.environ["AWS_SECRET_ACCESS_KEY"]


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def assert_sigv4_link(url: str, max_seconds: int) -> dict[str, str]:
    params = query(url)
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert params["X-Amz-Credential"].endswith("/us-east-1/s3/aws4_request")
    assert 0 < int(params["X-Amz-Expires"]) <= max_seconds
    assert not {"AWSAccessKeyId", "Signature", "Expires"} & set(params)
    return params


def test_a_download_link_is_sigv4_for_at_most_five_minutes_and_verifies(api, creator, admin,
                                                                       pump, secret):
    _, pair = creator
    free = publish(api, pump, pair["access_token"], admin[1]["access_token"], price=FREE)
    _, buyer = api.user_session()
    assert api.post("/checkout", {"items": [{"resource_id": free["id"]}]},
                    token=buyer["access_token"]).status == 201
    url = api.post(f"/me/library/{free['id']}/download",
                   token=buyer["access_token"]).body["url"]
    params = assert_sigv4_link(url, 300)
    signed_at = time.mktime(time.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ")) - \
        time.timezone
    sigv4.verify_url(url, secret)
    expired = signed_at + int(params["X-Amz-Expires"]) + 1
    with pytest.raises(sigv4.Refused, match="AccessDenied"):
        sigv4.verify_url(url, secret, now=expired)
    other_key = url.replace("/creators/", "/creators-x/", 1)
    with pytest.raises(sigv4.Refused, match="SignatureDoesNotMatch"):
        sigv4.verify_url(other_key, secret)
    with pytest.raises(sigv4.Refused, match="SignatureDoesNotMatch"):
        sigv4.verify_url(url, secret, method="PUT")


def test_an_upload_form_is_sigv4_and_its_policy_refuses_what_it_should(api, creator, secret):
    _, pair = creator
    resource = new_draft(api, pair["access_token"])
    form = api.post(f"/creator/resources/{resource['id']}/uploads",
                    {"filename": "书.pdf", "content_type": "application/pdf", "size": 5000},
                    token=pair["access_token"]).body
    fields = form["fields"]
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert fields["x-amz-credential"].endswith("/us-east-1/s3/aws4_request")
    assert {"x-amz-date", "x-amz-signature", "policy"} <= set(fields)
    assert not {"AWSAccessKeyId", "signature"} & set(fields)
    conditions = json.loads(base64.b64decode(fields["policy"]))["conditions"]
    for name in ("x-amz-algorithm", "x-amz-credential", "x-amz-date"):
        assert {name: fields[name]} in conditions
    # The browser sends the form's fields and the file: that is what S3 would store.
    url = form["url"]
    assert sigv4.verify_post(url, fields, 5000, secret)
    refused = {
        "bigger than declared": (fields, 5001),
        "another type": ({**fields, "Content-Type": "text/html"}, 5000),
        "another key": ({**fields, "key": fields["key"] + ".exe"}, 5000),
        "no encryption": ({k: v for k, v in fields.items()
                           if k != "x-amz-server-side-encryption"}, 5000),
        "an extra field": ({**fields, "acl": "public-read"}, 5000),
        "a forged policy": ({**fields, "policy": base64.b64encode(json.dumps({
            "expiration": "2099-01-01T00:00:00Z", "conditions": []}).encode()).decode()}, 5000),
    }
    for why, (sent, size) in refused.items():
        with pytest.raises(sigv4.Refused):
            sigv4.verify_post(url, sent, size, secret)
            pytest.fail(f"{why} was not refused")
    with pytest.raises(sigv4.Refused, match="Policy expired"):
        sigv4.verify_post(url, fields, 5000, secret, now=time.time() + 15 * 60 + 5)


def test_multipart_part_urls_are_sigv4_puts_of_their_own_part(api, creator, secret):
    _, pair = creator
    resource = new_draft(api, pair["access_token"], kind="video")
    form = api.post(f"/creator/resources/{resource['id']}/uploads",
                    {"filename": "course.mp4", "content_type": "video/mp4",
                     "size": 300 * 1024 * 1024}, token=pair["access_token"]).body
    assert form["method"] == "multipart"
    for part in form["parts"]:
        assert_sigv4_link(part["url"], 900)
        sigv4.verify_url(part["url"], secret, method="PUT")
    first = form["parts"][0]["url"]
    with pytest.raises(sigv4.Refused, match="SignatureDoesNotMatch"):
        sigv4.verify_url(first.replace("partNumber=1", "partNumber=2"), secret, method="PUT")


def test_a_cover_link_is_sigv4(api, creator, admin, pump, secret):
    _, pair = creator
    token = pair["access_token"]
    resource = publish(api, pump, token, admin[1]["access_token"])
    upload(api, pump, token, resource["id"], data=PNG_BYTES, content_type="image/png",
           purpose="cover", filename="cover.png")
    cover = api.get(f"/resources/{resource['id']}").body["resource"]["cover_url"]
    assert_sigv4_link(cover, 3600)
    sigv4.verify_url(cover, secret)
