"""Warm in-process latency of the download route (`POST /me/library/{id}/download` through the
Chalice app, as Lambda invokes it) against a bare Lambda-style handler making the same AWS
calls with raw boto3 against the same moto server: one consistent GetItem (the session check
every authenticated request makes), one BatchGetItem (entitlement and resource),
one TransactWriteItems (count the download, log it) and a presigned GET. A second bare variant
also verifies the access token the way the app does (PyJWT, EdDSA), for context: the route
must do that, a handler behind an API Gateway authorizer would not. The three are run in turn,
so drift on a busy machine reaches all of them alike."""
from __future__ import annotations

import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

try:  # as bench/run.py and `python bench/<name>.py` import it: bench/ is on sys.path
    from harness import Harness, api_event, start
except ImportError:  # python -m bench.<name>
    from bench.harness import Harness, api_event, start

TARGET = 1.3
LOG_DAYS = 400  # as chalicelib.payments.library, so the bare item is the same size


def download_event(resource_id: str, token: str, user_id: str) -> dict:
    """API Gateway's event for an authenticated download. The authorizer claims are what a
    bare handler behind an API Gateway authorizer would read; the app ignores them and
    verifies the bearer token itself."""
    return api_event("POST", "/me/library/{resource_id}/download",
                     f"/me/library/{resource_id}/download", token, "bench/warm",
                     {"resource_id": resource_id},
                     {"authorizer": {"claims": {"sub": user_id}}})


def _context(name: str) -> Any:
    from chalice.local import LambdaContext

    return LambdaContext(function_name=name, memory_size=1024, max_runtime_ms=30_000)


class BareDownload:
    """The download as a plain Lambda handler: the route's AWS calls with raw boto3, clients
    built once per process as any warm handler keeps them."""

    def __init__(self, verify_token: bool) -> None:
        import boto3
        from botocore.config import Config

        from chalicelib.accounts import keys
        from chalicelib.config import settings

        self.cfg = cfg = settings()
        session = boto3.session.Session()
        self.dynamodb = session.client("dynamodb", region_name=cfg.region,
                                       endpoint_url=cfg.aws_endpoint_url)
        # Signed as the app signs (SigV4): the comparison is of the framework, not the signature.
        self.s3 = session.client("s3", region_name=cfg.region, endpoint_url=cfg.aws_endpoint_url,
                                 config=Config(signature_version="s3v4",
                                               s3={"addressing_style": "path"}))
        self.verify_token = verify_token
        # The parsed public keys, as the app caches them between requests.
        self.public_by_kid = keys.keyset().public_by_kid

    def _user_id(self, event: dict) -> str:
        if not self.verify_token:
            return event["requestContext"]["authorizer"]["claims"]["sub"]
        import jwt

        token = event["headers"]["authorization"].partition(" ")[2]
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, key=self.public_by_kid[header["kid"]], algorithms=["EdDSA"],
                            audience=self.cfg.jwt_audience, issuer=self.cfg.jwt_issuer,
                            options={"require": ["iss", "aud", "sub", "roles", "exp", "iat",
                                                 "nbf", "jti"]}, leeway=5)
        return claims["sub"]

    def _session(self, user_id: str) -> None:
        """The route's session check (chalicelib.accounts.sessions), as a bare handler would
        make it: one consistent GetItem."""
        self.dynamodb.get_item(
            TableName=self.cfg.users_table,
            Key={"pk": {"S": f"USER#{user_id}"}, "sk": {"S": "PROFILE"}}, ConsistentRead=True,
            ProjectionExpression="#status, #roles, session_epoch",
            ExpressionAttributeNames={"#status": "status", "#roles": "roles"})

    def __call__(self, event: dict, context: Any) -> dict:
        cfg = self.cfg
        user_id = self._user_id(event)
        self._session(user_id)
        resource_id = event["pathParameters"]["resource_id"]
        ent_key = {"pk": {"S": f"ENT#{user_id}"}, "sk": {"S": f"RES#{resource_id}"}}
        pending = {cfg.orders_table: {"Keys": [ent_key]},
                   cfg.catalog_table: {"Keys": [{"pk": {"S": f"RES#{resource_id}"},
                                                 "sk": {"S": "META"}}]}}
        found: dict[str, list] = {cfg.orders_table: [], cfg.catalog_table: []}
        while pending:
            reply = self.dynamodb.batch_get_item(RequestItems=pending)
            for table, items in reply.get("Responses", {}).items():
                found[table].extend(items)
            pending = reply.get("UnprocessedKeys") or {}
        if not found[cfg.orders_table] or not found[cfg.catalog_table]:
            return {"statusCode": 404, "body": '{"error": "not_entitled"}'}
        ent, resource = found[cfg.orders_table][0], found[cfg.catalog_table][0]
        if ent["status"]["S"] != "active" or "M" not in resource.get("live_file", {}):
            return {"statusCode": 403, "body": '{"error": "no_access"}'}
        live = resource["live_file"]["M"]
        condition, values = "#st = :active", {":active": {"S": "active"}, ":one": {"N": "1"}}
        if "N" in resource.get("download_cap", {}):
            condition += " AND #dl < :cap"
            values[":cap"] = resource["download_cap"]
        now = time.time()
        at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        self.dynamodb.transact_write_items(TransactItems=[
            {"Update": {"TableName": cfg.orders_table, "Key": ent_key,
                        "UpdateExpression": "ADD #dl :one", "ConditionExpression": condition,
                        "ExpressionAttributeNames": {"#st": "status", "#dl": "downloads"},
                        "ExpressionAttributeValues": values}},
            {"Put": {"TableName": cfg.orders_table, "Item": {
                "pk": {"S": f"DL#{user_id}#{resource_id}"},
                "sk": {"S": f"{at}#{uuid.uuid4().hex[:8]}"},
                "source_ip": {"S": event["requestContext"]["identity"]["sourceIp"]},
                "file_version": live["version"],
                "expires_at": {"N": str(int(now) + LOG_DAYS * 86400)},
                "flagged": {"BOOL": False}}}},
        ])
        filename = live["filename"]["S"]
        params = {"Bucket": cfg.uploads_bucket, "Key": live["key"]["S"],
                  "ResponseContentDisposition": f'attachment; filename="{filename}"; '
                                                f"filename*=UTF-8''{quote(filename)}"}
        if "S" in live.get("version_id", {}):
            params["VersionId"] = live["version_id"]["S"]
        seconds = cfg.download_url_seconds
        url = self.s3.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + seconds))
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"url": url, "expires_at": expires, "filename": filename,
                                    "version": int(live["version"]["N"])})}


def _stats(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000.0 for s in seconds)
    return {"median_ms": round(statistics.median(ms), 2),
            "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 2),
            "min_ms": round(ms[0], 2)}


def run(h: Harness, warmup: int = 20, repeat: int = 200) -> dict:
    """Medians and p90s of the route and both bare handlers, and the ratios."""
    import app
    from chalicelib.config import settings

    token = h.fresh_token()
    event = download_event(h.owned_resource_id, token, h.buyer_id)
    function = f"{app.app.app_name}-{settings().stage}"
    bare, bare_jwt = BareDownload(verify_token=False), BareDownload(verify_token=True)

    def check(reply: dict) -> None:
        if reply["statusCode"] != 200 or '"url"' not in reply["body"]:
            raise RuntimeError(f"download failed: {reply}")

    calls: dict[str, Callable[[], dict]] = {
        "route": lambda: app.app(event, _context(function)),
        "bare": lambda: bare(event, _context(function)),
        "bare_jwt": lambda: bare_jwt(event, _context(function)),
    }
    for _ in range(warmup):
        for call in calls.values():
            check(call())
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeat):
        for name, call in calls.items():
            started = time.perf_counter()
            reply = call()
            times[name].append(time.perf_counter() - started)
            check(reply)
    stats = {name: _stats(t) for name, t in times.items()}
    route = stats["route"]["median_ms"]
    return {"warmup": warmup, "repeat": repeat, "target": TARGET, **stats,
            "ratio": round(route / stats["bare"]["median_ms"], 2),
            "ratio_with_jwt": round(route / stats["bare_jwt"]["median_ms"], 2)}


def report(result: dict) -> str:
    """The figures as printed, and as bench/run.py writes them into docs/BENCHMARKS.md."""
    r, b, j = result["route"], result["bare"], result["bare_jwt"]
    verdict = "ok" if result["ratio"] <= result["target"] else f"over {result['target']}x"
    intro = (f"{result['repeat']} measured calls of each after {result['warmup']} warm-up calls,"
             " interleaved, in one process with the moto server; every call is a real"
             " BatchGetItem and TransactWriteItems on moto, so moto's own time is in all three."
             f" Target <= {result['target']}x.")
    return intro + "\n\n```text\n" + "\n".join([
        f"warm download: {result['ratio']:.2f}x bare boto3 (median {r['median_ms']:.2f} ms vs "
        f"{b['median_ms']:.2f} ms; p90 {r['p90_ms']:.2f} vs {b['p90_ms']:.2f} ms; the route adds "
        f"{r['median_ms'] - b['median_ms']:+.2f} ms) [{verdict}]",
        f"warm download: {result['ratio_with_jwt']:.2f}x bare boto3 + JWT verification (median "
        f"{r['median_ms']:.2f} ms vs {j['median_ms']:.2f} ms; p90 {r['p90_ms']:.2f} vs "
        f"{j['p90_ms']:.2f} ms)",
    ]) + "\n```"


if __name__ == "__main__":
    harness = start()
    try:
        print(report(run(harness, *(int(a) for a in sys.argv[1:3]))))
    finally:
        harness.stop()
