"""Stripe webhook signature verification (Stripe's scheme, on the raw body)."""
from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from chalicelib.payments.webhooks import BadSignature, verify

SECRETS = ("whsec_current", "whsec_previous")
BODY = b'{"id": "evt_1", "type": "checkout.session.completed"}'


def sign(body: bytes, secret: str, at: int | None = None) -> str:
    at = at or int(time.time())
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def test_a_correct_signature_is_accepted():
    verify(BODY, sign(BODY, "whsec_current"), SECRETS)


def test_the_previous_secret_still_verifies_during_a_rotation():
    verify(BODY, sign(BODY, "whsec_previous"), SECRETS)


def test_any_of_several_v1_signatures_may_match():
    header = sign(BODY, "whsec_current")
    at, good = header.split(",")
    verify(BODY, f"{at},v1={'0' * 64},{good},v0=abc", SECRETS)


@pytest.mark.parametrize("header", [None, "", "t=123", "v1=abc", "garbage", "t=x,v1=abc"])
def test_missing_or_malformed_headers_are_refused(header):
    with pytest.raises(BadSignature):
        verify(BODY, header, SECRETS)


def test_a_wrong_secret_is_refused():
    with pytest.raises(BadSignature):
        verify(BODY, sign(BODY, "whsec_attacker"), SECRETS)


def test_a_changed_body_is_refused():
    with pytest.raises(BadSignature):
        verify(BODY.replace(b"evt_1", b"evt_2"), sign(BODY, "whsec_current"), SECRETS)


def test_a_signature_older_than_five_minutes_is_refused():
    with pytest.raises(BadSignature) as refused:
        verify(BODY, sign(BODY, "whsec_current", int(time.time()) - 301), SECRETS)
    assert refused.value.code == "signature_expired"
