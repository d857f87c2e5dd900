"""A local stand-in for the parts of the Stripe API the platform calls, so local mode needs
no Stripe account and the official `stripe` SDK works against it unchanged:

    client = stripe.StripeClient("sk_test_local", base_addresses={"api": standin_url})

It serves, over HTTP from a daemon thread:

- `POST /v1/checkout/sessions` (`mode=payment` or `mode=subscription`),
  `GET /v1/checkout/sessions/{id}` (and `/line_items`), `POST /v1/checkout/sessions/{id}/expire`,
  `GET /v1/payment_intents/{id}`, `GET /v1/charges/{id}`, `POST /v1/refunds`,
  `GET /v1/refunds/{id}`, `GET /v1/disputes/{id}`, `GET /v1/events/{id}`: form-encoded
  bodies, `Authorization: Bearer sk_test_...`, `Idempotency-Key` replay, `expand[]`
  (also through lists: `data.product`), Stripe-shaped errors.
- Billing: `POST /v1/products`, `GET|POST /v1/products/{id}`, `GET /v1/products`;
  `POST /v1/prices`, `GET|POST /v1/prices/{id}` (unique `lookup_key`, moved by
  `transfer_lookup_key`), `GET /v1/prices` (`lookup_keys[]`, `product`, `active`, `type`);
  `POST /v1/customers`, `GET|POST /v1/customers/{id}`, `GET /v1/customers` (`email`);
  `GET /v1/subscriptions/{id}`, `GET /v1/subscriptions` (`customer`, `price`, `status`),
  `POST /v1/subscriptions/{id}` (`cancel_at_period_end`, `items[0][id|price|quantity]` with
  `proration_behavior`, `metadata`, `description`), `DELETE /v1/subscriptions/{id}`;
  `GET /v1/invoices/{id}` (and `/lines`), `GET /v1/invoices` (`customer`, `subscription`,
  `status`). A subscription starts from a paid Checkout Session in subscription mode; no
  events are sent for products, prices or customers.
- `GET /checkout/{session_id}`: the payment page a Checkout Session's `url` points to, whose
  buttons complete it (`POST /checkout/{session_id}/pay`, form or JSON
  `{"outcome": "succeeded" | "failed", "delayed": false}`).
- `POST /_standin/disputes` `{"payment_intent"}`, `POST /_standin/disputes/{id}/close`
  `{"won": true}`, `GET /_standin/events`, `POST /_standin/events/{id}/resend`.
- The life of a subscription, played on demand (the stand-in has no clock: each call is the
  moment the current period ends), `POST /_standin/subscriptions/{id}/renew`, `.../fail`,
  `.../lapse` (also served as `/_local/stripe/subscriptions/{id}/...`), or in-process
  `renew(id)`, `fail_renewal(id)`, `lapse(id)`:
  `renew` bills the next period (`invoice.paid`, `invoice.payment_succeeded`,
  `customer.subscription.updated`), or pays the open invoice of a past_due subscription, or
  ends one set to cancel at period end (`customer.subscription.deleted`); `fail` bills the
  next period and the payment fails (`invoice.payment_failed`, then
  `customer.subscription.updated` to past_due; again on a past_due one: another failed
  attempt); `lapse` cancels a past_due subscription, as Stripe does when retries run out
  (`customer.subscription.deleted`).

Objects are built on the real-shaped fixtures of `shared/fixtures/stripe` (changed only where
the stand-in knows better). Every event is serialised once, signed the way Stripe signs
(`Stripe-Signature: t=<ts>,v1=<HMAC-SHA256(secret, "<ts>.<body>")>`, a fresh timestamp per
attempt) and handed to `deliver(body, signature)` from one background worker, in order, with
Stripe-like retries. Everything lives in memory.
"""
from __future__ import annotations

import calendar
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
from datetime import UTC, datetime
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
_PRODUCT_PARAMS = frozenset({
    "active", "default_price_data", "description", "expand", "id", "images",
    "marketing_features", "metadata", "name", "package_dimensions", "shippable",
    "statement_descriptor", "tax_code", "unit_label", "url"})
_PRODUCT_UPDATE_PARAMS = frozenset({
    "active", "default_price", "description", "expand", "images", "marketing_features",
    "metadata", "name", "package_dimensions", "shippable", "statement_descriptor", "tax_code",
    "unit_label", "url"})
_PRODUCT_DATA_PARAMS = frozenset({
    "active", "id", "metadata", "name", "statement_descriptor", "tax_code", "unit_label"})
_PRICE_PARAMS = frozenset({
    "active", "billing_scheme", "currency", "currency_options", "custom_unit_amount", "expand",
    "lookup_key", "metadata", "nickname", "product", "product_data", "recurring",
    "tax_behavior", "tiers", "tiers_mode", "transfer_lookup_key", "transform_quantity",
    "unit_amount", "unit_amount_decimal"})
_PRICE_UPDATE_PARAMS = frozenset({
    "active", "currency_options", "expand", "lookup_key", "metadata", "nickname",
    "tax_behavior", "transfer_lookup_key"})
_PRICE_LIST_PARAMS = frozenset({
    "active", "created", "currency", "ending_before", "expand", "limit", "lookup_keys",
    "product", "recurring", "starting_after", "type"})
_PRODUCT_LIST_PARAMS = frozenset({
    "active", "created", "ending_before", "expand", "ids", "limit", "shippable",
    "starting_after", "url"})
_CUSTOMER_PARAMS = frozenset({
    "address", "balance", "cash_balance", "description", "email", "expand", "invoice_prefix",
    "invoice_settings", "metadata", "name", "next_invoice_sequence", "payment_method", "phone",
    "preferred_locales", "shipping", "source", "tax", "tax_exempt", "tax_id_data",
    "test_clock", "validate"})
_CUSTOMER_UPDATE_PARAMS = _CUSTOMER_PARAMS - {"payment_method", "tax_id_data", "test_clock"} \
    | {"default_source"}
_CUSTOMER_LIST_PARAMS = frozenset({
    "created", "email", "ending_before", "expand", "limit", "starting_after", "test_clock"})
_SUBSCRIPTION_DATA_PARAMS = frozenset({
    "application_fee_percent", "billing_cycle_anchor", "billing_mode", "default_tax_rates",
    "description", "invoice_settings", "metadata", "on_behalf_of", "proration_behavior",
    "transfer_data", "trial_end", "trial_period_days", "trial_settings"})
_SUBSCRIPTION_UPDATE_PARAMS = frozenset({
    "add_invoice_items", "application_fee_percent", "automatic_tax", "billing_cycle_anchor",
    "cancel_at", "cancel_at_period_end", "cancellation_details", "collection_method",
    "days_until_due", "default_payment_method", "default_source", "default_tax_rates",
    "description", "discounts", "expand", "invoice_settings", "items", "metadata",
    "off_session", "on_behalf_of", "pause_collection", "payment_behavior", "payment_settings",
    "pending_invoice_item_interval", "proration_behavior", "proration_date", "transfer_data",
    "trial_end", "trial_from_plan", "trial_settings"})
_SUBSCRIPTION_LIST_PARAMS = frozenset({
    "automatic_tax", "collection_method", "created", "current_period_end",
    "current_period_start", "customer", "customer_account", "ending_before", "expand", "limit",
    "price", "starting_after", "status", "test_clock"})
_SUBSCRIPTION_CANCEL_PARAMS = frozenset({"cancellation_details", "expand", "invoice_now",
                                         "prorate"})
_INVOICE_LIST_PARAMS = frozenset({
    "collection_method", "created", "customer", "customer_account", "due_date",
    "ending_before", "expand", "limit", "starting_after", "status", "subscription"})
_INTERVALS = ("day", "week", "month", "year")
_MAX_INTERVAL_COUNT = {"day": 1095, "week": 156, "month": 36, "year": 3}  # three years
_SINGLE_USE_METHODS = ("alipay", "wechat_pay")  # never in subscription mode
_PRORATIONS = ("always_invoice", "create_prorations", "none")
_SUBSCRIPTION_STATUSES = ("active", "canceled", "incomplete", "incomplete_expired",
                          "past_due", "paused", "trialing", "unpaid")
_ENDED = ("canceled", "incomplete_expired")
_FEEDBACK = ("customer_service", "low_quality", "missing_features", "other",
             "switched_service", "too_complex", "too_expensive", "unused")
_RETRY_AFTER = 3 * 86400  # when a failed invoice payment is tried again


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


def _unknown_params(params: dict, known: frozenset[str], prefix: str = "") -> None:
    for name in params:
        if name not in known:
            param = f"{prefix}[{name}]" if prefix else name
            raise StandInError(f"Received unknown parameter: {param}", param=param,
                               code="parameter_unknown")


def _unsupported(params: dict, names: frozenset[str] | set[str], where: str,
                 prefix: str = "") -> None:
    """Parameters Stripe takes that the stand-in does not play: refused, never ignored."""
    for name in sorted(names):
        if params.get(name) not in (None, "", [], {}):
            param = f"{prefix}[{name}]" if prefix else name
            raise StandInError(f"The local Stripe stand-in does not support `{param}` on "
                               f"{where}.", param=param)


def _bool(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise StandInError(f"Invalid boolean: {value}", param=param)


def _currency(value: Any, param: str) -> str:
    currency = str(value or "").lower()
    if not re.fullmatch(r"[a-z]{3}", currency):
        raise StandInError(f"Invalid currency: {currency or '(none)'}", param=param)
    return currency


def _text(value: Any, param: str, maximum: int = 5000) -> str | None:
    """An optional string parameter; "" unsets it, as on Stripe."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise StandInError(f"Invalid string: {value}", param=param)
    if len(value) > maximum:
        raise StandInError(f"{param} can be at most {maximum} characters.", param=param)
    return value


def _merge_metadata(existing: dict[str, str], value: Any, param: str = "metadata"
                    ) -> dict[str, str]:
    """An update's metadata on Stripe: keys given are set, a key set to "" is removed, and
    `metadata=""` removes them all."""
    if value == "":
        return {}
    raw = _dict(value, param)
    merged = {k: v for k, v in existing.items() if raw.get(k) != ""}
    merged.update(_metadata(raw, param))
    if len(merged) > 50:
        raise StandInError("Metadata can have at most 50 keys.", param=param)
    return merged


def _shift(timestamp: int, interval: str, count: int) -> int:
    """`timestamp` moved on by `count` intervals. Months and years are calendar ones (UTC); a
    day the shorter month lacks becomes its last day, as Stripe bills the 31st."""
    if interval == "day":
        return timestamp + count * 86400
    if interval == "week":
        return timestamp + count * 7 * 86400
    start = datetime.fromtimestamp(timestamp, UTC)
    index = start.month - 1 + count * (12 if interval == "year" else 1)
    year, month = start.year + index // 12, index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())


def _prorate(amount: int, remaining: int, period: int) -> int:
    """`amount` for `remaining` seconds of a `period`, in integer minor units, half up."""
    if period <= 0:
        return 0
    sign_ = -1 if amount < 0 else 1
    return sign_ * ((abs(amount) * remaining * 2 + period) // (2 * period))


def _per(recurring: dict | None) -> str:
    """` / month`, ` every 3 months`, or "" for a one-time price."""
    if not recurring:
        return ""
    count = recurring.get("interval_count") or 1
    return f" / {recurring['interval']}" if count == 1 else \
        f" every {count} {recurring['interval']}s"


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
        self._products: dict[str, dict] = {}
        self._prices: dict[str, dict] = {}
        self._customers: dict[str, dict] = {}
        self._subscriptions: dict[str, dict] = {}
        self._invoices: dict[str, dict] = {}
        self._subscription_data: dict[str, dict] = {}  # session id -> subscription_data
        self._pending_lines: dict[str, list[dict]] = {}  # subscription id -> prorations
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
        """A copy of any object by id (`cs_`, `pi_`, `ch_`, `re_`, `dp_`, `evt_`, `prod_`,
        `price_`, `cus_`, `sub_`, `in_`)."""
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
        one action are queued together and in order). `previous`: the object before an
        `*.updated`, whose changed fields become `data.previous_attributes`."""
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
            event["data"]["previous_attributes"] = {
                k: copy.deepcopy(v) for k, v in previous.items() if obj.get(k) != v}
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
        """`POST /v1/checkout/sessions` with decoded params; returns the session (a copy).

        `mode=subscription` takes one line item with a recurring price (a `price` id or
        `price_data[recurring]`), `customer` or `customer_email`, and
        `subscription_data[metadata|description]`; it refuses what Stripe refuses there
        (Alipay, WeChat Pay, one-time prices, `payment_intent_data`, ...)."""
        _unknown_params(params, _SESSION_PARAMS)
        mode = params.get("mode")
        if not mode:
            raise StandInError("Missing required param: mode.", param="mode")
        if mode not in ("payment", "subscription"):
            raise StandInError(f"The local Stripe stand-in supports mode=payment and "
                               f"mode=subscription only, not {mode!r}.", param="mode")
        subscribing = mode == "subscription"
        if subscribing:
            for name in ("payment_intent_data", "customer_creation", "invoice_creation",
                         "submit_type"):
                if params.get(name) not in (None, "", {}):
                    raise StandInError(f"You can not pass `{name}` in `subscription` mode.",
                                       param=name)
        elif params.get("subscription_data") not in (None, "", {}):
            raise StandInError("You can not pass `subscription_data` in `payment` mode.",
                               param="subscription_data")
        raw_items = params.get("line_items")
        if not isinstance(raw_items, list) or not raw_items:
            raise StandInError(f"line_items is required in {mode} mode.", param="line_items")
        types = params.get("payment_method_types") or ["card"]
        if not isinstance(types, list) or not all(isinstance(t, str) and t for t in types):
            raise StandInError("Invalid array", param="payment_method_types")
        if subscribing:
            for kind in types:
                if kind in _SINGLE_USE_METHODS:
                    raise StandInError(f"The payment method `{kind}` cannot be used in "
                                       "`subscription` mode.", param="payment_method_types")
        customer_id = params.get("customer") or None
        if customer_id is not None and params.get("customer_email"):
            raise StandInError("You may only specify one of these parameters: customer, "
                               "customer_email.", param="customer_email")
        subscription_data = self._session_subscription_data(params) if subscribing else {}
        with self._lock:
            if customer_id is not None and customer_id not in self._customers:
                raise _missing("customer", str(customer_id), "customer")
            items, currency, staged = [], None, []
            for i, raw in enumerate(raw_items):
                item = self._line_item(raw, f"line_items[{i}]", staged)
                recurring = item["price"]["type"] == "recurring"
                if recurring and not subscribing:
                    raise StandInError("You specified `payment` mode but passed a recurring "
                                       "price. Either switch to `subscription` mode or use "
                                       "only one-time prices.", param=f"line_items[{i}]")
                if currency is not None and item["currency"] != currency:
                    raise StandInError("All line items must have the same currency.",
                                       param=f"line_items[{i}][price_data][currency]")
                currency = item["currency"]
                items.append(item)
        if subscribing:
            if not any(item["price"]["type"] == "recurring" for item in items):
                raise StandInError("You must provide at least one recurring price in "
                                   "`subscription` mode when using prices.",
                                   param="line_items")
            if len(items) != 1:
                raise StandInError("The local Stripe stand-in takes exactly one line item, "
                                   "with a recurring price, in subscription mode (Stripe "
                                   "would bill further items on the first invoice).",
                                   param="line_items")
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
            "customer": customer_id,
            "customer_details": None,
            "customer_email": params.get("customer_email") or None,
            "expires_at": expires_at,
            "invoice": None,
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
            "subscription": None,
            "success_url": params.get("success_url") or None,
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": params.get("ui_mode") or "hosted",
            "url": f"{self.page_base}/checkout/{session_id}",
        })
        if subscribing:
            session["invoice_creation"] = None
        elif "invoice_creation" in session:
            session["invoice_creation"] = {"enabled": False,
                                           **{k: v for k, v in session["invoice_creation"]
                                              .items() if k != "enabled"}}
        with self._lock:
            self._sessions[session_id] = session
            self._line_items[session_id] = items
            self._intent_metadata[session_id] = _metadata(intent_data.get("metadata"),
                                                          "payment_intent_data[metadata]")
            if subscribing:
                self._subscription_data[session_id] = subscription_data
            for obj in staged:  # inline products and prices, kept now the session exists
                store = self._products if obj["object"] == "product" else self._prices
                store[obj["id"]] = obj
            return copy.deepcopy(session)

    @staticmethod
    def _session_subscription_data(params: dict) -> dict:
        data = _dict(params.get("subscription_data"), "subscription_data")
        _unknown_params(data, _SUBSCRIPTION_DATA_PARAMS, "subscription_data")
        _unsupported(data, _SUBSCRIPTION_DATA_PARAMS - {"description", "metadata"},
                     "Checkout Sessions (no trials or Connect here)", "subscription_data")
        return {"metadata": _metadata(data.get("metadata"), "subscription_data[metadata]"),
                "description": _text(data.get("description"), "subscription_data[description]",
                                     500)}

    def _line_item(self, raw: Any, param: str, staged: list[dict]) -> dict:
        """One line item (call with the lock held): a stored `price`, or `price_data`, whose
        price (inactive, as on Stripe) and product (from `product_data`) go to `staged`, kept
        once the session is made."""
        if not isinstance(raw, dict):
            raise StandInError("Invalid line item.", param=param)
        if raw.get("price") not in (None, "") and raw.get("price_data") not in (None, ""):
            raise StandInError("You may only specify one of these parameters: price, "
                               "price_data.", param=f"{param}[price]")
        if raw.get("price") not in (None, ""):
            stored = self._prices.get(str(raw["price"]))
            if stored is None:
                raise _missing("price", str(raw["price"]), f"{param}[price]")
            if not stored["active"]:
                raise StandInError("The price specified is inactive. This field only accepts "
                                   "active prices.", param=f"{param}[price]")
            price = copy.deepcopy(stored)
            product_name = self._products.get(price["product"], {}).get("name")
            description = product_name
            label = product_name or price["product"]
        else:
            price, label, description = self._inline_price(raw, param, staged)
        if raw.get("quantity") in (None, ""):
            raise StandInError("Quantity is required.", param=f"{param}[quantity]")
        quantity = _int(raw["quantity"], f"{param}[quantity]", 1)
        amount = price["unit_amount"] * quantity
        return {
            "id": new_id("li_"),
            "object": "item",
            "amount_discount": 0,
            "amount_subtotal": amount,
            "amount_tax": 0,
            "amount_total": amount,
            "currency": price["currency"],
            "description": description if description is not None else
            (label if raw.get("price") not in (None, "") else None),
            "price": price,
            "quantity": quantity,
        }

    def _inline_price(self, raw: dict, param: str, staged: list[dict]
                      ) -> tuple[dict, str, str | None]:
        data = _dict(raw.get("price_data"), f"{param}[price_data]")
        if not data:
            raise StandInError("You must specify either `price` or `price_data` for each line "
                               "item.", param=f"{param}[price_data]")
        currency = _currency(data.get("currency"), f"{param}[price_data][currency]")
        if data.get("unit_amount") in (None, ""):
            raise StandInError("Missing required param: unit_amount.",
                               param=f"{param}[price_data][unit_amount]")
        unit = _int(data["unit_amount"], f"{param}[price_data][unit_amount]", 0)
        product_data = _dict(data.get("product_data"), f"{param}[price_data][product_data]")
        product_id = data.get("product") or None
        name = product_data.get("name") or product_id
        if not name:
            raise StandInError("You must specify either `product` or `product_data` when "
                               "creating a price.", param=f"{param}[price_data][product_data]")
        recurring = self._recurring(data.get("recurring"), f"{param}[price_data][recurring]")
        if product_data:
            product = self._new_product(product_data, f"{param}[price_data][product_data]")
            staged.append(product)
            product_id = product["id"]
        elif product_id in self._products:
            name = self._products[product_id]["name"]
        else:
            product_id = product_id or new_id("prod_", 14)
        price = self._new_price(str(product_id), currency, unit, recurring, active=False)
        staged.append(price)
        return copy.deepcopy(price), str(name), (str(name) if product_data else None)

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
        `checkout.session.async_payment_failed`.

        In subscription mode (cards only, so never `delayed`): `succeeded` creates the Customer
        (unless the session names one), the Subscription and its paid first Invoice and sends
        `customer.subscription.created`, `invoice.paid`, `invoice.payment_succeeded`, then
        `checkout.session.completed`; `failed` is a declined card: the session stays open,
        nothing is created and no event is sent."""
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
                return self._pay_subscription(session, outcome, delayed)
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

    def _customer_details(self, session: dict) -> dict:
        customer = self._customers.get(session.get("customer") or "") or {}
        return {"address": None, "business_name": None,
                "email": customer.get("email") or session.get("customer_email")
                or "buyer@example.com",
                "individual_name": None, "name": customer.get("name"), "phone": None,
                "tax_exempt": "none", "tax_ids": []}

    def _pay_subscription(self, session: dict, outcome: str, delayed: bool) -> list[str]:
        if delayed:
            raise StandInError("A delayed notification is how Alipay and WeChat Pay pay, and "
                               "subscription mode takes neither: pay or fail the card.",
                               param="delayed")
        if outcome == "failed":  # a declined card: Checkout asks for another one
            return []
        [item] = self._line_items[session["id"]]
        customer = self._customers.get(session.get("customer") or "")
        if customer is None:
            customer = self._new_customer(session.get("customer_email") or "buyer@example.com")
            self._customers[customer["id"]] = customer
        data = self._subscription_data.get(session["id"], {})
        now = int(time.time())
        subscription = self._new_subscription(customer, item["price"], item["quantity"],
                                              data.get("metadata") or {},
                                              data.get("description"), now)
        self._subscriptions[subscription["id"]] = subscription
        first = subscription["items"]["data"][0]
        invoice = self._new_invoice(subscription, "subscription_create", [
            self._cycle_line(subscription, first["current_period_start"],
                             first["current_period_end"])], now, now)
        self._settle(invoice, paid=True)
        subscription["latest_invoice"] = invoice["id"]
        session.update({"status": "complete", "payment_status": "paid",
                        "customer": customer["id"], "subscription": subscription["id"],
                        "invoice": invoice["id"], "url": None})
        session["customer_details"] = self._customer_details(session)
        return [self._emit("customer.subscription.created", subscription),
                *self._invoice_paid_events(invoice),
                self._emit("checkout.session.completed", session)]

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

    # -- products and prices ------------------------------------------------------------------

    def _new_product(self, params: dict, prefix: str = "") -> dict:
        """A product from `POST /v1/products` params (or a session's `product_data`)."""
        def name_of(field: str) -> str:
            return f"{prefix}[{field}]" if prefix else field

        name = params.get("name")
        if not isinstance(name, str) or not name.strip():
            raise StandInError(f"Missing required param: {name_of('name')}.",
                               param=name_of("name"))
        product_id = params.get("id") or new_id("prod_", 14)
        if not isinstance(product_id, str) or \
                not re.fullmatch(r"[A-Za-z0-9_\-]{1,255}", product_id):
            raise StandInError(f"Invalid id: {product_id}", param=name_of("id"))
        if product_id in self._products:
            raise StandInError("Product already exists.", param=name_of("id"),
                               code="resource_already_exists")
        images = params.get("images") or []
        if not isinstance(images, list) or len(images) > 8:
            raise StandInError("Invalid array", param=name_of("images"))
        now = int(time.time())
        return {
            "id": product_id,
            "object": "product",
            "active": _bool(params.get("active", True), name_of("active")),
            "created": now,
            "default_price": None,
            "description": _text(params.get("description"), name_of("description"), 40000),
            "images": list(images),
            "livemode": False,
            "marketing_features": [],
            "metadata": _metadata(params.get("metadata"), name_of("metadata")),
            "name": name,
            "package_dimensions": None,
            "shippable": None if params.get("shippable") in (None, "")
            else _bool(params["shippable"], name_of("shippable")),
            "statement_descriptor": _text(params.get("statement_descriptor"),
                                          name_of("statement_descriptor"), 22),
            "tax_code": _text(params.get("tax_code"), name_of("tax_code")),
            "type": "service",
            "unit_label": _text(params.get("unit_label"), name_of("unit_label"), 12),
            "updated": now,
            "url": _text(params.get("url"), name_of("url")),
        }

    def create_product(self, params: dict[str, Any]) -> dict:
        """`POST /v1/products`: `name`, optional `id`, `metadata`, `description`, `active`."""
        _unknown_params(params, _PRODUCT_PARAMS)
        _unsupported(params, {"default_price_data", "marketing_features",
                              "package_dimensions"}, "products")
        with self._lock:
            product = self._new_product(params)
            self._products[product["id"]] = product
            return copy.deepcopy(product)

    def update_product(self, product_id: str, params: dict[str, Any]) -> dict:
        """`POST /v1/products/{id}`: `name`, `active`, `metadata` (merged), `description`..."""
        _unknown_params(params, _PRODUCT_UPDATE_PARAMS)
        _unsupported(params, {"default_price", "marketing_features", "package_dimensions"},
                     "products")
        with self._lock:
            product = self._stored(self._products, "product", product_id)
            changes: dict[str, Any] = {}
            if "name" in params:
                if not isinstance(params["name"], str) or not params["name"].strip():
                    raise StandInError("A product's name cannot be empty.", param="name")
                changes["name"] = params["name"]
            if "active" in params:
                changes["active"] = _bool(params["active"], "active")
            if "metadata" in params:
                changes["metadata"] = _merge_metadata(product["metadata"], params["metadata"])
            for field, most in (("description", 40000), ("statement_descriptor", 22),
                                ("tax_code", 5000), ("unit_label", 12), ("url", 5000)):
                if field in params:
                    changes[field] = _text(params[field], field, most)
            if "images" in params:
                images = params["images"] or []
                if not isinstance(images, list) or len(images) > 8:
                    raise StandInError("Invalid array", param="images")
                changes["images"] = list(images)
            if "shippable" in params:
                changes["shippable"] = _bool(params["shippable"], "shippable")
            product.update(changes, updated=int(time.time()))
            return copy.deepcopy(product)

    def list_products(self, params: dict[str, Any]) -> dict:
        """`GET /v1/products`: `active`, `ids[]`, `shippable`, `url`, newest first."""
        _unknown_params(params, _PRODUCT_LIST_PARAMS)
        _unsupported(params, {"created"}, "product lists")
        products = list(reversed(self._products.values()))
        if params.get("active") not in (None, ""):
            active = _bool(params["active"], "active")
            products = [p for p in products if p["active"] is active]
        if params.get("ids") not in (None, ""):
            ids = params["ids"]
            if not isinstance(ids, list):
                raise StandInError("Invalid array", param="ids")
            products = [p for p in products if p["id"] in ids]
        if params.get("shippable") not in (None, ""):
            shippable = _bool(params["shippable"], "shippable")
            products = [p for p in products if p["shippable"] is shippable]
        if params.get("url") not in (None, ""):
            products = [p for p in products if p["url"] == params["url"]]
        return self._list_page(products, params, "/v1/products", "product")

    def _recurring(self, value: Any, param: str) -> dict | None:
        if value in (None, ""):
            return None
        data = _dict(value, param)
        _unknown_params(data, frozenset({"interval", "interval_count", "meter",
                                         "trial_period_days", "usage_type"}), param)
        _unsupported(data, {"meter", "trial_period_days"}, "prices", param)
        if data.get("usage_type") not in (None, "", "licensed"):
            raise StandInError(f"The local Stripe stand-in does not support "
                               f"{param}[usage_type]={data['usage_type']}: licensed only.",
                               param=f"{param}[usage_type]")
        interval = data.get("interval")
        if interval in (None, ""):
            raise StandInError(f"Missing required param: {param}[interval].",
                               param=f"{param}[interval]")
        if interval not in _INTERVALS:
            raise StandInError(f"Invalid {param}[interval]: must be one of day, week, month, "
                               "or year", param=f"{param}[interval]")
        count = 1 if data.get("interval_count") in (None, "") else \
            _int(data["interval_count"], f"{param}[interval_count]", 1)
        if count > _MAX_INTERVAL_COUNT[interval]:
            raise StandInError("The maximum billing interval is 3 years (36 months, 156 weeks "
                               "or 1095 days).", param=f"{param}[interval_count]")
        return {"interval": interval, "interval_count": count, "meter": None,
                "trial_period_days": None, "usage_type": "licensed"}

    def _fixture_item(self) -> dict:
        """The subscription item of the subscription fixture (a price and a plan)."""
        data = (self._fixture("subscription").get("items") or {}).get("data") or [{}]
        return data[0]

    def _new_price(self, product: str, currency: str, unit: int, recurring: dict | None, *,
                   active: bool = True, lookup_key: str | None = None,
                   metadata: dict[str, str] | None = None, nickname: str | None = None,
                   tax_behavior: str = "unspecified") -> dict:
        price = self._fixture_item().get("price") or {}
        price.update({
            "id": new_id("price_"),
            "object": "price",
            "active": active,
            "billing_scheme": "per_unit",
            "created": int(time.time()),
            "currency": currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": lookup_key,
            "metadata": dict(metadata or {}),
            "nickname": nickname,
            "product": product,
            "recurring": copy.deepcopy(recurring),
            "tax_behavior": tax_behavior,
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "recurring" if recurring else "one_time",
            "unit_amount": unit,
            "unit_amount_decimal": str(unit),
        })
        return price

    def _claim_lookup_key(self, key: str | None, transfer: bool, owner: str | None = None
                          ) -> None:
        """Lookup keys are unique across prices: taken from the price holding one only with
        `transfer_lookup_key` (call with the lock held, after every other check)."""
        if key is None:
            return
        for other in self._prices.values():
            if other["lookup_key"] == key and other["id"] != owner:
                if not transfer:
                    raise StandInError(f"A price (`{other['id']}`) already uses that lookup "
                                       "key.", param="lookup_key")
                other["lookup_key"] = None

    @staticmethod
    def _tax_behavior(value: Any) -> str:
        behavior = value or "unspecified"
        if behavior not in ("exclusive", "inclusive", "unspecified"):
            raise StandInError("Invalid tax_behavior: must be one of exclusive, inclusive, or "
                               "unspecified", param="tax_behavior")
        return str(behavior)

    def create_price(self, params: dict[str, Any]) -> dict:
        """`POST /v1/prices`: `product` or `product_data[name]`, `currency`, `unit_amount`,
        `recurring[interval|interval_count]`, `lookup_key` (+ `transfer_lookup_key`),
        `nickname`, `metadata`, `active`, `tax_behavior`."""
        _unknown_params(params, _PRICE_PARAMS)
        _unsupported(params, {"currency_options", "custom_unit_amount", "tiers", "tiers_mode",
                              "transform_quantity", "unit_amount_decimal"}, "prices")
        if params.get("billing_scheme") not in (None, "", "per_unit"):
            raise StandInError("The local Stripe stand-in supports billing_scheme=per_unit "
                               "only.", param="billing_scheme")
        if params.get("currency") in (None, ""):
            raise StandInError("Missing required param: currency.", param="currency")
        currency = _currency(params["currency"], "currency")
        if params.get("unit_amount") in (None, ""):
            raise StandInError("Missing required param: unit_amount.", param="unit_amount")
        unit = _int(params["unit_amount"], "unit_amount", 0)
        recurring = self._recurring(params.get("recurring"), "recurring")
        lookup_key = _text(params.get("lookup_key"), "lookup_key", 200)
        transfer = _bool(params.get("transfer_lookup_key", False), "transfer_lookup_key")
        active = _bool(params.get("active", True), "active")
        metadata = _metadata(params.get("metadata"))
        nickname = _text(params.get("nickname"), "nickname")
        tax_behavior = self._tax_behavior(params.get("tax_behavior"))
        product_id = params.get("product") or None
        product_data = _dict(params.get("product_data"), "product_data")
        if product_id and product_data:
            raise StandInError("You may only specify one of these parameters: product, "
                               "product_data.", param="product")
        if not product_id and not product_data:
            raise StandInError("You must specify either `product` or `product_data` when "
                               "creating a price.", param="product")
        _unknown_params(product_data, _PRODUCT_DATA_PARAMS, "product_data")
        with self._lock:
            if product_id is not None and product_id not in self._products:
                raise _missing("product", str(product_id), "product")
            product = self._new_product(product_data, "product_data") if product_data else None
            self._claim_lookup_key(lookup_key, transfer)
            if product is not None:
                self._products[product["id"]] = product
                product_id = product["id"]
            price = self._new_price(str(product_id), currency, unit, recurring, active=active,
                                    lookup_key=lookup_key, metadata=metadata,
                                    nickname=nickname, tax_behavior=tax_behavior)
            self._prices[price["id"]] = price
            return copy.deepcopy(price)

    def update_price(self, price_id: str, params: dict[str, Any]) -> dict:
        """`POST /v1/prices/{id}`: `active`, `metadata` (merged), `nickname`, `lookup_key`
        ("" removes it; another price's only with `transfer_lookup_key`), `tax_behavior`."""
        _unknown_params(params, _PRICE_UPDATE_PARAMS)
        _unsupported(params, {"currency_options"}, "prices")
        transfer = _bool(params.get("transfer_lookup_key", False), "transfer_lookup_key")
        with self._lock:
            price = self._stored(self._prices, "price", price_id)
            changes: dict[str, Any] = {}
            if "active" in params:
                changes["active"] = _bool(params["active"], "active")
            if "metadata" in params:
                changes["metadata"] = _merge_metadata(price["metadata"], params["metadata"])
            if "nickname" in params:
                changes["nickname"] = _text(params["nickname"], "nickname")
            if "tax_behavior" in params:
                changes["tax_behavior"] = self._tax_behavior(params["tax_behavior"])
            if "lookup_key" in params:
                changes["lookup_key"] = _text(params["lookup_key"], "lookup_key", 200)
                self._claim_lookup_key(changes["lookup_key"], transfer, owner=price_id)
            price.update(changes)
            return copy.deepcopy(price)

    def list_prices(self, params: dict[str, Any]) -> dict:
        """`GET /v1/prices`: `lookup_keys[]` (at most 10), `product`, `active`, `currency`,
        `type`, `recurring[interval]`, newest first."""
        _unknown_params(params, _PRICE_LIST_PARAMS)
        _unsupported(params, {"created"}, "price lists")
        prices = list(reversed(self._prices.values()))
        keys = params.get("lookup_keys")
        if keys not in (None, ""):
            if not isinstance(keys, list):
                raise StandInError("Invalid array", param="lookup_keys")
            if len(keys) > 10:
                raise StandInError("You may pass at most 10 lookup keys.",
                                   param="lookup_keys")
            prices = [p for p in prices if p["lookup_key"] in keys]
        if params.get("product") not in (None, ""):
            prices = [p for p in prices if p["product"] == params["product"]]
        if params.get("active") not in (None, ""):
            active = _bool(params["active"], "active")
            prices = [p for p in prices if p["active"] is active]
        if params.get("currency") not in (None, ""):
            currency = _currency(params["currency"], "currency")
            prices = [p for p in prices if p["currency"] == currency]
        if params.get("type") not in (None, ""):
            if params["type"] not in ("one_time", "recurring"):
                raise StandInError("Invalid type: must be one of one_time or recurring",
                                   param="type")
            prices = [p for p in prices if p["type"] == params["type"]]
        recurring = _dict(params.get("recurring"), "recurring")
        _unknown_params(recurring, frozenset({"interval", "meter", "usage_type"}), "recurring")
        if recurring.get("interval"):
            prices = [p for p in prices
                      if (p["recurring"] or {}).get("interval") == recurring["interval"]]
        return self._list_page(prices, params, "/v1/prices", "price")

    # -- customers ----------------------------------------------------------------------------

    def _new_customer(self, email: str | None, name: str | None = None,
                      metadata: dict[str, str] | None = None, description: str | None = None,
                      phone: str | None = None, locales: list[str] | None = None) -> dict:
        customer = self._fixture("customer")
        customer.update({
            "id": new_id("cus_", 14),
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": int(time.time()),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": description,
            "discount": None,
            "email": email,
            "invoice_prefix": "".join(secrets.choice("0123456789ABCDEF") for _ in range(8)),
            "livemode": False,
            "metadata": dict(metadata or {}),
            "name": name,
            "next_invoice_sequence": 1,
            "phone": phone,
            "preferred_locales": list(locales or []),
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        })
        return customer

    @staticmethod
    def _customer_fields(params: dict) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if "email" in params:
            email = _text(params["email"], "email", 512)
            if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
                raise StandInError(f"Invalid email address: {email}", param="email",
                                   code="email_invalid")
            fields["email"] = email
        for field, most in (("name", 256), ("description", 350), ("phone", 20)):
            if field in params:
                fields[field] = _text(params[field], field, most)
        if "preferred_locales" in params:
            locales = params["preferred_locales"] or []
            if not isinstance(locales, list):
                raise StandInError("Invalid array", param="preferred_locales")
            fields["preferred_locales"] = list(locales)
        return fields

    _CUSTOMER_UNSUPPORTED = frozenset({
        "address", "balance", "cash_balance", "default_source", "invoice_prefix",
        "invoice_settings", "next_invoice_sequence", "payment_method", "shipping", "source",
        "tax", "tax_exempt", "tax_id_data", "test_clock", "validate"})

    def create_customer(self, params: dict[str, Any]) -> dict:
        """`POST /v1/customers`: `email`, `name`, `metadata`, `description`, `phone`,
        `preferred_locales`."""
        _unknown_params(params, _CUSTOMER_PARAMS)
        _unsupported(params, self._CUSTOMER_UNSUPPORTED, "customers")
        fields = self._customer_fields(params)
        customer = self._new_customer(fields.get("email"), fields.get("name"),
                                      _metadata(params.get("metadata")),
                                      fields.get("description"), fields.get("phone"),
                                      fields.get("preferred_locales"))
        with self._lock:
            self._customers[customer["id"]] = customer
            return copy.deepcopy(customer)

    def update_customer(self, customer_id: str, params: dict[str, Any]) -> dict:
        """`POST /v1/customers/{id}`: the fields of create; `metadata` is merged."""
        _unknown_params(params, _CUSTOMER_UPDATE_PARAMS)
        _unsupported(params, self._CUSTOMER_UNSUPPORTED, "customers")
        fields = self._customer_fields(params)
        with self._lock:
            customer = self._stored(self._customers, "customer", customer_id)
            if "metadata" in params:
                fields["metadata"] = _merge_metadata(customer["metadata"], params["metadata"])
            customer.update(fields)
            return copy.deepcopy(customer)

    def list_customers(self, params: dict[str, Any]) -> dict:
        """`GET /v1/customers`: `email` (exact, case-sensitive as on Stripe), newest first."""
        _unknown_params(params, _CUSTOMER_LIST_PARAMS)
        _unsupported(params, {"created", "test_clock"}, "customer lists")
        customers = list(reversed(self._customers.values()))
        if params.get("email") not in (None, ""):
            customers = [c for c in customers if c["email"] == params["email"]]
        return self._list_page(customers, params, "/v1/customers", "customer")

    # -- subscriptions and invoices -----------------------------------------------------------

    def _plan(self, price: dict) -> dict:
        plan = self._fixture_item().get("plan") or {}
        recurring = price["recurring"] or {}
        plan.update({
            "id": price["id"],
            "object": "plan",
            "active": price["active"],
            "amount": price["unit_amount"],
            "amount_decimal": price["unit_amount_decimal"],
            "billing_scheme": "per_unit",
            "created": price["created"],
            "currency": price["currency"],
            "interval": recurring.get("interval"),
            "interval_count": recurring.get("interval_count"),
            "livemode": False,
            "metadata": dict(price["metadata"]),
            "meter": None,
            "nickname": price["nickname"],
            "product": price["product"],
            "tiers_mode": None,
            "transform_usage": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        })
        return plan

    def _new_subscription(self, customer: dict, price: dict, quantity: int,
                          metadata: dict[str, str], description: str | None, now: int) -> dict:
        subscription_id = new_id("sub_")
        recurring = price["recurring"]
        item = self._fixture_item()
        item.update({
            "id": new_id("si_", 14),
            "object": "subscription_item",
            "billing_thresholds": None,
            "created": now,
            "current_period_start": now,
            "current_period_end": _shift(now, recurring["interval"],
                                         recurring["interval_count"]),
            "discounts": [],
            "metadata": {},
            "plan": self._plan(price),
            "price": copy.deepcopy(price),
            "quantity": quantity,
            "subscription": subscription_id,
            "tax_rates": [],
        })
        subscription = self._fixture("subscription")
        payment_settings = subscription.get("payment_settings") or {}
        subscription.update({
            "id": subscription_id,
            "object": "subscription",
            "billing_cycle_anchor": now,
            "billing_cycle_anchor_config": None,
            "billing_schedules": [],
            "billing_thresholds": None,
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "cancellation_details": {"comment": None, "feedback": None, "reason": None},
            "created": now,
            "currency": price["currency"],
            "customer": customer["id"],
            "default_payment_method": new_id("pm_"),
            "description": description,
            "discounts": [],
            "ended_at": None,
            "items": {"data": [item], "has_more": False, "object": "list",
                      "url": f"/v1/subscription_items?subscription={subscription_id}"},
            "latest_invoice": None,
            "livemode": False,
            "managed_payments": {"enabled": False},
            "metadata": dict(metadata),
            "next_pending_invoice_item_invoice": None,
            "pause_collection": None,
            "payment_settings": {**payment_settings, "payment_method_options": None,
                                 "payment_method_types": None,
                                 "save_default_payment_method": "off"},
            "pending_invoice_item_interval": None,
            "pending_setup_intent": None,
            "pending_update": None,
            "schedule": None,
            "start_date": now,
            "status": "active",
            "test_clock": None,
            "transfer_data": None,
            "trial_end": None,
            "trial_start": None,
        })
        if customer.get("currency") is None:
            customer["currency"] = price["currency"]
        return subscription

    def _line(self, subscription: dict, amount: int, start: int, end: int, description: str,
              proration: bool = False, price: dict | None = None) -> dict:
        """One invoice line of the subscription's item: its cycle, or a proration (an invoice
        item, as Stripe bills prorations)."""
        item = subscription["items"]["data"][0]
        price = price or item["price"]
        data = (self._fixture("invoice").get("lines") or {}).get("data") or [{}]
        line = data[0]
        if proration:
            parent = {"invoice_item_details": {
                "invoice_item": new_id("ii_"), "proration": True,
                "proration_details": {"credited_items": None},
                "subscription": subscription["id"]},
                "subscription_item_details": None, "type": "invoice_item_details"}
        else:
            parent = {"invoice_item_details": None, "subscription_item_details": {
                "invoice_item": None, "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": subscription["id"], "subscription_item": item["id"]},
                "type": "subscription_item_details"}
        line.update({
            "id": new_id("il_"),
            "object": "line_item",
            "amount": amount,
            "currency": price["currency"],
            "description": description,
            "discount_amounts": [],
            "discountable": not proration,
            "discounts": [],
            "invoice": None,
            "livemode": False,
            "metadata": dict(subscription["metadata"]),
            "parent": parent,
            "period": {"end": end, "start": start},
            "pretax_credit_amounts": [],
            "pricing": {"price_details": {"price": price["id"], "product": price["product"]},
                        "type": "price_details",
                        "unit_amount_decimal": price["unit_amount_decimal"]},
            "quantity": item["quantity"],
            "quantity_decimal": str(item["quantity"]),
            "subscription": subscription["id"],
            "subtotal": amount,
            "taxes": [],
        })
        return line

    def _product_name(self, price: dict) -> str:
        return str(self._products.get(price["product"], {}).get("name") or price["product"])

    def _cycle_line(self, subscription: dict, start: int, end: int) -> dict:
        item = subscription["items"]["data"][0]
        price = item["price"]
        return self._line(subscription, price["unit_amount"] * item["quantity"], start, end,
                          f"{item['quantity']} × {self._product_name(price)} (at "
                          f"{format_amount(price['unit_amount'], price['currency'])}"
                          f"{_per(price['recurring'])})")

    def _new_invoice(self, subscription: dict, reason: str, lines: list[dict],
                     period_start: int, period_end: int) -> dict:
        """A finalised, open invoice of the subscription's customer (call with the lock
        held). The customer's balance is applied: a credit lowers what is due, and what is
        left of it (or a negative total) stays on the balance."""
        invoice_id = new_id("in_")
        customer = self._customers[subscription["customer"]]
        now = int(time.time())
        total = sum(line["amount"] for line in lines)
        starting = customer["balance"]
        due = max(total + starting, 0)
        customer["balance"] = min(total + starting, 0)
        number = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
        customer["next_invoice_sequence"] += 1
        for line in lines:
            line["invoice"] = invoice_id
        invoice = self._fixture("invoice")
        invoice.update({
            "id": invoice_id,
            "object": "invoice",
            "account_name": None,
            "amount_due": due,
            "amount_overpaid": 0,
            "amount_paid": 0,
            "amount_remaining": due,
            "amount_shipping": 0,
            "attempt_count": 0,
            "attempted": False,
            "auto_advance": True,
            "automatically_finalizes_at": None,
            "billing_reason": reason,
            "collection_method": "charge_automatically",
            "created": now,
            "currency": subscription["currency"],
            "customer": customer["id"],
            "customer_address": None,
            "customer_email": customer["email"],
            "customer_name": customer["name"],
            "customer_phone": customer["phone"],
            "customer_shipping": None,
            "customer_tax_ids": [],
            "default_payment_method": None,
            "description": None,
            "discounts": [],
            "due_date": None,
            "effective_at": now,
            "ending_balance": customer["balance"],
            "footer": None,
            "from_invoice": None,
            "hosted_invoice_url": None,
            "invoice_pdf": None,
            "last_finalization_error": None,
            "latest_revision": None,
            "lines": {"data": lines, "has_more": False, "object": "list",
                      "url": f"/v1/invoices/{invoice_id}/lines"},
            "livemode": False,
            "metadata": {},
            "next_payment_attempt": None,
            "number": number,
            "on_behalf_of": None,
            "parent": {"quote_details": None,
                       "subscription_details": {"metadata": dict(subscription["metadata"]),
                                                "subscription": subscription["id"]},
                       "type": "subscription_details"},
            "period_end": period_end,
            "period_start": period_start,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": None,
            "shipping_cost": None,
            "shipping_details": None,
            "starting_balance": starting,
            "statement_descriptor": None,
            "status": "open",
            "status_transitions": {"finalized_at": now, "marked_uncollectible_at": None,
                                   "paid_at": None, "voided_at": None},
            "subscription": subscription["id"],
            "subtotal": total,
            "subtotal_excluding_tax": total,
            "test_clock": None,
            "total": total,
            "total_discount_amounts": [],
            "total_excluding_tax": total,
            "total_pretax_credit_amounts": [],
            "total_taxes": [],
            "webhooks_delivered_at": now,
        })
        self._invoices[invoice_id] = invoice
        subscription["latest_invoice"] = invoice_id
        return invoice

    @staticmethod
    def _settle(invoice: dict, paid: bool) -> None:
        """One payment attempt on an open invoice (none is needed when nothing is due)."""
        now = int(time.time())
        if invoice["amount_due"] > 0:
            invoice["attempt_count"] += 1
            invoice["attempted"] = True
        if paid or invoice["amount_due"] == 0:
            invoice.update({"amount_paid": invoice["amount_due"], "amount_remaining": 0,
                            "auto_advance": False, "next_payment_attempt": None,
                            "status": "paid"})
            invoice["status_transitions"]["paid_at"] = now
        else:
            invoice["next_payment_attempt"] = now + _RETRY_AFTER

    def _invoice_paid_events(self, invoice: dict, request: dict | None = None) -> list[str]:
        return [self._emit("invoice.paid", invoice, request),
                self._emit("invoice.payment_succeeded", invoice, request)]

    def _open_invoice(self, subscription: dict) -> dict:
        """The newest open invoice of a past_due subscription (the renewal that failed)."""
        for invoice in reversed(self._invoices.values()):
            if invoice["subscription"] == subscription["id"] and invoice["status"] == "open":
                return invoice
        raise StandInError(f"Subscription {subscription['id']} has no open invoice.",
                           status=409)

    def _subscription(self, subscription_id: str) -> dict:
        return self._stored(self._subscriptions, "subscription", subscription_id)

    def _next_period(self, subscription: dict) -> tuple[int, int]:
        """The period after the current one: it starts where the current one ends and ends
        on the billing cycle anchor's day (a 31st stays a 31st where the month has one)."""
        item = subscription["items"]["data"][0]
        recurring = item["price"]["recurring"]
        start = item["current_period_end"]
        anchor, steps = subscription["billing_cycle_anchor"], 1
        end = _shift(anchor, recurring["interval"], recurring["interval_count"])
        while end <= start:
            steps += 1
            end = _shift(anchor, recurring["interval"], recurring["interval_count"] * steps)
        return start, end

    def _bill_next_period(self, subscription: dict) -> dict:
        """Move the subscription into its next period and open that period's invoice (with
        any prorations waiting for it)."""
        item = subscription["items"]["data"][0]
        old_start, old_end = item["current_period_start"], item["current_period_end"]
        start, end = self._next_period(subscription)
        item["current_period_start"], item["current_period_end"] = start, end
        lines = [*self._pending_lines.pop(subscription["id"], []),
                 self._cycle_line(subscription, start, end)]
        return self._new_invoice(subscription, "subscription_cycle", lines, old_start, old_end)

    def _end_at_period_end(self, subscription: dict) -> list[str]:
        item = subscription["items"]["data"][0]
        subscription.update({"status": "canceled", "ended_at": item["current_period_end"]})
        self._pending_lines.pop(subscription["id"], None)
        return [self._emit("customer.subscription.deleted", subscription)]

    def _live(self, subscription: dict, action: str) -> None:
        if subscription["status"] not in ("active", "past_due"):
            raise StandInError(f"Subscription {subscription['id']} is "
                               f"{subscription['status']}: only an active or past_due "
                               f"subscription can {action}.", status=409,
                               code="subscription_not_live")

    def renew(self, subscription_id: str) -> list[str]:
        """The current period ends and the renewal is paid; returns the ids of the events.

        Active: the next period begins (its start is the old end) with a paid invoice
        (`subscription_cycle`): `invoice.paid`, `invoice.payment_succeeded`, then
        `customer.subscription.updated`. Past due: the open invoice is paid and the
        subscription is active again, same events. Set to cancel at period end: it ends
        instead (canceled, `ended_at` the period's end): `customer.subscription.deleted`."""
        with self._lock:
            subscription = self._subscription(subscription_id)
            self._live(subscription, "renew")
            before = copy.deepcopy(subscription)
            if subscription["status"] == "past_due":
                invoice = self._open_invoice(subscription)
                self._settle(invoice, paid=True)
                subscription["status"] = "active"
            elif subscription["cancel_at_period_end"]:
                return self._end_at_period_end(subscription)
            else:
                invoice = self._bill_next_period(subscription)
                self._settle(invoice, paid=True)
            return [*self._invoice_paid_events(invoice),
                    self._emit("customer.subscription.updated", subscription,
                               previous=before)]

    def fail_renewal(self, subscription_id: str) -> list[str]:
        """The current period ends and the renewal payment fails; returns the ids of the
        events. Active: the next period begins (as on Stripe, whatever the payment) with an
        open invoice (attempt_count 1) and the subscription is past_due:
        `invoice.payment_failed`, then `customer.subscription.updated`. Already past due:
        another failed attempt on the open invoice (attempt_count + 1):
        `invoice.payment_failed` only. Set to cancel at period end: it ends instead, as
        `renew` does."""
        with self._lock:
            subscription = self._subscription(subscription_id)
            self._live(subscription, "fail a renewal")
            if subscription["status"] == "past_due":
                invoice = self._open_invoice(subscription)
                self._settle(invoice, paid=False)
                return [self._emit("invoice.payment_failed", invoice)]
            if subscription["cancel_at_period_end"]:
                return self._end_at_period_end(subscription)
            before = copy.deepcopy(subscription)
            invoice = self._bill_next_period(subscription)
            self._settle(invoice, paid=False)
            if invoice["status"] == "paid":  # a credit covered it: nothing could fail
                return [*self._invoice_paid_events(invoice),
                        self._emit("customer.subscription.updated", subscription,
                                   previous=before)]
            subscription["status"] = "past_due"
            return [self._emit("invoice.payment_failed", invoice),
                    self._emit("customer.subscription.updated", subscription,
                               previous=before)]

    def lapse(self, subscription_id: str) -> list[str]:
        """A past_due subscription's retries have run out and Stripe cancels it (status
        canceled, `cancellation_details.reason` payment_failed; the invoice stays open):
        `customer.subscription.deleted`. Returns the ids of the events."""
        with self._lock:
            subscription = self._subscription(subscription_id)
            if subscription["status"] != "past_due":
                raise StandInError(f"Subscription {subscription_id} is "
                                   f"{subscription['status']}: only a past_due subscription "
                                   "lapses (fail its renewal first).", status=409,
                                   code="subscription_not_past_due")
            now = int(time.time())
            subscription.update({"status": "canceled", "canceled_at": now, "ended_at": now,
                                 "cancellation_details": {
                                     **subscription["cancellation_details"],
                                     "reason": "payment_failed"}})
            self._pending_lines.pop(subscription_id, None)
            return [self._emit("customer.subscription.deleted", subscription)]

    def update_subscription(self, subscription_id: str, params: dict[str, Any],
                            request: dict | None = None) -> dict:
        """`POST /v1/subscriptions/{id}`: `cancel_at_period_end`, `metadata` (merged),
        `description`, `cancellation_details[comment|feedback]`, and a new price or quantity
        for the one item (`items[0][id]` with `items[0][price]` / `items[0][quantity]`) under
        `proration_behavior` (`create_prorations`, the default: prorations wait for the next
        renewal's invoice; `always_invoice`: a paid invoice for them now; `none`). A new
        interval restarts the billing cycle now with a paid invoice, as on Stripe.

        Sends `customer.subscription.updated` (with `previous_attributes`) when anything
        changed, then `invoice.paid` and `invoice.payment_succeeded` for an invoice made."""
        _unknown_params(params, _SUBSCRIPTION_UPDATE_PARAMS)
        _unsupported(params, _SUBSCRIPTION_UPDATE_PARAMS - {
            "cancel_at_period_end", "cancellation_details", "description", "expand", "items",
            "metadata", "proration_behavior", "proration_date"}, "subscription updates")
        behavior = params.get("proration_behavior") or "create_prorations"
        if behavior not in _PRORATIONS:
            raise StandInError("Invalid proration_behavior: must be one of always_invoice, "
                               "create_prorations, or none", param="proration_behavior")
        details = _dict(params.get("cancellation_details"), "cancellation_details")
        _unknown_params(details, frozenset({"comment", "feedback"}), "cancellation_details")
        if details.get("feedback") not in (None, "", *_FEEDBACK):
            raise StandInError(f"Invalid cancellation_details[feedback]: must be one of "
                               f"{', '.join(_FEEDBACK)}", param="cancellation_details[feedback]")
        with self._lock:
            subscription = self._subscription(subscription_id)
            if subscription["status"] in _ENDED and \
                    set(params) - {"cancellation_details", "expand", "metadata"}:
                raise StandInError("A canceled subscription can only update its "
                                   "cancellation_details and metadata.")
            before = copy.deepcopy(subscription)
            item = subscription["items"]["data"][0]
            change = self._item_change(subscription, params.get("items"))
            at = None
            if params.get("proration_date") not in (None, ""):
                at = _int(params["proration_date"], "proration_date")
                if not item["current_period_start"] <= at <= item["current_period_end"]:
                    raise StandInError("proration_date must be within the current period.",
                                       param="proration_date")
            changes: dict[str, Any] = {}  # every parameter read before anything changes
            if "metadata" in params:
                changes["metadata"] = _merge_metadata(subscription["metadata"],
                                                      params["metadata"])
            if "description" in params:
                changes["description"] = _text(params["description"], "description", 500)
            cancel = None if params.get("cancel_at_period_end") in (None, "") else \
                _bool(params["cancel_at_period_end"], "cancel_at_period_end")
            now = int(time.time())
            subscription.update(changes)
            if details:
                subscription["cancellation_details"] = {
                    **subscription["cancellation_details"],
                    **{k: (v or None) for k, v in details.items()}}
            if cancel is not None and cancel != subscription["cancel_at_period_end"]:
                if cancel:
                    subscription.update({
                        "cancel_at_period_end": True, "cancel_at": item["current_period_end"],
                        "canceled_at": now, "cancellation_details": {
                            **subscription["cancellation_details"],
                            "reason": "cancellation_requested"}})
                else:
                    subscription.update({
                        "cancel_at_period_end": False, "cancel_at": None, "canceled_at": None,
                        "cancellation_details": {**subscription["cancellation_details"],
                                                 "reason": None}})
            invoice = None
            if change is not None:
                invoice = self._change_item(subscription, *change, behavior, at)
            events = []
            if subscription != before:
                events.append(self._emit("customer.subscription.updated", subscription,
                                         request, previous=before))
            if invoice is not None:
                events.extend(self._invoice_paid_events(invoice, request))
            return copy.deepcopy(subscription)

    def _item_change(self, subscription: dict, value: Any) -> tuple[dict, int] | None:
        """`items[0][id|price|quantity]` as (new price, new quantity), or None if the same."""
        if value in (None, ""):
            return None
        if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], dict):
            raise StandInError("The local Stripe stand-in changes the subscription's one item "
                               "only: pass items[0][id] with items[0][price] and/or "
                               "items[0][quantity].", param="items")
        raw = value[0]
        _unknown_params(raw, frozenset({
            "billing_thresholds", "clear_usage", "deleted", "discounts", "id", "metadata",
            "price", "price_data", "quantity", "tax_rates"}), "items[0]")
        _unsupported(raw, {"billing_thresholds", "clear_usage", "deleted", "discounts",
                           "metadata", "price_data", "tax_rates"}, "subscription items",
                     "items[0]")
        item = subscription["items"]["data"][0]
        if raw.get("id") in (None, ""):
            raise StandInError("The local Stripe stand-in does not add items to a "
                               "subscription: pass items[0][id] to change its one item.",
                               param="items[0][id]")
        if raw["id"] != item["id"]:
            raise _missing("subscription_item", str(raw["id"]), "items[0][id]")
        price = item["price"]
        if raw.get("price") not in (None, ""):
            stored = self._prices.get(str(raw["price"]))
            if stored is None:
                raise _missing("price", str(raw["price"]), "items[0][price]")
            if not stored["active"]:
                raise StandInError("The price specified is inactive. This field only accepts "
                                   "active prices.", param="items[0][price]")
            if stored["type"] != "recurring":
                raise StandInError("The price specified is set to `type=one_time` but this "
                                   "field only accepts prices with `type=recurring`.",
                                   param="items[0][price]")
            if stored["currency"] != subscription["currency"]:
                raise StandInError(f"The price specified has currency {stored['currency']}, "
                                   f"but the subscription is in {subscription['currency']}.",
                                   param="items[0][price]")
            price = copy.deepcopy(stored)
        quantity = item["quantity"] if raw.get("quantity") in (None, "") else \
            _int(raw["quantity"], "items[0][quantity]", 1)
        if price["id"] == item["price"]["id"] and quantity == item["quantity"]:
            return None
        return price, quantity

    def _change_item(self, subscription: dict, price: dict, quantity: int, behavior: str,
                     at: int | None) -> dict | None:
        """Put the item on `price` × `quantity`; returns the paid invoice it made, if any."""
        item = subscription["items"]["data"][0]
        old_price, old_quantity = item["price"], item["quantity"]
        start, end = item["current_period_start"], item["current_period_end"]
        # The stand-in's periods run ahead of the clock after a renewal: a change made before
        # the period starts counts from its start.
        moment = min(max(at if at is not None else int(time.time()), start), end)
        same_cycle = (old_price["recurring"]["interval"],
                      old_price["recurring"]["interval_count"]) == \
            (price["recurring"]["interval"], price["recurring"]["interval_count"])
        lines = []
        if behavior != "none":
            unused = -_prorate(old_price["unit_amount"] * old_quantity, end - moment,
                               end - start)
            if unused:
                lines.append(self._line(
                    subscription, unused, moment, end,
                    f"Unused time on {old_quantity} × {self._product_name(old_price)} after "
                    f"{_day(moment)}", proration=True, price=old_price))
        item.update({"price": copy.deepcopy(price), "plan": self._plan(price),
                     "quantity": quantity})
        if not same_cycle:  # a new interval: the cycle restarts now and is billed at once
            recurring = price["recurring"]
            new_end = _shift(moment, recurring["interval"], recurring["interval_count"])
            item["current_period_start"], item["current_period_end"] = moment, new_end
            subscription["billing_cycle_anchor"] = moment
            if subscription["cancel_at_period_end"]:
                subscription["cancel_at"] = new_end
            lines = [*self._pending_lines.pop(subscription["id"], []), *lines,
                     self._cycle_line(subscription, moment, new_end)]
        else:
            if behavior != "none":
                remaining = _prorate(price["unit_amount"] * quantity, end - moment, end - start)
                if remaining:
                    lines.append(self._line(
                        subscription, remaining, moment, end,
                        f"Remaining time on {quantity} × {self._product_name(price)} after "
                        f"{_day(moment)}", proration=True))
            if behavior != "always_invoice":
                if lines:
                    self._pending_lines.setdefault(subscription["id"], []).extend(lines)
                return None
            lines = [*self._pending_lines.pop(subscription["id"], []), *lines]
            if not lines:
                return None
        invoice = self._new_invoice(subscription, "subscription_update", lines, moment, moment)
        self._settle(invoice, paid=True)
        return invoice

    def cancel_subscription(self, subscription_id: str, params: dict[str, Any],
                            request: dict | None = None) -> dict:
        """`DELETE /v1/subscriptions/{id}`: canceled now (`canceled_at` = `ended_at` = now,
        `cancellation_details[comment|feedback]`); waiting prorations are dropped. Sends
        `customer.subscription.deleted`."""
        _unknown_params(params, _SUBSCRIPTION_CANCEL_PARAMS)
        for name in ("invoice_now", "prorate"):
            if params.get(name) not in (None, "") and _bool(params[name], name):
                raise StandInError(f"The local Stripe stand-in does not support `{name}` when "
                                   "canceling a subscription.", param=name)
        details = _dict(params.get("cancellation_details"), "cancellation_details")
        _unknown_params(details, frozenset({"comment", "feedback"}), "cancellation_details")
        if details.get("feedback") not in (None, "", *_FEEDBACK):
            raise StandInError(f"Invalid cancellation_details[feedback]: must be one of "
                               f"{', '.join(_FEEDBACK)}", param="cancellation_details[feedback]")
        with self._lock:
            subscription = self._subscription(subscription_id)
            if subscription["status"] in _ENDED:
                raise StandInError(f"Subscription {subscription_id} is already "
                                   f"{subscription['status']}.")
            now = int(time.time())
            subscription.update({
                "status": "canceled", "canceled_at": now, "ended_at": now,
                "cancellation_details": {**subscription["cancellation_details"],
                                         **{k: (v or None) for k, v in details.items()},
                                         "reason": "cancellation_requested"}})
            self._pending_lines.pop(subscription_id, None)
            self._emit("customer.subscription.deleted", subscription, request)
            return copy.deepcopy(subscription)

    def list_subscriptions(self, params: dict[str, Any]) -> dict:
        """`GET /v1/subscriptions`: `customer`, `price`, `status` (by default every one not
        canceled; `all`, `ended`, or one status), newest first."""
        _unknown_params(params, _SUBSCRIPTION_LIST_PARAMS)
        _unsupported(params, {"automatic_tax", "collection_method", "created",
                              "current_period_end", "current_period_start",
                              "customer_account", "test_clock"}, "subscription lists")
        subscriptions = list(reversed(self._subscriptions.values()))
        status = params.get("status") or None
        if status not in (None, "all", "ended", *_SUBSCRIPTION_STATUSES):
            raise StandInError(f"Invalid status: must be one of all, ended, "
                               f"{', '.join(_SUBSCRIPTION_STATUSES)}", param="status")
        if status is None:
            subscriptions = [s for s in subscriptions if s["status"] not in _ENDED]
        elif status == "ended":
            subscriptions = [s for s in subscriptions if s["status"] in _ENDED]
        elif status != "all":
            subscriptions = [s for s in subscriptions if s["status"] == status]
        if params.get("customer") not in (None, ""):
            subscriptions = [s for s in subscriptions if s["customer"] == params["customer"]]
        if params.get("price") not in (None, ""):
            subscriptions = [s for s in subscriptions
                             if s["items"]["data"][0]["price"]["id"] == params["price"]]
        return self._list_page(subscriptions, params, "/v1/subscriptions", "subscription")

    def list_invoices(self, params: dict[str, Any]) -> dict:
        """`GET /v1/invoices`: `customer`, `subscription`, `status`, newest first."""
        _unknown_params(params, _INVOICE_LIST_PARAMS)
        _unsupported(params, {"collection_method", "created", "customer_account", "due_date"},
                     "invoice lists")
        invoices = list(reversed(self._invoices.values()))
        for field in ("customer", "subscription", "status"):
            if params.get(field) not in (None, ""):
                invoices = [i for i in invoices if i[field] == params[field]]
        return self._list_page(invoices, params, "/v1/invoices", "invoice")

    def _stored(self, store: dict[str, dict], kind: str, object_id: str) -> dict:
        if object_id not in store:
            raise _missing(kind, object_id, "id")
        return store[object_id]

    @staticmethod
    def _list_page(objects: list[dict], params: dict, url: str, kind: str) -> dict:
        """One page of a list, newest first: `limit` (1-100, 10 by default),
        `starting_after` or `ending_before`."""
        limit = 10 if params.get("limit") in (None, "") else _int(params["limit"], "limit", 1)
        if limit > 100:
            raise StandInError("This value must be less than or equal to 100.", param="limit")
        after, before = params.get("starting_after") or None, params.get("ending_before") or None
        if after and before:
            raise StandInError("You may only specify one of these parameters: ending_before, "
                               "starting_after.", param="ending_before")
        ids = [o["id"] for o in objects]
        for cursor, name in ((after, "starting_after"), (before, "ending_before")):
            if cursor and cursor not in ids:
                raise _missing(kind, str(cursor), name)
        if before:
            end = ids.index(before)
            page, more = objects[max(0, end - limit):end], end > limit
        else:
            rest = objects[ids.index(after) + 1:] if after else objects
            page, more = rest[:limit], len(rest) > limit
        return {"object": "list", "data": page, "has_more": more, "url": url}

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

        if method in ("POST", "DELETE"):
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
                if method == "POST":
                    obj = self._post(segments, params, request, path)
                else:
                    obj = self._delete(segments, params, request, path)
                payload = _json_bytes(self._expand(obj, expand))
                if key:
                    self._idempotent[key] = (method, path, asked, 200, payload)
                return 200, payload, False
        with self._lock:
            return 200, _json_bytes(self._expand(self._get(segments, path, params), expand)), \
                False

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
        creators: dict[str, Callable[[dict], dict]] = {
            "products": self.create_product, "prices": self.create_price,
            "customers": self.create_customer}
        updaters: dict[str, Callable[[str, dict], dict]] = {
            "products": self.update_product, "prices": self.update_price,
            "customers": self.update_customer}
        if len(segments) == 1 and segments[0] in creators:
            return creators[segments[0]](params)
        if len(segments) == 2 and segments[0] in updaters:
            return updaters[segments[0]](segments[1], params)
        if segments == ["subscriptions"]:
            raise StandInError("The local Stripe stand-in starts subscriptions from Checkout "
                               "Sessions in subscription mode only (it keeps no payment "
                               "methods to charge).", status=404)
        if len(segments) == 2 and segments[0] == "subscriptions":
            return self.update_subscription(segments[1], params, request)
        raise StandInError(f"Unrecognized request URL (POST: {path}).", status=404)

    def _delete(self, segments: list[str], params: dict, request: dict, path: str) -> dict:
        if len(segments) == 2 and segments[0] == "subscriptions":
            return self.cancel_subscription(segments[1], params, request)
        raise StandInError(f"Unrecognized request URL (DELETE: {path}).", status=404)

    def _get(self, segments: list[str], path: str, params: dict | None = None) -> dict:
        params = params or {}
        lists: dict[str, Callable[[dict], dict]] = {
            "products": self.list_products, "prices": self.list_prices,
            "customers": self.list_customers, "subscriptions": self.list_subscriptions,
            "invoices": self.list_invoices}
        if len(segments) == 1 and segments[0] in lists:
            return lists[segments[0]](params)
        if len(segments) == 3 and segments[0] == "invoices" and segments[2] == "lines":
            lines = self._stored(self._invoices, "invoice", segments[1])["lines"]
            return self._list_page(lines["data"], params, lines["url"], "line_item")
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
            self._expand_path(obj, str(path).split("."))
        return obj

    def _expand_path(self, node: Any, parts: list[str]) -> None:
        """Replace the id at `parts` with its object; a list's `data` expands each element."""
        part, rest = parts[0], parts[1:]
        if not isinstance(node, dict):
            raise StandInError(f"This property cannot be expanded ({part}).", param="expand")
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
            return
        elif isinstance(value, list) and part == "data" and node.get("object") == "list":
            for element in value:
                if rest:
                    self._expand_path(element, rest)
            return
        elif not isinstance(value, dict):
            raise StandInError(f"This property cannot be expanded ({part}).", param="expand")
        if rest:
            self._expand_path(node[part], rest)

    def _site(self, method: str, path: str, headers: dict[str, str], body: bytes,
              answer_headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        page = re.fullmatch(r"/checkout/([^/]+)", path)
        pay = re.fullmatch(r"/checkout/([^/]+)/pay", path)
        close = re.fullmatch(r"/_standin/disputes/([^/]+)/close", path)
        resend = re.fullmatch(r"/_standin/events/([^/]+)/resend", path)
        trigger = re.fullmatch(r"/(?:_standin|_local/stripe)/subscriptions/([^/]+)/"
                               r"(renew|fail|lapse)", path)
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
        if method == "POST" and trigger:
            _unknown_params(_json_body(body), frozenset())
            subscription_id = unquote(trigger.group(1))
            play = {"renew": self.renew, "fail": self.fail_renewal, "lapse": self.lapse}
            events = play[trigger.group(2)](subscription_id)
            return 200, as_json, _json_bytes({**self.get(subscription_id), "events": events})
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
                declined = self._sessions[session_id]["status"] == "open"  # subscription mode
                status, text = self._page(session_id, notice="The card was declined: nothing "
                                          "was charged and the session stays open."
                                          if declined else None)
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
        subscribing = session["mode"] == "subscription"
        per = _per(items[0]["price"].get("recurring")) if subscribing and items else ""
        total = format_amount(session["amount_total"], session["currency"])
        rows = "".join(
            f"<tr><td>{_e(i['description'] or i['price']['product'])}</td>"
            f"<td>× {i['quantity']}</td>"
            f"<td class=num>{_e(format_amount(i['amount_total'], i['currency']))}"
            f"{_e(_per(i['price'].get('recurring')))}</td></tr>"
            for i in items)
        parts = [f"<p class=total>Total: <strong id=amount>{_e(total)}</strong>"
                 f"{_e(per)}</p>",
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
                + ("<p class=meta>Subscribe: this card is charged now and at every renewal."
                   "</p>" if subscribing else
                   "<label><input type=checkbox name=delayed value=on> delayed notification "
                   "(Alipay / WeChat Pay style)</label><br>")
                + f"<button type=submit id=pay>{'Subscribe' if subscribing else 'Pay'}"
                "</button></form>"
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
            if session.get("subscription"):
                parts.append(f"<p class=meta>Subscription <code id=subscription>"
                             f"{_e(session['subscription'])}</code> · customer <code>"
                             f"{_e(session['customer'])}</code> · invoice <code>"
                             f"{_e(session['invoice'])}</code></p>")
            if target:
                parts.append(f"<p><a id=continue href='{_e(_with_session(target, session_id))}'"
                             ">Continue</a></p>")
        return 200, _html(f"Pay {total}", "".join(parts))


def _day(timestamp: int) -> str:
    """`2025-07-01` (UTC), as invoice line descriptions name a day."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


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
