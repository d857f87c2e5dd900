"""Which payment methods a Checkout Session asks for, by currency and mode. One table, also
in docs/pricing.md. From Stripe's pages for each method (December 2026): Alipay and WeChat Pay
are single-use, so never in subscription mode; PayPal through Stripe presents EUR and GBP
(among others) and supports recurring payments."""
from __future__ import annotations

from typing import Literal

Mode = Literal["payment", "subscription"]

# method -> (presentment currencies, modes); `None`: every currency.
METHODS: dict[str, tuple[frozenset[str] | None, frozenset[str]]] = {
    "card": (None, frozenset({"payment", "subscription"})),
    "alipay": (frozenset({"aud", "cad", "cny", "eur", "gbp", "hkd", "jpy", "myr", "nzd", "sgd",
                          "usd"}), frozenset({"payment"})),
    "wechat_pay": (frozenset({"aud", "cad", "chf", "cny", "dkk", "eur", "gbp", "hkd", "jpy",
                              "nok", "sek", "sgd", "usd"}), frozenset({"payment"})),
    "paypal": (frozenset({"eur", "gbp"}), frozenset({"payment", "subscription"})),
}


def for_checkout(currency: str, mode: Mode) -> list[str]:
    """The payment method types valid for a session in `currency` and `mode`, card first."""
    return [method for method, (currencies, modes) in METHODS.items()
            if mode in modes and (currencies is None or currency in currencies)]


def session_options(method_types: list[str]) -> dict:
    """What the session needs besides the list: WeChat Pay asks which client it runs in."""
    options: dict = {}
    if "wechat_pay" in method_types:
        options["payment_method_options"] = {"wechat_pay": {"client": "web"}}
    return options
