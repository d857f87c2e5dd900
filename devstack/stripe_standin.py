"""A local stand-in for the parts of the Stripe API the platform calls, so local mode needs
no Stripe account and the official `stripe` SDK works against it unchanged:

    client = stripe.StripeClient("sk_test_local", base_addresses={"api": standin_url})

It serves, over HTTP from a daemon thread:

- `POST /v1/checkout/sessions`, `GET /v1/checkout/sessions/{id}` (and `/line_items`),
  `POST /v1/checkout/sessions/{id}/expire`, `GET /v1/payment_intents/{id}`,
  `GET /v1/charges/{id}`, `POST /v1/refunds`, `GET /v1/refunds/{id}`, `GET /v1/disputes/{id}`,
  `GET /v1/events/{id}`: form-encoded bodies, `Authorization: Bearer sk_test_...`,
  `Idempotency-Key` replay, `expand[]`, Stripe-shaped errors.
- `GET /checkout/{session_id}`: the payment page a Checkout Session's `url` points to, whose
  buttons complete it (`POST /checkout/{session_id}/pay`, form or JSON
  `{"outcome": "succeeded" | "failed", "delayed": false}`).
- `POST /_standin/disputes` `{"payment_intent"}`, `POST /_standin/disputes/{id}/close`
  `{"won": true}`, `GET /_standin/events`, `POST /_standin/events/{id}/resend`.
- Stripe Billing (`devstack/stripe_billing.py`): Products, Prices, Customers, Checkout in
  `subscription` mode, Subscriptions and Invoices, and `POST /_standin/subscriptions/{id}/
  renew|fail|lapse` to renew a period, fail its renewal, or end it after failures.

Objects are built on the real-shaped fixtures of `shared/fixtures/stripe` (changed only where
the stand-in knows better). Every event is serialised once, signed the way Stripe signs
(`Stripe-Signature: t=<ts>,v1=<HMAC-SHA256(secret, "<ts>.<body>")>`, a fresh timestamp per
attempt) and handed to `deliver(body, signature)` from one background worker, in order, with
Stripe-like retries. Everything lives in memory.
"""
from __future__ import annotations

import copy
import hashlib
import hmac
import html
import json
import logging
import queue
import re
import secrets
import string
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

log = logging.getLogger(__name__)

API_VERSION = "2025-06-30.basil"
# In-repo copies of ../shared/fixtures/stripe, so a clone alone runs (see its README).
DEFAULT_FIXTURES_DIR = Path(__file__).resolve().parent / "stripe_fixtures"
DEFAULT_RETRY_DELAYS = (0.2, 0.5, 1.0)  # three retries after the first attempt

# Stripe's currencies without a minor unit: amounts are in whole units.
ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg",
                          "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"})
_SYMBOLS = {"cny": "¥", "usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "hkd": "HK$"}
_ALNUM = string.ascii_letters + string.digits
_MIN_EXPIRY, _MAX_EXPIRY, _DEFAULT_EXPIRY = 30 * 60, 24 * 3600, 24 * 3600
_REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
_OPEN_DISPUTE = ("needs_response", "under_review", "warning_needs_response",
                 "warning_under_review")

# The parameters Stripe accepts on the endpoints served; any other is refused, as Stripe does.
_SESSION_PARAMS = frozenset({
    "adaptive_pricing", "after_expiration", "allow_promotion_codes", "automatic_tax",
    "billing_address_collection", "branding_settings", "cancel_url", "client_reference_id",
    "consent_collection", "currency", "custom_fields", "custom_text", "customer",
    "customer_account", "customer_creation", "customer_email", "customer_update", "discounts",
    "excluded_payment_method_types", "expand", "expires_at", "invoice_creation", "line_items",
    "locale", "metadata", "mode", "name_collection", "optional_items", "origin_context",
    "payment_intent_data", "payment_method_collection", "payment_method_configuration",
    "payment_method_data", "payment_method_options", "payment_method_types", "permissions",
    "phone_number_collection", "redirect_on_completion", "return_url",
    "saved_payment_method_options", "setup_intent_data", "shipping_address_collection",
    "shipping_options", "submit_type", "subscription_data", "success_url", "tax_id_collection",
    "ui_mode", "wallet_options"})
_REFUND_PARAMS = frozenset({
    "amount", "charge", "currency", "customer", "expand", "instructions_email", "metadata",
    "origin", "payment_intent", "reason", "refund_application_fee", "reverse_transfer"})


class _BackloggedServer(ThreadingHTTPServer):
    # socketserver's listen backlog of 5 resets connections under a handful of clients.
    request_queue_size = 128


class StandInError(Exception):
    """A request the stand-in refuses, with the HTTP status and the Stripe error it answers."""

    def __init__(self, message: str, *, status: int = 400,
                 type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        return {"error": error}


def _missing(kind: str, object_id: str, param: str | None = None) -> StandInError:
    return StandInError(f"No such {kind}: '{object_id}'", status=404, code="resource_missing",
                        param=param)


@dataclass(frozen=True)
class Delivery:
    """The outcome of delivering one event (once, or again by `resend`)."""

    event_id: str
    event_type: str
    attempts: int
    delivered: bool
    error: str | None = None


# ---------------------------------------------------------------------------------------------
# Helpers: ids, form decoding, signatures, amounts


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def decode_form(pairs: list[tuple[str, str]] | str | bytes) -> dict[str, Any]:
    """Stripe's form encoding back into nested values: `a[b][0][c]=v` becomes
    `{"a": {"b": [{"c": "v"}]}}`, `a[]=v` appends. Values stay strings."""
    if isinstance(pairs, bytes):
        pairs = pairs.decode("utf-8")
    if isinstance(pairs, str):
        pairs = parse_qsl(pairs, keep_blank_values=True, strict_parsing=False)
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if not match:
            raise StandInError(f"Invalid parameter name: {key}", param=key)
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":
                if not isinstance(node, list):
                    raise StandInError(f"Invalid array parameter: {key}", param=key)
                if last:
                    node.append(value)
                    break
                node.append({})
                node = node[-1]
                continue
            if not isinstance(node, dict):
                raise StandInError(f"Invalid parameter: {key}", param=key)
            if last:
                node[part] = value
            else:
                following = parts[i + 1]
                if part not in node or isinstance(node[part], str):
                    node[part] = [] if following == "" else {}
                node = node[part]
    return {k: _listify(v, k) for k, v in root.items()}


def _listify(value: Any, key: str | None = None) -> Any:
    """Dicts keyed 0..n-1 become lists (metadata keys stay keys, whatever they look like)."""
    if isinstance(value, list):
        return [_listify(v) for v in value]
    if not isinstance(value, dict):
        return value
    if key == "metadata":
        return dict(value)
    converted = {k: _listify(v, k) for k, v in value.items()}
    if converted and all(k.isdigit() for k in converted) and \
            sorted(int(k) for k in converted) == list(range(len(converted))):
        return [converted[str(i)] for i in range(len(converted))]
    return converted


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header Stripe would send with `body`."""
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode("utf-8"), f"{ts}.".encode() + body, hashlib.sha256)
    return f"t={ts},v1={digest.hexdigest()}"


def format_amount(amount: int, currency: str) -> str:
    """`1234, "cny"` -> `¥12.34 CNY`; zero-decimal currencies have no minor unit."""
    cur = currency.lower()
    number = f"{amount:,}" if cur in ZERO_DECIMAL else f"{amount // 100:,}.{amount % 100:02d}"
    return f"{_SYMBOLS.get(cur, '')}{number} {cur.upper()}"


def _int(value: Any, param: str, minimum: int | None = None) -> int:
    if isinstance(value, bool):
        raise StandInError(f"Invalid integer: {value}", param=param)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise StandInError(f"Invalid integer: {value}", param=param) from None
    if minimum is not None and number < minimum:
        raise StandInError(f"This value must be greater than or equal to {minimum}.",
                           param=param)
    return number


def _dict(value: Any, param: str) -> dict:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise StandInError(f"Invalid object for {param}.", param=param)
    return value


def _metadata(value: Any, param: str = "metadata") -> dict[str, str]:
    meta = _dict(value, param)
    if len(meta) > 50:
        raise StandInError("Metadata can have at most 50 keys.", param=param)
    for key, item in meta.items():
        if not isinstance(item, str):
            raise StandInError(f"Invalid metadata value for {key}.", param=f"{param}[{key}]")
        if len(key) > 40:
            raise StandInError("Metadata keys can be at most 40 characters.",
                               param=f"{param}[{key}]")
        if len(item) > 500:
            raise StandInError("Metadata values can be at most 500 characters.",
                               param=f"{param}[{key}]")
    return {k: v for k, v in meta.items() if v != ""}  # "" unsets a key on Stripe


def _unknown_params(params: dict, known: frozenset[str]) -> None:
    for name in params:
        if name not in known:
            raise StandInError(f"Received unknown parameter: {name}", param=name,
                               code="parameter_unknown")


# ---------------------------------------------------------------------------------------------
# Deliverers and the registry


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Stripe does not follow redirects from a webhook endpoint: a 3xx is a failure."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def http_deliverer(webhook_url: str, timeout: float = 10.0) -> Callable[[bytes, str], None]:
    """A `deliver` that POSTs each event to `webhook_url` the way Stripe does; raises on any
    answer other than 2xx (so the stand-in retries)."""
    if urlsplit(webhook_url).scheme not in ("http", "https"):
        raise ValueError(f"webhook URL must be http(s): {webhook_url!r}")
    opener = urllib.request.build_opener(_NoRedirect)

    def deliver(body: bytes, signature: str) -> None:
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            webhook_url, data=body, method="POST",
            headers={"Content-Type": "application/json; charset=utf-8",
                     "Stripe-Signature": signature,
                     "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"})
        with opener.open(request, timeout=timeout) as response:
            status = response.status
        if not 200 <= status < 300:
            raise RuntimeError(f"webhook endpoint answered {status}")

    return deliver


_registry_lock = threading.Lock()
_current: StripeStandIn | None = None


def register(standin: StripeStandIn | None) -> None:
    """Make `standin` the one `current()` returns (None forgets it)."""
    global _current
    with _registry_lock:
        _current = standin


def current() -> StripeStandIn | None:
    """The stand-in running in this process, if one was registered."""
    with _registry_lock:
        return _current


# ---------------------------------------------------------------------------------------------
# The stand-in


class StripeStandIn:
    """An in-memory Stripe for one process: an HTTP API for the SDK, a payment page, and
    signed webhook events delivered in order from a background worker."""

    def __init__(self, webhook_secret: str, deliver: Callable[[bytes, str], None],
                 fixtures_dir: Path = DEFAULT_FIXTURES_DIR, public_url: str | None = None,
                 *, retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS,
                 api_version: str = API_VERSION) -> None:
        if not webhook_secret:
            raise ValueError("a webhook secret is required")
        self.webhook_secret = webhook_secret
        self.deliver = deliver
        self.fixtures_dir = Path(fixtures_dir)
        self.public_url = public_url.rstrip("/") if public_url else None
        self.retry_delays = tuple(retry_delays)
        self.api_version = api_version
        self.base_url: str | None = None

        self._lock = threading.RLock()
        self._fixtures: dict[str, dict] = {}
        self._sessions: dict[str, dict] = {}
        self._line_items: dict[str, list[dict]] = {}
        self._intent_metadata: dict[str, dict[str, str]] = {}  # session id -> PI metadata
        self._intents: dict[str, dict] = {}
        self._charges: dict[str, dict] = {}
        self._refunds: dict[str, dict] = {}
        self._disputes: dict[str, dict] = {}
        # Billing (devstack.stripe_billing)
        self._products: dict[str, dict] = {}
        self._prices: dict[str, dict] = {}
        self._customers: dict[str, dict] = {}
        self._subscriptions: dict[str, dict] = {}
        self._invoices: dict[str, dict] = {}
        self._sub_plans: dict[str, dict] = {}  # subscription-mode session -> its items
        self._events: list[dict] = []
        self._event_index: dict[str, int] = {}
        self._bodies: dict[str, bytes] = {}
        self._idempotent: dict[str, tuple[str, str, Any, int, bytes]] = {}
        self._deliveries: list[Delivery] = []

        self._queue: queue.Queue[str | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None
        self._server: ThreadingHTTPServer | None = None
        self._server_thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Bind and serve from a daemon thread; returns the base URL (`http://host:port`)."""
        if self._server is not None:
            raise RuntimeError("the stand-in is already started")
        server = _BackloggedServer((host, port), _handler_class(self))
        server.daemon_threads = True
        self._server = server
        bound_host, bound_port = server.server_address[:2]
        self.base_url = f"http://{bound_host}:{bound_port}"
        self._server_thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                                               name="stripe-standin", daemon=True)
        self._server_thread.start()
        self._ensure_worker()
        log.info("Stripe stand-in on %s", self.base_url)
        return self.base_url

    def stop(self) -> None:
        """Stop serving and delivering; events still queued are dropped."""
        global _current
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(5)
            self._worker = None
        with _registry_lock:
            if _current is self:
                _current = None

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued delivery is done (delivered or given up); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    @property
    def page_base(self) -> str:
        return self.public_url or self.base_url or "http://127.0.0.1"

    # -- read access for tests and tools --------------------------------------------------

    @property
    def events(self) -> list[dict]:
        """Every event sent so far, oldest first (copies)."""
        with self._lock:
            return copy.deepcopy(self._events)

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def event_body(self, event_id: str) -> bytes:
        """The exact bytes delivered for an event."""
        with self._lock:
            if event_id not in self._bodies:
                raise _missing("event", event_id)
            return self._bodies[event_id]

    def get(self, object_id: str) -> dict:
        """A copy of any object by id (`cs_`, `pi_`, `ch_`, `re_`, `dp_`, `evt_`)."""
        with self._lock:
            return copy.deepcopy(self._lookup(object_id))

    def _lookup(self, object_id: str) -> dict:
        for store in (self._sessions, self._intents, self._charges, self._refunds,
                      self._disputes, self._products, self._prices, self._customers,
                      self._subscriptions, self._invoices):
            if object_id in store:
                return store[object_id]
        if object_id in self._event_index:
            return self._events[self._event_index[object_id]]
        raise _missing("object", object_id)

    # -- fixtures ---------------------------------------------------------------------------

    def _fixture(self, name: str) -> dict:
        if name not in self._fixtures:
            path = self.fixtures_dir / f"{name}.json"
            try:
                self._fixtures[name] = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                log.warning("Stripe fixture %s is missing: %s objects carry only the fields "
                            "the stand-in sets", path, name)
                self._fixtures[name] = {}
        return copy.deepcopy(self._fixtures[name])

    # -- events and delivery ------------------------------------------------------------------

    def _emit(self, event_type: str, obj: dict, request: dict | None = None,
              previous: dict | None = None) -> str:
        """Record, serialise and queue one event (call with the lock held, so the events of
        one action are queued together and in order). `previous`: the `*.updated` event's
        `data.previous_attributes`."""
        event = self._fixture("event")
        event.update({
            "id": new_id("evt_"),
            "object": "event",
            "api_version": self.api_version,
            "created": int(time.time()),
            "data": {"object": copy.deepcopy(obj)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": request or {"id": None, "idempotency_key": None},
            "type": event_type,
        })
        if previous is not None:
            event["data"]["previous_attributes"] = copy.deepcopy(previous)
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        self._event_index[event["id"]] = len(self._events)
        self._events.append(event)
        self._bodies[event["id"]] = body
        self._enqueue(event["id"])
        return event["id"]

    def resend(self, event_id: str) -> None:
        """Deliver an already sent event again (same id and body, fresh signature)."""
        with self._lock:
            if event_id not in self._bodies:
                raise _missing("event", event_id)
            self._enqueue(event_id)

    def _enqueue(self, event_id: str) -> None:
        self._ensure_worker()
        with self._idle:
            self._pending += 1
        self._queue.put(event_id)

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._stopping.clear()
                self._worker = threading.Thread(target=self._work, name="stripe-webhooks",
                                                daemon=True)
                self._worker.start()

    def _work(self) -> None:
        while True:
            event_id = self._queue.get()
            if event_id is None:
                return
            try:
                self._deliver(event_id)
            except Exception:  # noqa: BLE001 - the worker must outlive any one delivery
                log.exception("delivering %s failed", event_id)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, event_id: str) -> None:
        with self._lock:
            body = self._bodies[event_id]
            event_type = self._events[self._event_index[event_id]]["type"]
        attempts, error = 0, None
        for delay in (0.0, *self.retry_delays):
            if self._stopping.is_set() or (delay and self._stopping.wait(delay)):
                error = error or "the stand-in stopped"
                break
            attempts += 1
            try:
                self.deliver(body, sign(body, self.webhook_secret))
            except Exception as exc:  # noqa: BLE001 - any failure is retried, as Stripe does
                error = f"{type(exc).__name__}: {exc}"
                log.warning("webhook %s %s: attempt %d failed: %s", event_type, event_id,
                            attempts, error)
                continue
            with self._lock:
                self._deliveries.append(Delivery(event_id, event_type, attempts, True))
            return
        log.warning("webhook %s %s: given up after %d attempts", event_type, event_id, attempts)
        with self._lock:
            self._deliveries.append(Delivery(event_id, event_type, attempts, False, error))

    # -- checkout sessions --------------------------------------------------------------------

    def create_checkout_session(self, params: dict[str, Any]) -> dict:
        """`POST /v1/checkout/sessions` with decoded params; returns the session (a copy)."""
        _unknown_params(params, _SESSION_PARAMS)
        mode = params.get("mode")
        if not mode:
            raise StandInError("Missing required param: mode.", param="mode")
        if mode == "subscription":
            return self._subscription_session(params)
        if mode != "payment":
            raise StandInError(f"The local Stripe stand-in supports mode=payment and "
                               f"subscription, not {mode!r}.", param="mode")
        raw_items = params.get("line_items")
        if not isinstance(raw_items, list) or not raw_items:
            raise StandInError("line_items is required in payment mode.", param="line_items")
        items, currency = [], None
        for i, raw in enumerate(raw_items):
            item = self._line_item(raw, f"line_items[{i}]")
            if currency is not None and item["currency"] != currency:
                raise StandInError("All line items must have the same currency.",
                                   param=f"line_items[{i}][price_data][currency]")
            currency = item["currency"]
            items.append(item)
        if params.get("currency") and str(params["currency"]).lower() != currency:
            raise StandInError("currency must match the line items' currency.",
                               param="currency")
        subtotal = sum(item["amount_subtotal"] for item in items)
        now = int(time.time())
        if params.get("expires_at") not in (None, ""):
            expires_at = _int(params["expires_at"], "expires_at")
            if not now + _MIN_EXPIRY - 5 <= expires_at <= now + _MAX_EXPIRY + 5:
                raise StandInError("The `expires_at` timestamp must be between 30 minutes and "
                                   "24 hours from Checkout Session creation.",
                                   param="expires_at")
        else:
            expires_at = now + _DEFAULT_EXPIRY
        types = params.get("payment_method_types") or ["card"]
        if not isinstance(types, list) or not all(isinstance(t, str) and t for t in types):
            raise StandInError("Invalid array", param="payment_method_types")
        options = _dict(params.get("payment_method_options"), "payment_method_options")
        if "wechat_pay" in types and not _dict(options.get("wechat_pay"),
                                               "payment_method_options[wechat_pay]"
                                               ).get("client"):
            raise StandInError("payment_method_options[wechat_pay][client] is required when "
                               "wechat_pay is one of the payment_method_types.",
                               param="payment_method_options[wechat_pay][client]")
        for name in ("success_url", "cancel_url"):
            url = params.get(name)
            if url not in (None, "") and urlsplit(str(url)).scheme not in ("http", "https"):
                raise StandInError(f"Not a valid URL: {url}", param=name, code="url_invalid")
        reference = params.get("client_reference_id") or None
        if reference is not None and len(reference) > 200:
            raise StandInError("client_reference_id can be at most 200 characters.",
                               param="client_reference_id")
        intent_data = _dict(params.get("payment_intent_data"), "payment_intent_data")

        session_id = new_id("cs_test_", 58)
        session = self._fixture("checkout.session")
        session.update({
            "id": session_id,
            "object": "checkout.session",
            "adaptive_pricing": {"enabled": False},
            "amount_subtotal": subtotal,
            "amount_total": subtotal,
            "cancel_url": params.get("cancel_url") or None,
            "client_reference_id": reference,
            "collected_information": None,
            "created": now,
            "currency": currency,
            "currency_conversion": None,
            "customer_details": None,
            "customer_email": params.get("customer_email") or None,
            "expires_at": expires_at,
            "livemode": False,
            "locale": params.get("locale") or None,
            "metadata": _metadata(params.get("metadata")),
            "mode": mode,
            "payment_intent": None,
            "payment_method_configuration_details": None,
            "payment_method_options": copy.deepcopy(options),
            "payment_method_types": list(types),
            "payment_status": "unpaid",
            "shipping_address_collection": None,
            "shipping_cost": None,
            "status": "open",
            "submit_type": params.get("submit_type") or None,
            "success_url": params.get("success_url") or None,
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": params.get("ui_mode") or "hosted",
            "url": f"{self.page_base}/checkout/{session_id}",
        })
        if "invoice_creation" in session:
            session["invoice_creation"] = {"enabled": False,
                                           **{k: v for k, v in session["invoice_creation"]
                                              .items() if k != "enabled"}}
        with self._lock:
            self._sessions[session_id] = session
            self._line_items[session_id] = items
            self._intent_metadata[session_id] = _metadata(intent_data.get("metadata"),
                                                          "payment_intent_data[metadata]")
            return copy.deepcopy(session)

    def _subscription_session(self, params: dict[str, Any]) -> dict:
        from devstack import stripe_billing

        for name in ("success_url", "cancel_url"):
            url = params.get(name)
            if url not in (None, "") and urlsplit(str(url)).scheme not in ("http", "https"):
                raise StandInError(f"Not a valid URL: {url}", param=name, code="url_invalid")
        now = int(time.time())
        session_id = new_id("cs_test_", 58)
        session = self._fixture("checkout.session")
        session.update({
            "id": session_id, "object": "checkout.session", "cancel_url":
            params.get("cancel_url") or None,
            "client_reference_id": params.get("client_reference_id") or None,
            "created": now, "customer_details": None,
            "customer_email": params.get("customer_email") or None,
            "expires_at": now + _DEFAULT_EXPIRY, "livemode": False,
            "metadata": _metadata(params.get("metadata")), "mode": "subscription",
            "payment_intent": None, "payment_status": "unpaid", "status": "open",
            "success_url": params.get("success_url") or None,
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": "hosted", "url": f"{self.page_base}/checkout/{session_id}"})
        with self._lock:
            stripe_billing.create_session(self, params, session)
            self._sessions[session_id] = session
            self._line_items[session_id] = stripe_billing.session_line_items(self, session_id)
            return copy.deepcopy(session)

    def renew(self, subscription_id: str) -> list[str]:
        """The subscription's period ends and renews (devstack.stripe_billing.renew)."""
        from devstack import stripe_billing

        with self._lock:
            return stripe_billing.renew(self, subscription_id)

    def fail_renewal(self, subscription_id: str) -> list[str]:
        from devstack import stripe_billing

        with self._lock:
            return stripe_billing.fail_renewal(self, subscription_id)

    def lapse(self, subscription_id: str) -> list[str]:
        from devstack import stripe_billing

        with self._lock:
            return stripe_billing.lapse(self, subscription_id)

    def _line_item(self, raw: Any, param: str) -> dict:
        if not isinstance(raw, dict):
            raise StandInError("Invalid line item.", param=param)
        if "price" in raw:
            raise StandInError("The local Stripe stand-in knows no Prices: use price_data.",
                               param=f"{param}[price]")
        price = _dict(raw.get("price_data"), f"{param}[price_data]")
        if not price:
            raise StandInError("You must specify either `price` or `price_data` for each line "
                               "item.", param=f"{param}[price_data]")
        currency = str(price.get("currency") or "").lower()
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise StandInError(f"Invalid currency: {currency or '(none)'}",
                               param=f"{param}[price_data][currency]")
        if price.get("unit_amount") in (None, ""):
            raise StandInError("Missing required param: unit_amount.",
                               param=f"{param}[price_data][unit_amount]")
        unit = _int(price["unit_amount"], f"{param}[price_data][unit_amount]", 0)
        product = _dict(price.get("product_data"), f"{param}[price_data][product_data]")
        name = product.get("name") or price.get("product")
        if not name:
            raise StandInError("You must specify either `product` or `product_data` when "
                               "creating a price.", param=f"{param}[price_data][product_data]")
        if raw.get("quantity") in (None, ""):
            raise StandInError("Quantity is required.", param=f"{param}[quantity]")
        quantity = _int(raw["quantity"], f"{param}[quantity]", 1)
        amount = unit * quantity
        return {
            "id": new_id("li_"),
            "object": "item",
            "amount_discount": 0,
            "amount_subtotal": amount,
            "amount_tax": 0,
            "amount_total": amount,
            "currency": currency,
            "description": name if product else None,
            "price": {"id": new_id("price_"), "object": "price", "active": False,
                      "billing_scheme": "per_unit", "created": int(time.time()),
                      "currency": currency, "livemode": False, "lookup_key": None,
                      "metadata": {}, "nickname": None,
                      "product": price.get("product") or new_id("prod_", 14),
                      "recurring": None, "tax_behavior": "unspecified", "tiers_mode": None,
                      "transform_quantity": None, "type": "one_time", "unit_amount": unit,
                      "unit_amount_decimal": str(unit)},
            "quantity": quantity,
        }

    def _session(self, session_id: str, param: str = "session") -> dict:
        session = self._sessions.get(session_id)
        if session is None:
            raise _missing("checkout.session", session_id, param)
        return session

    def expire_checkout_session(self, session_id: str, request: dict | None = None) -> dict:
        """`POST /v1/checkout/sessions/{id}/expire`: only an open session; sends
        `checkout.session.expired`."""
        with self._lock:
            session = self._session(session_id)
            if session["status"] != "open":
                raise StandInError(
                    'Only Checkout Sessions with a status in ["open"] can be expired. This '
                    f'Checkout Session has a status of "{session["status"]}".')
            session["status"] = "expired"
            session["url"] = None
            self._emit("checkout.session.expired", session, request)
            return copy.deepcopy(session)

    def pay(self, session_id: str, outcome: str = "succeeded", delayed: bool = False
            ) -> list[str]:
        """Complete an open session the way Stripe would and return the ids of the events sent.

        `succeeded`: `checkout.session.completed` (paid); with `delayed` (Alipay/WeChat-style
        notification) `completed` (unpaid) then `checkout.session.async_payment_succeeded`.
        `failed`: a delayed method that failed: `completed` (unpaid) then
        `checkout.session.async_payment_failed`."""
        if outcome not in ("succeeded", "failed"):
            raise StandInError("outcome must be 'succeeded' or 'failed'.", param="outcome")
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                raise StandInError(f"No such checkout.session: '{session_id}'", status=404,
                                   code="resource_missing", param="session")
            if session["status"] != "open":
                raise StandInError(f"Checkout Session {session_id} is {session['status']}: "
                                   "only an open session can be paid.", status=409,
                                   code="checkout_session_not_open")
            if session["expires_at"] <= time.time():
                session["status"], session["url"] = "expired", None
                self._emit("checkout.session.expired", session)
                raise StandInError(f"Checkout Session {session_id} has expired.", status=409,
                                   code="checkout_session_not_open")
            if session["mode"] == "subscription":
                from devstack import stripe_billing

                return stripe_billing.pay_session(self, session, outcome)
            intent = self._new_intent(session)
            session.update({"status": "complete", "payment_intent": intent["id"],
                            "customer_details": self._customer_details(session),
                            "url": None})
            events = []
            if outcome == "succeeded" and not delayed:
                self._succeed(intent)
                session["payment_status"] = "paid"
                events.append(self._emit("checkout.session.completed", session))
                return events
            intent["status"] = "processing"
            events.append(self._emit("checkout.session.completed", session))
            if outcome == "succeeded":
                self._succeed(intent)
                session["payment_status"] = "paid"
                events.append(self._emit("checkout.session.async_payment_succeeded", session))
            else:
                self._fail(intent)
                events.append(self._emit("checkout.session.async_payment_failed", session))
            return events

    @staticmethod
    def _customer_details(session: dict) -> dict:
        return {"address": None, "business_name": None,
                "email": session.get("customer_email") or "buyer@example.com",
                "individual_name": None, "name": None, "phone": None, "tax_exempt": "none",
                "tax_ids": []}

    # -- payment intents and charges ----------------------------------------------------------

    def _new_intent(self, session: dict) -> dict:
        intent_id = new_id("pi_")
        intent = self._fixture("payment_intent")
        intent.update({
            "id": intent_id,
            "object": "payment_intent",
            "amount": session["amount_total"],
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": 0,
            "automatic_payment_methods": None,
            "canceled_at": None,
            "cancellation_reason": None,
            "client_secret": f"{intent_id}_secret_{new_id('', 25)}",
            "created": int(time.time()),
            "currency": session["currency"],
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": dict(self._intent_metadata.get(session["id"], {})),
            "next_action": None,
            "payment_method": None,
            "payment_method_configuration_details": None,
            "payment_method_types": list(session["payment_method_types"]),
            "processing": None,
            "receipt_email": session.get("customer_email"),
            "status": "requires_payment_method",
            "transfer_data": None,
        })
        self._intents[intent_id] = intent
        return intent

    def _new_charge(self, intent: dict, paid: bool) -> dict:
        charge_id = new_id("ch_")
        method_type = intent["payment_method_types"][0]
        charge = self._fixture("charge")
        details = charge.get("payment_method_details") or {}
        if method_type != "card" or "card" not in details:
            details = {"type": method_type, method_type: {}}
        charge.update({
            "id": charge_id,
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"] if paid else 0,
            "amount_refunded": 0,
            "balance_transaction": new_id("txn_") if paid else None,
            "captured": paid,
            "created": int(time.time()),
            "currency": intent["currency"],
            "description": None,
            "disputed": False,
            "failure_code": None if paid else "payment_method_provider_decline",
            "failure_message": None if paid else "The payment was declined by the provider.",
            "livemode": False,
            "metadata": {},
            "outcome": {"advice_code": None, "network_advice_code": None,
                        "network_decline_code": None,
                        "network_status": "approved_by_network" if paid
                        else "declined_by_network",
                        "reason": None, "risk_level": "normal", "seller_message":
                        "Payment complete." if paid else "The payment was declined.",
                        "type": "authorized" if paid else "issuer_declined"},
            "paid": paid,
            "payment_intent": intent["id"],
            "payment_method": new_id("pm_"),
            "payment_method_details": details,
            "receipt_email": intent.get("receipt_email"),
            "receipt_url": f"{self.page_base}/receipts/{charge_id}" if paid else None,
            "refunded": False,
            "refunds": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                        "url": f"/v1/charges/{charge_id}/refunds"},
            "source": None,
            "status": "succeeded" if paid else "failed",
            "transfer_data": None,
        })
        self._charges[charge_id] = charge
        intent["latest_charge"] = charge_id
        intent["payment_method"] = charge["payment_method"]
        return charge

    def _succeed(self, intent: dict) -> None:
        self._new_charge(intent, paid=True)
        intent.update({"status": "succeeded", "amount_received": intent["amount"]})

    def _fail(self, intent: dict) -> None:
        charge = self._new_charge(intent, paid=False)
        intent.update({"status": "requires_payment_method", "last_payment_error": {
            "type": "card_error" if charge["payment_method_details"]["type"] == "card"
            else "invalid_request_error",
            "code": "payment_method_provider_decline", "charge": charge["id"],
            "message": "The payment was declined by the provider."}})

    # -- refunds ------------------------------------------------------------------------------

    def create_refund(self, params: dict[str, Any], request: dict | None = None) -> dict:
        """`POST /v1/refunds`; sends `charge.refunded` then `refund.created`."""
        _unknown_params(params, _REFUND_PARAMS)
        reason = params.get("reason") or None
        if reason is not None and reason not in _REFUND_REASONS:
            raise StandInError(f"Invalid reason: must be one of {', '.join(_REFUND_REASONS)}",
                               param="reason")
        metadata = _metadata(params.get("metadata"))
        with self._lock:
            charge = self._refundable_charge(params)
            remaining = charge["amount"] - charge["amount_refunded"]
            if remaining <= 0:
                raise StandInError(f"Charge {charge['id']} has already been refunded.",
                                   code="charge_already_refunded")
            if params.get("amount") in (None, ""):
                amount = remaining
            else:
                amount = _int(params["amount"], "amount", 1)
            if amount > remaining:
                raise StandInError(
                    f"Refund amount ({format_amount(amount, charge['currency'])}) is greater "
                    f"than unrefunded amount on charge "
                    f"({format_amount(remaining, charge['currency'])})",
                    param="amount", code="amount_too_large")
            refund = self._fixture("refund")
            refund.update({
                "id": new_id("re_"),
                "object": "refund",
                "amount": amount,
                "balance_transaction": new_id("txn_"),
                "charge": charge["id"],
                "created": int(time.time()),
                "currency": charge["currency"],
                "metadata": metadata,
                "payment_intent": charge["payment_intent"],
                "reason": reason,
                "status": "succeeded",
            })
            if charge["payment_method_details"].get("type") != "card":
                kind = charge["payment_method_details"]["type"]
                refund["destination_details"] = {"type": kind, kind: {}}
            self._refunds[refund["id"]] = refund
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
            refunds = charge.setdefault("refunds", {"object": "list", "data": [],
                                                    "has_more": False})
            refunds["data"].insert(0, copy.deepcopy(refund))
            refunds["total_count"] = len(refunds["data"])
            self._emit("charge.refunded", charge, request)
            self._emit("refund.created", refund, request)
            return copy.deepcopy(refund)

    def _refundable_charge(self, params: dict) -> dict:
        intent_id, charge_id = params.get("payment_intent"), params.get("charge")
        if intent_id and charge_id:
            raise StandInError("You can only pass one of `charge` or `payment_intent`.",
                               param="payment_intent")
        if intent_id:
            intent = self._intents.get(intent_id)
            if intent is None:
                raise _missing("payment_intent", intent_id, "payment_intent")
            charge = self._charges.get(intent.get("latest_charge") or "")
            if charge is None or not charge["paid"]:
                raise StandInError(f"This PaymentIntent ({intent_id}) does not have a "
                                   "successful charge to refund.", param="payment_intent",
                                   code="charge_not_refundable")
        elif charge_id:
            charge = self._charges.get(charge_id)
            if charge is None:
                raise _missing("charge", charge_id, "charge")
            if not charge["paid"]:
                raise StandInError(f"Charge {charge_id} was not paid and cannot be refunded.",
                                   param="charge", code="charge_not_refundable")
        else:
            raise StandInError("One of `charge` or `payment_intent` is required.",
                               param="payment_intent")
        for dispute in self._disputes.values():
            if dispute["charge"] == charge["id"] and dispute["status"] != "won":
                raise StandInError(f"Charge {charge['id']} has been charged back; cannot "
                                   "issue a refund.", code="charge_disputed")
        return charge

    # -- disputes -----------------------------------------------------------------------------

    def open_dispute(self, payment_intent_id: str, reason: str = "fraudulent") -> str:
        """A chargeback on the paid charge of a PaymentIntent; sends `charge.dispute.created`
        and returns the dispute id."""
        with self._lock:
            intent = self._intents.get(payment_intent_id)
            if intent is None:
                raise _missing("payment_intent", payment_intent_id, "payment_intent")
            charge = self._charges.get(intent.get("latest_charge") or "")
            if charge is None or not charge["paid"]:
                raise StandInError(f"PaymentIntent {payment_intent_id} has no paid charge to "
                                   "dispute.", status=409, param="payment_intent")
            if any(d["charge"] == charge["id"] for d in self._disputes.values()):
                raise StandInError(f"Charge {charge['id']} is already disputed.", status=409,
                                   param="payment_intent")
            kind = charge["payment_method_details"].get("type", "card")
            dispute = self._fixture("dispute")
            dispute.update({
                "id": new_id("dp_"),
                "object": "dispute",
                "amount": charge["amount"],
                "balance_transactions": [],
                "charge": charge["id"],
                "created": int(time.time()),
                "currency": charge["currency"],
                "evidence_details": {**dispute.get("evidence_details", {}),
                                     "due_by": int(time.time()) + 7 * 86400,
                                     "has_evidence": False, "past_due": False,
                                     "submission_count": 0},
                "is_charge_refundable": False,
                "livemode": False,
                "metadata": {},
                "payment_intent": intent["id"],
                "reason": reason,
                "status": "needs_response",
            })
            if kind != "card":
                dispute["payment_method_details"] = {"type": kind, kind: {}}
            self._disputes[dispute["id"]] = dispute
            charge["disputed"] = True
            self._emit("charge.dispute.created", dispute)
            return dispute["id"]

    def close_dispute(self, dispute_id: str, won: bool) -> list[str]:
        """Close an open dispute as won or lost; sends `charge.dispute.closed`."""
        with self._lock:
            dispute = self._disputes.get(dispute_id)
            if dispute is None:
                raise _missing("dispute", dispute_id, "dispute")
            if dispute["status"] not in _OPEN_DISPUTE:
                raise StandInError(f"Dispute {dispute_id} is already closed "
                                   f"({dispute['status']}).", status=409)
            dispute["status"] = "won" if won else "lost"
            dispute["is_charge_refundable"] = bool(won)
            return [self._emit("charge.dispute.closed", dispute)]

    # -- HTTP ---------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes
               ) -> tuple[int, dict[str, str], bytes]:
        """Answer one HTTP request: (status, headers, body). Header names are lower case."""
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        request_id = new_id("req_", 14)
        answer_headers = {"Request-Id": request_id}
        try:
            if path.startswith("/v1/"):
                answer_headers["Stripe-Version"] = self.api_version
                status, payload, replayed = self._api(method, path, parts.query, headers,
                                                      body, request_id)
                if replayed:
                    answer_headers["Idempotent-Replayed"] = "true"
                if headers.get("idempotency-key"):
                    answer_headers["Idempotency-Key"] = headers["idempotency-key"]
                return status, {**answer_headers, "Content-Type": "application/json"}, payload
            return self._site(method, path, headers, body, answer_headers)
        except StandInError as exc:
            return exc.status, {**answer_headers, "Content-Type": "application/json"}, \
                _json_bytes(exc.body())
        except Exception:  # noqa: BLE001 - answer like Stripe's API error, log the cause
            log.exception("stand-in failed on %s %s", method, path)
            error = StandInError("An unexpected error occurred in the Stripe stand-in.",
                                 status=500, type="api_error")
            return 500, {**answer_headers, "Content-Type": "application/json"}, \
                _json_bytes(error.body())

    def _api(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes,
             request_id: str) -> tuple[int, bytes, bool]:
        self._authenticate(headers.get("authorization", ""))
        if method in ("GET", "DELETE"):
            params = decode_form(query)
        elif method == "POST":
            content_type = headers.get("content-type", "")
            if body and "application/x-www-form-urlencoded" not in content_type:
                raise StandInError("Requests to the v1 API must be form-encoded.")
            params = decode_form(body)
        else:
            raise StandInError(f"Unrecognized request URL ({method}: {path}).", status=404)
        segments = [unquote(s) for s in path.split("/")[2:]]
        expand = params.pop("expand", None) or []
        if not isinstance(expand, list):
            raise StandInError("Invalid array", param="expand")
        key = headers.get("idempotency-key")
        request = {"id": request_id, "idempotency_key": key}

        if method == "POST":
            with self._lock:
                if key and key in self._idempotent:
                    old_method, old_path, old_params, status, stored = self._idempotent[key]
                    if (old_method, old_path, old_params) != (method, path, (params, expand)):
                        raise StandInError(
                            "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with. Try using a key other than "
                            f"'{key}' if you meant to execute a different request.",
                            type="idempotency_error")
                    return status, stored, True
                asked = (copy.deepcopy(params), list(expand))
                obj = self._post(segments, params, request, path)
                payload = _json_bytes(self._expand(obj, expand))
                if key:
                    self._idempotent[key] = (method, path, asked, 200, payload)
                return 200, payload, False
        with self._lock:
            if method == "DELETE":
                from devstack import stripe_billing

                if len(segments) != 2 or segments[0] != "subscriptions":
                    raise StandInError(f"Unrecognized request URL (DELETE: {path}).",
                                       status=404)
                return 200, _json_bytes(stripe_billing.cancel_subscription(
                    self, segments[1], request)), False
            return 200, _json_bytes(self._expand(self._get(segments, path, params),
                                                 expand)), False

    def _authenticate(self, header: str) -> None:
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise StandInError(
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').", status=401)
        if not key.startswith(("sk_test_", "rk_test_")):
            raise StandInError(f"Invalid API Key provided: {key[:8]}***. The local Stripe "
                               "stand-in takes test-mode secret keys (sk_test_...) only.",
                               status=401, code="api_key_invalid")

    def _post(self, segments: list[str], params: dict, request: dict, path: str) -> dict:
        if segments == ["checkout", "sessions"]:
            return self.create_checkout_session(params)
        if len(segments) == 4 and segments[:2] == ["checkout", "sessions"] \
                and segments[3] == "expire":
            if params:
                _unknown_params(params, frozenset())
            return self.expire_checkout_session(segments[2], request)
        if segments == ["refunds"]:
            return self.create_refund(params, request)
        from devstack import stripe_billing as billing

        if segments == ["products"]:
            return billing.create_product(self, params)
        if segments == ["prices"]:
            return billing.create_price(self, params)
        if len(segments) == 2 and segments[0] == "prices":
            return billing.update_price(self, segments[1], params)
        if segments == ["customers"]:
            return billing.create_customer(self, params)
        if len(segments) == 2 and segments[0] == "subscriptions":
            return billing.update_subscription(self, segments[1], params, request)
        raise StandInError(f"Unrecognized request URL (POST: {path}).", status=404)

    def _get(self, segments: list[str], path: str, params: dict | None = None) -> dict:
        from devstack import stripe_billing as billing

        if segments == ["prices"]:
            return billing.list_prices(self, params or {})
        if segments == ["subscriptions"]:
            return billing.list_subscriptions(self, params or {})
        if len(segments) == 3 and segments[:2] == ["checkout", "sessions"]:
            return self._session(segments[2], "session")
        if len(segments) == 4 and segments[:2] == ["checkout", "sessions"] \
                and segments[3] == "line_items":
            self._session(segments[2], "session")
            return self._line_item_list(segments[2])
        stores = {"payment_intents": ("payment_intent", self._intents),
                  "charges": ("charge", self._charges),
                  "refunds": ("refund", self._refunds),
                  "disputes": ("dispute", self._disputes),
                  "products": ("product", self._products),
                  "prices": ("price", self._prices),
                  "customers": ("customer", self._customers),
                  "subscriptions": ("subscription", self._subscriptions),
                  "invoices": ("invoice", self._invoices)}
        if len(segments) == 2 and segments[0] in stores:
            kind, store = stores[segments[0]]
            if segments[1] not in store:
                raise _missing(kind, segments[1], "id")
            return store[segments[1]]
        if len(segments) == 2 and segments[0] == "events":
            if segments[1] not in self._event_index:
                raise _missing("event", segments[1], "id")
            return self._events[self._event_index[segments[1]]]
        raise StandInError(f"Unrecognized request URL (GET: {path}).", status=404)

    def _line_item_list(self, session_id: str) -> dict:
        return {"object": "list", "data": copy.deepcopy(self._line_items[session_id]),
                "has_more": False, "url": f"/v1/checkout/sessions/{session_id}/line_items"}

    def _expand(self, obj: dict, paths: list[str]) -> dict:
        obj = copy.deepcopy(obj)
        for path in paths:
            node = obj
            for part in str(path).split("."):
                if not isinstance(node, dict):
                    raise StandInError(f"This property cannot be expanded ({part}).",
                                       param="expand")
                value = node.get(part)
                if part == "line_items" and node.get("object") == "checkout.session":
                    node[part] = self._line_item_list(node["id"])
                elif isinstance(value, str) and part != "id":
                    try:
                        node[part] = copy.deepcopy(self._lookup(value))
                    except StandInError:
                        raise StandInError(f"This property cannot be expanded ({part}).",
                                           param="expand") from None
                elif value is None and part in node:
                    break
                elif not isinstance(value, dict):
                    raise StandInError(f"This property cannot be expanded ({part}).",
                                       param="expand")
                node = node[part]
        return obj

    def _site(self, method: str, path: str, headers: dict[str, str], body: bytes,
              answer_headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        page = re.fullmatch(r"/checkout/([^/]+)", path)
        pay = re.fullmatch(r"/checkout/([^/]+)/pay", path)
        close = re.fullmatch(r"/_standin/disputes/([^/]+)/close", path)
        resend = re.fullmatch(r"/_standin/events/([^/]+)/resend", path)
        billing = re.fullmatch(r"/_standin/subscriptions/([^/]+)/(renew|fail|lapse)", path)
        as_json = {**answer_headers, "Content-Type": "application/json"}
        if method == "GET" and page:
            status, text = self._page(unquote(page.group(1)))
            return status, {**answer_headers, "Content-Type": "text/html; charset=utf-8"}, \
                text.encode("utf-8")
        if method == "POST" and pay:
            return self._pay_request(unquote(pay.group(1)), headers, body, answer_headers)
        if method == "POST" and path == "/_standin/disputes":
            data = _json_body(body)
            intent_id = data.get("payment_intent")
            if not isinstance(intent_id, str):
                raise StandInError("payment_intent is required.", param="payment_intent")
            dispute_id = self.open_dispute(intent_id, str(data.get("reason") or "fraudulent"))
            return 200, as_json, _json_bytes(self.get(dispute_id))
        if method == "POST" and close:
            data = _json_body(body)
            if not isinstance(data.get("won"), bool):
                raise StandInError("won (true or false) is required.", param="won")
            events = self.close_dispute(unquote(close.group(1)), data["won"])
            return 200, as_json, _json_bytes({**self.get(unquote(close.group(1))),
                                              "events": events})
        if method == "GET" and path == "/_standin/events":
            return 200, as_json, _json_bytes({"object": "list", "data": self.events})
        if method == "POST" and billing:
            action = {"renew": self.renew, "fail": self.fail_renewal, "lapse": self.lapse}
            events = action[billing.group(2)](unquote(billing.group(1)))
            return 200, as_json, _json_bytes({**self.get(unquote(billing.group(1))),
                                              "events": events})
        if method == "POST" and resend:
            self.resend(unquote(resend.group(1)))
            return 202, as_json, _json_bytes({"resent": unquote(resend.group(1))})
        raise StandInError(f"Unrecognized request URL ({method}: {path}).", status=404)

    def _pay_request(self, session_id: str, headers: dict[str, str], body: bytes,
                     answer_headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        content_type = headers.get("content-type", "")
        if "application/x-www-form-urlencoded" in content_type:  # the payment page's forms
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            outcome = form.get("outcome", "")
            delayed = form.get("delayed", "") in ("on", "true", "1")
            try:
                self.pay(session_id, outcome, delayed)
            except StandInError as exc:
                status, text = exc.status, self._page(session_id, notice=exc.message)[1]
            else:
                status, text = self._page(session_id)
            return status, {**answer_headers, "Content-Type": "text/html; charset=utf-8"}, \
                text.encode("utf-8")
        data = _json_body(body)
        unknown = set(data) - {"outcome", "delayed"}
        if unknown:
            raise StandInError(f"Received unknown parameter: {sorted(unknown)[0]}",
                               param=sorted(unknown)[0])
        delayed = data.get("delayed", False)
        if not isinstance(delayed, bool):
            raise StandInError("delayed must be true or false.", param="delayed")
        outcome = data.get("outcome")
        if not isinstance(outcome, str):
            raise StandInError("outcome is required: 'succeeded' or 'failed'.", param="outcome")
        events = self.pay(session_id, outcome, delayed)
        return 200, {**answer_headers, "Content-Type": "application/json"}, _json_bytes(
            {"session_id": session_id, "outcome": outcome, "events": events})

    def _page(self, session_id: str, notice: str | None = None) -> tuple[int, str]:
        """The local payment page of a session: (status, HTML)."""
        with self._lock:
            session = copy.deepcopy(self._sessions.get(session_id))
            items = copy.deepcopy(self._line_items.get(session_id, []))
        if session is None:
            return 404, _html("Checkout session not found",
                              f"<p>No such checkout session: <code>{_e(session_id)}</code></p>")
        total = format_amount(session["amount_total"], session["currency"])
        rows = "".join(
            f"<tr><td>{_e(i['description'] or i['price']['product'])}</td>"
            f"<td>× {i['quantity']}</td>"
            f"<td class=num>{_e(format_amount(i['amount_total'], i['currency']))}</td></tr>"
            for i in items)
        parts = [f"<p class=total>Total: <strong id=amount>{_e(total)}</strong></p>",
                 f"<table>{rows}</table>",
                 f"<p class=meta>Session <code>{_e(session_id)}</code> · "
                 f"status <b id=status>{_e(session['status'])}</b> · "
                 f"payment <b id=payment-status>{_e(session['payment_status'])}</b> · "
                 f"methods {_e(', '.join(session['payment_method_types']))}</p>"]
        if notice:
            parts.append(f"<p class=notice>{_e(notice)}</p>")
        action = f"/checkout/{_e(session_id)}/pay"
        if session["status"] == "open":
            parts.append(
                f"<form method=post action='{action}'>"
                "<input type=hidden name=outcome value=succeeded>"
                "<label><input type=checkbox name=delayed value=on> delayed notification "
                "(Alipay / WeChat Pay style)</label><br>"
                "<button type=submit id=pay>Pay</button></form>"
                f"<form method=post action='{action}'>"
                "<input type=hidden name=outcome value=failed>"
                "<button type=submit id=fail class=secondary>Fail payment</button></form>")
            if session.get("cancel_url"):
                parts.append(f"<p><a href='{_e(_with_session(session['cancel_url'], session_id))}'"
                             ">Cancel and go back</a></p>")
        else:
            paid = session["payment_status"] == "paid"
            outcome = {"expired": "This checkout session has expired.",
                       "complete": "Payment succeeded." if paid else
                       "Payment failed or is not confirmed."}.get(session["status"], "")
            target = session.get("success_url") if session["status"] == "complete" and paid \
                else session.get("cancel_url")
            parts.append(f"<p class=result id=result>{_e(outcome)}</p>")
            if target:
                parts.append(f"<p><a id=continue href='{_e(_with_session(target, session_id))}'"
                             ">Continue</a></p>")
        return 200, _html(f"Pay {total}", "".join(parts))


def _with_session(url: str, session_id: str) -> str:
    """Stripe fills `{CHECKOUT_SESSION_ID}` in success and cancel URLs."""
    return url.replace("{CHECKOUT_SESSION_ID}", session_id)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _html(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{_e(title)} · local Stripe checkout</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}"
        "table{width:100%;border-collapse:collapse}td{padding:.3rem 0}.num{text-align:right}"
        ".total{font-size:1.5rem}.meta{color:#666;font-size:.85rem}.notice{color:#b00}"
        "button{font-size:1rem;padding:.6rem 1.4rem;margin:.5rem 0;cursor:pointer}"
        ".secondary{background:#eee}</style></head><body>"
        f"<h1>{_e(title)}</h1><p class=meta>Local Stripe stand-in: no real money moves.</p>"
        f"{body}</body></html>")


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def _json_body(body: bytes) -> dict:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise StandInError("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise StandInError("The body must be a JSON object.")
    return data


def _handler_class(standin: StripeStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "StripeStandIn/1.0"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, out_headers, payload = standin.handle(self.command, self.path, headers,
                                                          body)
            self.send_response(status)
            for name, value in out_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("stand-in: " + format, *args)

    return Handler
