"""Access-token issue and verification, and the attacks verification must refuse."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest

from chalicelib.accounts import keys, tokens
from chalicelib.config import settings


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict, claims: dict, signature: bytes = b"") -> str:
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims).encode())
    return f"{head}.{body}.{b64(signature)}"


def good_claims(**over) -> dict:
    cfg = settings()
    now = int(time.time())
    claims = {"iss": cfg.jwt_issuer, "aud": cfg.jwt_audience, "sub": "user-1",
              "roles": ["buyer"], "epoch": 0, "iat": now, "nbf": now, "exp": now + 300,
              "jti": "j1"}
    claims.update(over)
    return claims


def sign(claims: dict, kid: str | None = None, private=None) -> str:
    ks = keys.keyset()
    return jwt.encode(claims, private or ks.private, algorithm="EdDSA",
                      headers={"kid": kid or ks.active_kid})


def sign_with_header(claims: dict, **header) -> str:
    """Signed with the active key by hand: PyJWT refuses to make some headers (a `crit`)."""
    ks = keys.keyset()
    unsigned = forge({"alg": "EdDSA", "typ": "JWT", "kid": ks.active_kid, **header},
                     claims).rsplit(".", 1)[0]
    return f"{unsigned}.{b64(ks.private.sign(unsigned.encode()))}"


def test_an_issued_token_verifies_and_carries_every_required_claim(aws):
    token, ttl = tokens.issue_access_token("user-1", {"buyer", "creator"}, 0)
    claims = tokens.verify_access_token(token)
    assert ttl <= 900 and claims["exp"] - claims["iat"] == ttl
    assert claims["sub"] == "user-1" and claims["roles"] == ["buyer", "creator"]
    assert set(tokens.REQUIRED_CLAIMS) <= set(claims)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA" and header["kid"] == keys.keyset().active_kid


def test_alg_none_is_refused(aws):
    token = forge({"alg": "none", "typ": "JWT", "kid": keys.keyset().active_kid}, good_claims())
    with pytest.raises(tokens.InvalidToken):
        tokens.verify_access_token(token)


def test_hs256_signed_with_the_public_key_is_refused(aws):
    from cryptography.hazmat.primitives import serialization

    ks = keys.keyset()
    public_pem = ks.public_by_kid[ks.active_kid].public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = {"alg": "HS256", "typ": "JWT", "kid": ks.active_kid}
    unsigned = forge(header, good_claims()).rsplit(".", 1)[0]
    mac = hmac.new(public_pem, unsigned.encode(), hashlib.sha256).digest()
    with pytest.raises(tokens.InvalidToken):
        tokens.verify_access_token(f"{unsigned}.{b64(mac)}")


def test_an_expired_token_is_refused(aws):
    token, _ = tokens.issue_access_token("user-1", {"buyer"}, 0, now=time.time() - 3600)
    with pytest.raises(tokens.InvalidToken) as refused:
        tokens.verify_access_token(token)
    assert refused.value.code == "token_expired"


@pytest.mark.parametrize("claim,value", [("aud", "someone-else"), ("iss", "evil-issuer")])
def test_a_wrong_audience_or_issuer_is_refused(aws, claim, value):
    with pytest.raises(tokens.InvalidToken):
        tokens.verify_access_token(sign(good_claims(**{claim: value})))


@pytest.mark.parametrize("missing", tokens.REQUIRED_CLAIMS)
def test_a_token_missing_a_required_claim_is_refused(aws, missing):
    claims = good_claims()
    del claims[missing]
    with pytest.raises(tokens.InvalidToken):
        tokens.verify_access_token(sign(claims))


def test_an_unknown_kid_is_refused_even_with_a_valid_signature_of_that_key(aws):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    with pytest.raises(tokens.InvalidToken):
        tokens.verify_access_token(sign(good_claims(), kid="attacker",
                                        private=Ed25519PrivateKey.generate()))


def test_a_tampered_payload_is_refused(aws):
    token, _ = tokens.issue_access_token("user-1", {"buyer"}, 0)
    head, _, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["roles"] = ["buyer", "admin"]
    tampered = f"{head}.{b64(json.dumps(claims).encode())}.{signature}"
    with pytest.raises(tokens.InvalidToken):
        tokens.verify_access_token(tampered)


def test_roles_must_be_a_list_of_strings(aws):
    with pytest.raises(tokens.InvalidToken):
        tokens.verify_access_token(sign(good_claims(roles="admin")))


def test_rotation_keeps_old_tokens_valid_and_publishes_both_keys(aws):
    from chalicelib import vault

    old_token, _ = tokens.issue_access_token("user-1", {"buyer"}, 0)
    old_kid = keys.keyset().active_kid
    keys.install(keys.rotate(vault.load()))
    new_token, _ = tokens.issue_access_token("user-1", {"buyer"}, 0)
    assert jwt.get_unverified_header(new_token)["kid"] != old_kid
    assert tokens.verify_access_token(old_token)["sub"] == "user-1"
    assert tokens.verify_access_token(new_token)["sub"] == "user-1"
    assert len(keys.keyset().jwks["keys"]) == 2
    keys.install(keys.retire(vault.load()))
    with pytest.raises(tokens.InvalidToken):
        tokens.verify_access_token(old_token)
    assert tokens.verify_access_token(new_token)["sub"] == "user-1"


def test_jwks_public_keys_verify_issued_tokens(aws):
    token, _ = tokens.issue_access_token("user-1", {"buyer"}, 0)
    jwk = next(k for k in keys.keyset().jwks["keys"]
               if k["kid"] == jwt.get_unverified_header(token)["kid"])
    assert "d" not in jwk
    public = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, public, algorithms=["EdDSA"], audience=settings().jwt_audience)
    assert claims["sub"] == "user-1"


def test_opaque_tokens_are_random_and_stored_as_sha256(aws):
    a, b = tokens.new_opaque_token(), tokens.new_opaque_token()
    assert a != b and len(a) >= 43
    assert tokens.digest(a) == hashlib.sha256(a.encode()).hexdigest()


def test_a_token_issued_in_the_future_is_refused(aws):
    token, _ = tokens.issue_access_token("user-1", {"buyer"}, 0, now=time.time() + 3600)
    with pytest.raises(tokens.InvalidToken):
        tokens.verify_access_token(token)


def test_a_token_pyjwt_signs_with_the_active_key_is_accepted(aws):
    claims = good_claims(roles=["buyer", "creator"])
    assert tokens.verify_access_token(sign(claims))["roles"] == ["buyer", "creator"]


@pytest.mark.parametrize("garbage", ["", "a.b", "a.b.c.d", "!!!.e30.sig", "e30.e30.e30",
                                     "W10.e30.AAAA"])
def test_malformed_tokens_are_refused(aws, garbage):
    with pytest.raises(tokens.InvalidToken):
        tokens.verify_access_token(garbage)


def test_a_validly_signed_token_not_yet_valid_is_refused(aws):
    now = int(time.time())
    with pytest.raises(tokens.InvalidToken):
        tokens.verify_access_token(sign(good_claims(nbf=now + 3600)))


def test_a_token_without_nbf_is_refused(aws):
    claims = good_claims()
    del claims["nbf"]
    with pytest.raises(tokens.InvalidToken):
        tokens.verify_access_token(sign(claims))


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_clock_skew_is_forgiven_up_to_30_seconds_and_no_more(aws, claim):
    now = int(time.time())
    assert tokens.LEEWAY_SECONDS <= 30
    assert tokens.verify_access_token(sign(good_claims(**{claim: now + tokens.LEEWAY_SECONDS})),
                                      now=now)
    with pytest.raises(tokens.InvalidToken):
        tokens.verify_access_token(sign(good_claims(**{claim: now + 31})), now=now)


def test_an_expired_token_past_the_leeway_is_refused(aws):
    now = int(time.time())
    with pytest.raises(tokens.InvalidToken):
        tokens.verify_access_token(sign(good_claims(iat=now - 600, nbf=now - 600, exp=now - 31)),
                                   now=now)


@pytest.mark.parametrize("crit", [["exp"], ["x-unknown"], "b64", []])
def test_a_crit_header_is_refused_since_no_extension_is_understood(aws, crit):
    # RFC 7515 4.1.11: a recipient that does not understand a listed extension must reject.
    token = sign_with_header(good_claims(), crit=crit)
    assert tokens.verify_access_token(sign_with_header(good_claims()))
    with pytest.raises(tokens.InvalidToken):
        tokens.verify_access_token(token)


def test_issued_tokens_carry_nbf_equal_to_iat(aws):
    token, _ = tokens.issue_access_token("user-1", {"buyer"}, 0)
    claims = tokens.verify_access_token(token)
    assert claims["nbf"] == claims["iat"]
