"""Access-token signing keys: Ed25519 (EdDSA), identified by `kid`, kept in the stage's secrets
document (`chalicelib.vault`).

Rotation keeps two keys valid: `rotate` adds a new key and makes it the signer while the old
one still verifies tokens already issued; `retire` drops every key but the signer once the
old tokens have expired (15 minutes later at most). JWKS publishes every key in the set.

    STAGE=prod python -m devstack.keys init|rotate|retire     # the operator's command line
    STAGE=prod STRIPE_SECRET_KEY=sk_live_... STRIPE_WEBHOOK_SECRET=whsec_...[,whsec_old] \
        python -m devstack.keys stripe

`stripe` stores the Stripe API key and webhook signing secrets in the same document, where a
deployed stage reads them (the template and the repository never hold them).
"""
from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib import vault

ALGORITHM = "EdDSA"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_key() -> dict[str, str]:
    """A fresh Ed25519 key entry for the secrets document."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return {"kid": f"{stamp}-{secrets.token_hex(4)}", "private_pem": pem,
            "created_at": datetime.now(UTC).isoformat()}


def new_secrets_document() -> dict[str, Any]:
    """A complete secrets document with one signing key and a cursor key."""
    key = new_key()
    return {"jwt": {"active_kid": key["kid"], "keys": [key]},
            "cursor_key": _b64(secrets.token_bytes(32))}


@dataclass(frozen=True)
class KeySet:
    active_kid: str
    private: Any
    public_by_kid: dict[str, Any]
    jwks: dict[str, Any]


_lock = threading.Lock()
# Holds the document itself (not its id) so a new document can never be mistaken for it.
_parsed: tuple[dict, KeySet] | None = None


def keyset() -> KeySet:
    """The parsed key set of the current secrets document (parsed once per document)."""
    global _parsed
    doc = vault.load()
    current = _parsed
    if current is not None and current[0] is doc:
        return current[1]
    from cryptography.hazmat.primitives import serialization

    with _lock:
        jwt_doc = doc["jwt"]
        public_by_kid: dict[str, Any] = {}
        jwks = []
        private_active = None
        for entry in jwt_doc["keys"]:
            private = serialization.load_pem_private_key(entry["private_pem"].encode(), None)
            public = private.public_key()
            public_by_kid[entry["kid"]] = public
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            jwks.append({"kty": "OKP", "crv": "Ed25519", "x": _b64(raw), "kid": entry["kid"],
                         "alg": ALGORITHM, "use": "sig"})
            if entry["kid"] == jwt_doc["active_kid"]:
                private_active = private
        if private_active is None:
            raise RuntimeError("the active signing key is not in the key set")
        parsed = KeySet(jwt_doc["active_kid"], private_active, public_by_kid, {"keys": jwks})
        _parsed = (doc, parsed)
        return parsed


@dataclass(frozen=True)
class Verifying:
    """What verifying a token needs: public keys only, never a secret."""

    public_by_kid: dict[str, Any]
    jwks: dict[str, Any]


_published: tuple[float, Verifying] | None = None
# A token signed with a key this process has not seen yet (a rotation within the cache
# time) triggers a fresh read, but not more often than this.
REFRESH_UNKNOWN_KID_SECONDS = 10


def install(doc: dict[str, Any]) -> None:
    """Store a secrets document and publish its public keys for verification."""
    from chalicelib.accounts import store

    vault.store(doc)
    store.publish_keys(keyset().jwks)
    forget_published()


def forget_published() -> None:
    global _published
    _published = None


def verifying_keys(kid: str | None = None) -> Verifying:
    """The published public keys (one GetItem, cached like the secrets). Verification reads
    these instead of the secrets document, so checking a token loads no SSM client and
    touches nothing secret."""
    global _published
    import time

    from chalicelib.config import settings

    now = time.monotonic()
    current = _published
    if current is not None:
        fresh = now - current[0] < settings().secrets_cache_seconds
        unknown = kid is not None and kid not in current[1].public_by_kid \
            and now - current[0] > REFRESH_UNKNOWN_KID_SECONDS
        if fresh and not unknown:
            return current[1]
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from chalicelib.accounts import store

    jwks = store.published_keys()
    public = {jwk["kid"]: Ed25519PublicKey.from_public_bytes(
        base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4)))
        for jwk in jwks["keys"]}
    verifying = Verifying(public, jwks)
    _published = (now, verifying)
    return verifying


def rotate(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of `doc` with a new signing key; the previous keys still verify."""
    key = new_key()
    jwt_doc = doc["jwt"]
    return {**doc, "jwt": {"active_kid": key["kid"], "keys": [*jwt_doc["keys"], key]}}


def retire(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of `doc` keeping only the signing key."""
    jwt_doc = doc["jwt"]
    keep = [k for k in jwt_doc["keys"] if k["kid"] == jwt_doc["active_kid"]]
    return {**doc, "jwt": {"active_kid": jwt_doc["active_kid"], "keys": keep}}
