"""The one Stripe client of the process: a StripeClient (`v1` namespace), imported on first
use so a cold start does not pay for the SDK. Locally it points at the Stripe stand-in
(STRIPE_API_BASE); in production only the key and the base address differ. Shared kernel:
payments (one-off checkout, refunds) and memberships (Billing) both call Stripe through it."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from chalicelib.config import ConfigError, settings

if TYPE_CHECKING:
    from stripe._base_address import BaseAddresses

_lock = threading.Lock()
_client: Any = None


def client() -> Any:
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                import stripe

                cfg = settings()
                key = cfg.stripe_secret_key
                if not key:
                    from chalicelib import vault

                    key = vault.load().get("stripe_secret_key")
                if not key:
                    raise ConfigError("no Stripe secret key (STRIPE_SECRET_KEY or the vault)")
                addresses: BaseAddresses | None = \
                    {"api": cfg.stripe_api_base} if cfg.stripe_api_base else None
                _client = stripe.StripeClient(key, base_addresses=addresses,
                                              max_network_retries=2)
    return _client


def stripe_errors() -> tuple[type[Exception], ...]:
    import stripe

    return (stripe.StripeError,)


def is_refusal(exc: Exception) -> bool:
    """Whether Stripe answered and said no (a request it will refuse again), rather than
    failing or not answering."""
    import stripe

    return isinstance(exc, (stripe.InvalidRequestError, stripe.CardError))


def user_message(exc: Exception) -> str:
    return str(getattr(exc, "user_message", None) or exc)[:300]


def forget() -> None:
    global _client
    _client = None
