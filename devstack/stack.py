"""The whole platform on one machine: embedded AWS (moto server), the resources of
`infra/resources.yaml`, seeded accounts, the API over HTTP and the event pump.

    python -m devstack.stack        # `make run`

Environment: API_HOST (127.0.0.1), API_PORT (8000), MOTO_PORT (a free port),
LOCAL_ADMIN_EMAIL / LOCAL_ADMIN_PASSWORD (generated when unset), STRIPE_WEBHOOK_SECRET
(generated when unset; events are signed with the first of a comma-separated list),
STRIPE_PORT (the local Stripe stand-in's port; a free one when unset), STRIPE_SECRET_KEY
(sk_test_local when unset), PUMP_RETRY_DELAY_SECONDS (failed messages come back after this
many seconds instead of the queue's visibility timeout), LOCAL_STACK_FILE (where the stack
says where its pieces are; `.local/stack.json`, which the make targets read, when unset),
AWS_ENDPOINT_URL_<SERVICE> (one service on another endpoint than moto). The app talks to the
local Stripe stand-in (`devstack.stripe_standin`) through STRIPE_API_BASE, always set
to it; the stand-in signs its events and posts them to `<API URL>/webhooks/stripe`.
Everything lives in memory and is gone when the process ends. The last line printed is
`Ready: <API URL>`.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack import stage

STAGE = "local"
DEFAULT_ADMIN_EMAIL = "admin@paidres.local"
log = logging.getLogger("devstack.stack")  # __name__ is __main__ under -m


@dataclass(frozen=True)
class Account:
    label: str
    email: str
    password: str


def _password() -> str:
    return secrets.token_urlsafe(18)


def _int_env(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else None


RUNTIME = Path(os.environ.get("LOCAL_STACK_FILE") or stage.ROOT / ".local" / "stack.json")


def write_runtime(info: dict) -> None:
    """Where the running stack's pieces are, for the make targets that act on it
    (`make reconcile`, `make payments-dlq`)."""
    RUNTIME.parent.mkdir(exist_ok=True)
    RUNTIME.write_text(json.dumps(info, indent=2), encoding="utf-8")


def seed_admin() -> tuple[Account, str]:
    """The local admin, from LOCAL_ADMIN_EMAIL / LOCAL_ADMIN_PASSWORD or generated; with the
    admin's user id."""
    from chalicelib.accounts import registration

    email = os.environ.get("LOCAL_ADMIN_EMAIL") or DEFAULT_ADMIN_EMAIL
    password = os.environ.get("LOCAL_ADMIN_PASSWORD") or _password()
    user = registration.ensure_admin(email, password, "Local admin")
    return Account("Admin", user.email, password), user.user_id


def seed_demo(admin_id: str) -> list[Account]:
    """Demo data for trying the platform by hand: a creator and a buyer, the category tree
    and a few published resources. Later features add their demo records here."""
    from chalicelib.accounts import registration
    from chalicelib.catalog.seed import seed_categories, seed_demo_catalog

    accounts, users = [], []
    for email, name, roles in (
            ("creator@paidres.local", "Demo creator", frozenset({"buyer", "creator"})),
            ("buyer@paidres.local", "Demo buyer", frozenset({"buyer"}))):
        password = _password()
        user = registration.register(email, password, name, roles=roles)
        accounts.append(Account(name, user.email, password))
        users.append(user)
    seed_categories()
    seed_demo_catalog(users[0].user_id, users[0].display_name, admin_id)
    from chalicelib.config import settings
    from chalicelib.memberships import plans

    # 会员 and 高级会员, with their Prices in the stand-in when one is running
    plans.seed(with_stripe=bool(settings().stripe_api_base))
    return accounts


class Stack:
    """The running pieces. Stopping begins with the API (no new work), then the pump, and
    moto last, which the other two call."""

    def __init__(self) -> None:
        self.moto: Any = None
        self.server: Any = None
        self.server_thread: threading.Thread | None = None
        self.pump: Any = None
        self.stripe: Any = None

    def start_moto(self, port: int) -> str:
        """Start the embedded moto server; returns its endpoint URL."""
        from moto.server import ThreadedMotoServer

        serialise_moto_dynamodb()

        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.moto.start()
        host, bound = self.moto.get_host_and_port()
        return f"http://{host}:{bound}"

    def start_stripe(self, webhook_secret: str, api_url: str, host: str, port: int) -> str:
        """Start the Stripe stand-in, delivering signed events to the API's webhook route;
        returns its base URL (also where its payment pages live)."""
        from devstack import stripe_standin

        signing_secret = webhook_secret.split(",")[0].strip()
        self.stripe = stripe_standin.StripeStandIn(
            signing_secret, stripe_standin.http_deliverer(f"{api_url}/webhooks/stripe"))
        url = self.stripe.start(host, port)
        stripe_standin.register(self.stripe)
        return url

    def start_api(self, host: str, port: int) -> Any:
        """Serve the app over HTTP from a background thread; returns the chalice Config."""
        from app import app
        from devstack.gateway import chalice_config, make_server

        config = chalice_config(STAGE, str(stage.ROOT), str(stage.CONFIG))
        self.server = make_server(app, config, host, port)
        self.server_thread = threading.Thread(target=self.server.server.serve_forever,
                                              name="api-server", daemon=True)
        self.server_thread.start()
        return config

    def start_pump(self, config: Any, endpoint: str) -> None:
        import app as app_module
        from chalicelib.config import settings
        from devstack.pump import EventPump

        cfg = settings()
        self.pump = EventPump(app_module.app, app_module, cfg.region, endpoint, config=config,
                              retry_delay_seconds=_int_env("PUMP_RETRY_DELAY_SECONDS"),
                              endpoints=dict(cfg.service_endpoint_urls))
        self.pump.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server.server_close()
        if self.stripe is not None:
            self.stripe.stop()
        if self.pump is not None:
            self.pump.stop()
        if self.moto is not None:
            self.moto.stop()


_moto_dynamodb_lock = threading.Lock()


def serialise_moto_dynamodb() -> None:
    """One DynamoDB request at a time in the embedded moto server. moto's backend is not
    thread-safe: concurrent TransactWriteItems fail inside it with "dictionary changed size
    during iteration" (a 500 that botocore retries, or one a client sees when retries run
    out). DynamoDB itself serialises conflicting writes; the local stack does it for all."""
    from moto.dynamodb.responses import DynamoHandler

    call_action = DynamoHandler.call_action
    if getattr(call_action, "serialised", False):
        return

    def serialised(self: Any) -> Any:
        with _moto_dynamodb_lock:
            return call_action(self)

    serialised.serialised = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = serialised


def _configure_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("devstack").setLevel(logging.INFO)
    # The moto server would log every AWS call the app and the pump make.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Powertools warns on every invocation that adds no metric, which most local ones are.
    warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)


def _print_banner(api_url: str, storefront_url: str, endpoint: str, stripe_url: str,
                  admin: Account, demo: list[Account], webhook_secret: str,
                  seconds: float, elsewhere: tuple[tuple[str, str], ...] = ()) -> None:
    lines = [
        "",
        "paidres local stack (everything in memory; gone on exit)",
        f"  API:            {api_url}",
        f"  Storefront:     {storefront_url}",
        f"  Mail outbox:    {api_url}/_local/outbox",
        f"  AWS (moto):     {endpoint}",
        *(f"  {service.upper() + ' (elsewhere):':<15} {url}" for service, url in elsewhere),
        f"  Stripe (local): {stripe_url}",
        *(f"  {a.label + ':':<15} {a.email} / {a.password}" for a in (admin, *demo)),
        f"  Stripe webhook: {webhook_secret}",
        f"  Started in {seconds:.1f} s. Ctrl-C stops.",
        "",
        f"Ready: {api_url}",
    ]
    print("\n".join(lines), flush=True)


def main() -> int:
    started = time.monotonic()
    _configure_logging()
    host = os.environ.get("API_HOST") or "127.0.0.1"
    port = _int_env("API_PORT") or 8000
    api_url = f"http://{host}:{port}"
    webhook_secret = os.environ.get("STRIPE_WEBHOOK_SECRET") or \
        "whsec_" + secrets.token_urlsafe(24)
    stack = Stack()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        # The stand-in binds first: its URL goes into the settings below.
        stripe_url = stack.start_stripe(webhook_secret, api_url, host,
                                        _int_env("STRIPE_PORT") or 0)
        # Settings are read once per process, so the stage and everything derived from it
        # must be in the environment before the first module that reads them is imported.
        stage.apply(STAGE, {"PUBLIC_BASE_URL": api_url,
                            "STOREFRONT_URL": os.environ.get("STOREFRONT_URL") or api_url,
                            "STRIPE_WEBHOOK_SECRET": webhook_secret,
                            "STRIPE_API_BASE": stripe_url,
                            "STRIPE_SECRET_KEY": os.environ.get("STRIPE_SECRET_KEY")
                            or "sk_test_local"})
        import moto  # noqa: F401  (before any boto3 client exists)

        endpoint = stack.start_moto(_int_env("MOTO_PORT") or 0)
        os.environ["AWS_ENDPOINT_URL"] = endpoint

        from chalicelib.accounts import keys
        from chalicelib.config import settings
        from chalicelib.observability import metrics
        from devstack.provision import provision

        cfg = settings()
        provision(cfg.stage, cfg.region)
        keys.install(keys.new_secrets_document())
        admin, admin_id = seed_admin()
        demo = seed_demo(admin_id)
        # Seeding is not traffic: its metrics must not go out with the first request's.
        metrics.clear_metrics()
        config = stack.start_api(host, port)
        stack.start_pump(config, endpoint)
        write_runtime({"api_url": api_url, "aws_endpoint_url": endpoint,
                       "stripe_api_base": stripe_url, "pid": os.getpid()})
        _print_banner(api_url, cfg.storefront_url, endpoint, stripe_url, admin, demo,
                      webhook_secret, time.monotonic() - started, cfg.service_endpoint_urls)
        while not stop.wait(0.5):
            pass
        print("Stopping...", flush=True)
    except Exception as exc:  # noqa: BLE001 - whatever failed, stop what did start
        if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
            log.error("%s: set API_PORT, MOTO_PORT or STRIPE_PORT to a free port", exc)
        else:
            log.exception("the local stack failed")
        return 1
    finally:
        stack.stop()
        RUNTIME.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
