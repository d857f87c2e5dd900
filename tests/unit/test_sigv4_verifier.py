"""The independent SigV4 verifier (tests/sigv4.py) against AWS's own published example, and
what it refuses: the checks the presigned-request tests rely on must themselves be right."""
from __future__ import annotations

import pytest

from tests import sigv4

# "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)", Amazon S3 API
# Reference: the example presigned GET of examplebucket/test.txt and the signature AWS gives.
AWS_EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_EXAMPLE_URL = (
    "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
SIGNED_AT = 1369353600  # 2013-05-24T00:00:00Z


def test_awss_published_example_verifies_within_its_day():
    params = sigv4.verify_url(AWS_EXAMPLE_URL, AWS_EXAMPLE_SECRET, now=SIGNED_AT + 86400)
    assert params["X-Amz-Expires"] == "86400"


def test_the_example_is_refused_once_it_has_expired():
    with pytest.raises(sigv4.Refused) as refused:
        sigv4.verify_url(AWS_EXAMPLE_URL, AWS_EXAMPLE_SECRET, now=SIGNED_AT + 86401)
    assert refused.value.code == "AccessDenied"


@pytest.mark.parametrize("change", [
    ("/test.txt", "/test2.txt"),          # another object
    ("examplebucket", "otherbucket"),     # another bucket
    ("X-Amz-Expires=86400", "X-Amz-Expires=86399"),
    ("Signature=aeee", "Signature=beee"),
])
def test_any_change_to_the_signed_request_is_a_signature_mismatch(change):
    with pytest.raises(sigv4.Refused) as refused:
        sigv4.verify_url(AWS_EXAMPLE_URL.replace(*change), AWS_EXAMPLE_SECRET,
                         now=SIGNED_AT + 10)
    assert refused.value.code == "SignatureDoesNotMatch"


def test_another_secret_or_method_does_not_verify():
    for secret, method in ((AWS_EXAMPLE_SECRET[:-1] + "X", "GET"), (AWS_EXAMPLE_SECRET, "PUT")):
        with pytest.raises(sigv4.Refused, match="SignatureDoesNotMatch"):
            sigv4.verify_url(AWS_EXAMPLE_URL, secret, method=method, now=SIGNED_AT + 10)


def test_a_signature_version_2_link_is_refused():
    url = ("https://examplebucket.s3.amazonaws.com/test.txt?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE"
           "&Signature=vjbyPxybdZaNmGa%2ByT272YEAiv4%3D&Expires=1175139620")
    with pytest.raises(sigv4.Refused) as refused:
        sigv4.verify_url(url, AWS_EXAMPLE_SECRET)
    assert refused.value.code == "InvalidRequest"


def test_a_post_policy_signed_with_the_derived_key_verifies_and_its_conditions_hold():
    import base64
    import hashlib
    import hmac
    import json

    scope = sigv4.Scope("AKIAIOSFODNN7EXAMPLE", "20151229", "us-east-1", "s3")
    policy = base64.b64encode(json.dumps({
        "expiration": "2015-12-30T12:00:00.000Z",
        "conditions": [{"bucket": "sigv4examplebucket"}, ["starts-with", "$key", "user/user1/"],
                       ["content-length-range", 1, 10],
                       {"x-amz-credential": "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/"
                                            "aws4_request"},
                       {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
                       {"x-amz-date": "20151229T000000Z"}]}).encode()).decode()
    fields = {"key": "user/user1/a.txt", "policy": policy,
              "x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-date": "20151229T000000Z",
              "x-amz-credential": "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request",
              "x-amz-signature": hmac.new(sigv4.signing_key(AWS_EXAMPLE_SECRET, scope),
                                          policy.encode(), hashlib.sha256).hexdigest()}
    url, before = "https://sigv4examplebucket.s3.amazonaws.com/", 1451390400
    assert sigv4.verify_post(url, fields, 5, AWS_EXAMPLE_SECRET, now=before)
    refusals = [
        ({**fields, "key": "user/user2/a.txt"}, 5, "AccessDenied"),
        ({**fields, "x-amz-meta-extra": "1"}, 5, "AccessDenied"),
        (fields, 11, "EntityTooLarge"),
        ({**fields, "x-amz-signature": "0" * 64}, 5, "SignatureDoesNotMatch"),
    ]
    for form, size, code in refusals:
        with pytest.raises(sigv4.Refused) as refused:
            sigv4.verify_post(url, form, size, AWS_EXAMPLE_SECRET, now=before)
        assert refused.value.code == code
    with pytest.raises(sigv4.Refused, match="Policy expired"):
        sigv4.verify_post(url, fields, 5, AWS_EXAMPLE_SECRET, now=before + 2 * 86400)
