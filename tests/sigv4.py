"""An independent check of what S3 checks in a presigned request: AWS Signature Version 4 for
query-string (presigned URL) and browser POST (policy) authentication, written from AWS's
published algorithm with hashlib and hmac only. botocore made the signatures under test, so
none of its code is used here; `tests/unit/test_sigv4_verifier.py` holds this verifier to
AWS's own published example.

A refusal raises `Refused` with S3's error code, so a test can say what S3 would answer.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from calendar import timegm
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_EXPIRES = 7 * 24 * 3600  # S3 refuses a presigned URL valid longer than a week


class Refused(Exception):
    """What S3 would answer instead of serving the request."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True)
class Scope:
    access_key: str
    date: str
    region: str
    service: str

    @classmethod
    def parse(cls, credential: str) -> Scope:
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise Refused("AuthorizationQueryParametersError", f"bad credential {credential!r}")
        return cls(*parts[:4])


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, scope: Scope) -> bytes:
    key = _hmac(("AWS4" + secret).encode("utf-8"), scope.date)
    for part in (scope.region, scope.service, "aws4_request"):
        key = _hmac(key, part)
    return key


def _encode(value: str, safe: str = "") -> str:
    # RFC 3986 unreserved characters stay; everything else is percent-encoded, UTF-8.
    return quote(value, safe="-_.~" + safe)


def _epoch(amz_date: str) -> int:
    return timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))


def verify_url(url: str, secret: str, method: str = "GET", now: float | None = None) -> dict:
    """Check a presigned URL as S3 does; returns its X-Amz-* parameters when S3 would serve it."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False)
    params = dict(query)
    if "Signature" in params or "AWSAccessKeyId" in params:
        raise Refused("InvalidRequest", "Signature Version 2 is not accepted")
    if params.get("X-Amz-Algorithm") != ALGORITHM:
        raise Refused("AuthorizationQueryParametersError", "X-Amz-Algorithm must be "
                      f"{ALGORITHM}, got {params.get('X-Amz-Algorithm')!r}")
    for name in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
                 "X-Amz-Signature"):
        if name not in params:
            raise Refused("AuthorizationQueryParametersError", f"{name} is missing")
    scope = Scope.parse(params["X-Amz-Credential"])
    amz_date = params["X-Amz-Date"]
    if scope.date != amz_date[:8] or scope.service != "s3":
        raise Refused("AuthorizationQueryParametersError", "credential scope does not match")
    expires = int(params["X-Amz-Expires"])
    if not 1 <= expires <= MAX_EXPIRES:
        raise Refused("AuthorizationQueryParametersError", f"X-Amz-Expires {expires}")
    if (time.time() if now is None else now) > _epoch(amz_date) + expires:
        raise Refused("AccessDenied", "Request has expired")
    signed_headers = params["X-Amz-SignedHeaders"].split(";")
    if signed_headers != ["host"]:
        raise Refused("AccessDenied", f"only host is signed by a link, got {signed_headers}")

    canonical_query = "&".join(sorted(
        f"{_encode(k)}={_encode(v)}" for k, v in query if k != "X-Amz-Signature"))
    # Each path segment URI-encoded once, slashes kept (S3 does not double-encode).
    canonical_request = "\n".join([
        method, _encode(unquote(parts.path or "/"), safe="/"), canonical_query,
        f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD"])
    string_to_sign = "\n".join([
        ALGORITHM, amz_date, f"{scope.date}/{scope.region}/{scope.service}/aws4_request",
        hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()])
    expected = hmac.new(signing_key(secret, scope), string_to_sign.encode("utf-8"),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
        raise Refused("SignatureDoesNotMatch", "the signature does not match")
    return {k: v for k, v in params.items() if k.startswith("X-Amz-")}


def verify_post(url: str, fields: dict[str, str], file_size: int, secret: str,
                now: float | None = None) -> dict:
    """Check a browser POST upload (the form's fields, as a browser sends them, and the size
    of the file) as S3 does; returns the decoded policy when S3 would store the file."""
    lowered = {k.lower(): v for k, v in fields.items()}
    if "signature" in lowered or "awsaccesskeyid" in lowered:
        raise Refused("InvalidRequest", "Signature Version 2 is not accepted")
    if lowered.get("x-amz-algorithm") != ALGORITHM:
        raise Refused("InvalidArgument", "x-amz-algorithm must be " + ALGORITHM)
    for name in ("x-amz-credential", "x-amz-date", "x-amz-signature", "policy"):
        if name not in lowered:
            raise Refused("InvalidArgument", f"{name} is missing")
    scope = Scope.parse(lowered["x-amz-credential"])
    if scope.date != lowered["x-amz-date"][:8] or scope.service != "s3":
        raise Refused("InvalidArgument", "credential scope does not match")
    expected = hmac.new(signing_key(secret, scope), lowered["policy"].encode("utf-8"),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, lowered["x-amz-signature"]):
        raise Refused("SignatureDoesNotMatch", "the policy signature does not match")

    policy = json.loads(base64.b64decode(lowered["policy"]))
    expiration = timegm(time.strptime(policy["expiration"][:19], "%Y-%m-%dT%H:%M:%S"))
    if (time.time() if now is None else now) > expiration:
        raise Refused("AccessDenied", "Invalid according to Policy: Policy expired.")

    parts = urlsplit(url)
    path = parts.path.strip("/")
    # Path style: /bucket; virtual-hosted: bucket.s3.region.amazonaws.com/
    bucket = path.split("/", 1)[0] if path else parts.netloc.split(".s3.", 1)[0]
    form = {**lowered, "bucket": bucket}
    covered = {"x-amz-signature", "policy", "file", "bucket"}
    for condition in policy["conditions"]:
        if isinstance(condition, dict):
            ((name, value),) = condition.items()
            op, name = "eq", name.lower()
        elif condition[0] == "content-length-range":
            _, low, high = condition
            if not low <= file_size <= high:
                code = "EntityTooLarge" if file_size > high else "EntityTooSmall"
                raise Refused(code, f"{file_size} bytes is outside [{low}, {high}]")
            continue
        else:
            op, name, value = condition[0].lower(), condition[1].lstrip("$").lower(), \
                condition[2]
        covered.add(name)
        actual = form.get(name)
        ok = actual == value if op == "eq" else \
            actual is not None and actual.startswith(value) if op == "starts-with" else False
        if not ok:
            raise Refused("AccessDenied", f"Invalid according to Policy: Policy Condition "
                          f"failed: [{op!r}, '${name}', {value!r}] (got {actual!r})")
    extra = sorted(name for name in form if name not in covered
                   and not name.startswith("x-ignore-"))
    if extra:
        raise Refused("AccessDenied", "Invalid according to Policy: Extra input fields: "
                      + ", ".join(extra))
    return policy
