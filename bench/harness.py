"""Shared set-up for the benchmarks: the embedded moto server with every resource of
infra/resources.yaml, the stage's secrets, the demo catalog, and a buyer who owns a resource.
Child processes (cold starts) get `child_env()` and talk to the same server."""
from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass
class Harness:
    endpoint: str
    server: object
    buyer_id: str
    token: str
    owned_resource_id: str
    paid_resource_id: str
    creator_id: str
    admin_id: str

    def child_env(self) -> dict[str, str]:
        """The environment a fresh process needs to act as the deployed function here."""
        env = {k: v for k, v in os.environ.items()}
        env["AWS_ENDPOINT_URL"] = self.endpoint
        return env

    def stop(self) -> None:
        self.server.stop()

    def fresh_token(self) -> str:
        """The buyer's token, or a new one with the same roles when it would expire during
        a run (the harness may have been started long before, by bench/run.py)."""
        import jwt

        claims = jwt.decode(self.token, options={"verify_signature": False})
        if claims["exp"] - time.time() > 600:
            return self.token
        from chalicelib.accounts import tokens

        return tokens.issue_access_token(self.buyer_id, claims["roles"], claims["epoch"])[0]


def api_event(method: str, resource: str, path: str, token: str, agent: str,
              path_parameters: dict | None = None, extra_context: dict | None = None) -> dict:
    """The event the deployed HTTP API sends (payload format 1.0) for an authenticated request
    without a body: the stage in both paths, the matched route in `resourceId`."""
    headers = {"accept": "application/json", "authorization": f"Bearer {token}",
               "host": "api.example.com", "user-agent": agent}
    if method != "GET":
        headers["content-type"] = "application/json"
    return {
        "version": "1.0",
        "resource": resource, "path": f"/api{path}", "httpMethod": method, "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters, "stageVariables": None, "body": None,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": resource, "httpMethod": method, "path": f"/api{path}",
            "stage": "api", "requestId": str(uuid.uuid4()), "accountId": "123456789012",
            "resourceId": f"{method} {resource}", "apiId": "bench",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": agent},
            **(extra_context or {}),
        },
    }


def start(overrides: dict[str, str] | None = None) -> Harness:
    """Start moto, create the resources, seed the demo data and a buyer with an entitlement."""
    from devstack import stage

    stage.apply("local", {"POWERTOOLS_METRICS_DISABLED": "true",
                          "STRIPE_WEBHOOK_SECRET": "whsec_bench", **(overrides or {})})
    import logging

    import moto  # noqa: F401  (before any boto3 client)
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL"] = endpoint

    from chalicelib.accounts import admin, keys, profiles, registration, tokens
    from chalicelib.catalog.store import ResourceRecord
    from chalicelib.config import settings
    from chalicelib.payments import checkout
    from devstack.provision import provision
    from devstack.stack import seed_admin, seed_demo

    cfg = settings()
    provision(cfg.stage, cfg.region)
    keys.install(keys.new_secrets_document())
    _, admin_id = seed_admin()
    seed_demo(admin_id)
    creator = profiles.get_user(admin.list_users(1, None, None,
                                                "creator@paidres.local").items[0].id)
    published = list(ResourceRecord.by_creator.query(f"CREATOR#{creator.user_id}"))
    free = next(r for r in published if int(r.price_amount) == 0)
    paid = next(r for r in published if int(r.price_amount) > 0)
    buyer = registration.register("bench-buyer@paidres.local", "bench buyer passphrase",
                                  "Bench buyer")
    checkout.checkout(buyer.user_id, buyer.email, [free.resource_id], None, None, 0)
    token, _ = tokens.issue_access_token(buyer.user_id, buyer.roles, buyer.session_epoch)
    return Harness(endpoint, server, buyer.user_id, token, free.resource_id, paid.resource_id,
                   creator.user_id, admin_id)


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out
