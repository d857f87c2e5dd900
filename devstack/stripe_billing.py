"""Stripe Billing for the local Stripe stand-in (devstack.stripe_standin): Products, Prices,
Customers, Checkout Sessions in `subscription` mode, Subscriptions with periods, Invoices,
and the renewals a person triggers by hand:

- `POST /v1/products`, `GET /v1/products/{id}`; `POST /v1/prices`, `GET /v1/prices` (filters
  `lookup_keys[]`, `product`, `active`), `GET|POST /v1/prices/{id}`; `POST /v1/customers`,
  `GET /v1/customers/{id}`; `GET /v1/subscriptions/{id}`, `GET /v1/subscriptions?customer=`,
  `POST /v1/subscriptions/{id}` (`cancel_at_period_end`, `items` with a new `price` and
  `proration_behavior`, `metadata`), `DELETE /v1/subscriptions/{id}`; `GET /v1/invoices/{id}`.
- `POST /_standin/subscriptions/{id}/renew` (the period's invoice paid, or, when
  `cancel_at_period_end`, the subscription ended), `/fail` (the renewal's payment failed:
  `past_due`), `/lapse` (Stripe gives up after failures: `canceled`).

Objects are built on `subscription.json`, `invoice.json` and `customer.json` of
`shared/fixtures/stripe`; periods live on the subscription's items (API 2025+). Every function
takes the stand-in and runs with its lock held."""
from __future__ import annotations

import calendar
import copy
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from devstack.stripe_standin import StandInError, _dict, _int, _metadata, _missing, new_id

if TYPE_CHECKING:
    from devstack.stripe_standin import StripeStandIn

# Stripe refuses these in subscription mode (they cannot be charged again off session).
NOT_RECURRING = ("alipay", "wechat_pay")


def _add_interval(start: int, interval: str) -> int:
    """`start` plus one calendar month or year (the day clamped to the month's length)."""
    at = datetime.fromtimestamp(start, UTC)
    months = 12 if interval == "year" else 1
    month0 = at.month - 1 + months
    year, month = at.year + month0 // 12, month0 % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return int(at.replace(year=year, month=month, day=day).timestamp())


# -- products, prices, customers --------------------------------------------------------------

def create_product(s: StripeStandIn, params: dict) -> dict:
    product_id = str(params.get("id") or new_id("prod_", 14))
    if product_id in s._products:
        raise StandInError(f"Product already exists: {product_id}", code="resource_already_exists",
                           param="id")
    if not params.get("name"):
        raise StandInError("Missing required param: name.", param="name")
    product = {"id": product_id, "object": "product", "active": True, "created": int(time.time()),
               "description": params.get("description") or None, "livemode": False,
               "metadata": _metadata(params.get("metadata")), "name": params["name"],
               "type": "service", "updated": int(time.time()), "url": None}
    s._products[product_id] = product
    return product


def create_price(s: StripeStandIn, params: dict) -> dict:
    product = params.get("product")
    if not product or product not in s._products:
        raise _missing("product", str(product), "product")
    currency = str(params.get("currency") or "").lower()
    if len(currency) != 3:
        raise StandInError("Missing required param: currency.", param="currency")
    unit = _int(params.get("unit_amount"), "unit_amount", 0)
    recurring = _dict(params.get("recurring"), "recurring")
    if recurring and recurring.get("interval") not in ("day", "week", "month", "year"):
        raise StandInError("Invalid recurring[interval].", param="recurring[interval]")
    key = params.get("lookup_key") or None
    if key and any(p.get("lookup_key") == key for p in s._prices.values()):
        if str(params.get("transfer_lookup_key")) != "true":
            raise StandInError(f"A price (`{key}`) already uses that lookup key.",
                               param="lookup_key")
        for p in s._prices.values():
            if p.get("lookup_key") == key:
                p["lookup_key"] = None
    base = s._fixture("subscription").get("items", {}).get("data", [{}])[0].get("price", {})
    price = {**base, "id": new_id("price_"), "object": "price", "active": True,
             "billing_scheme": "per_unit", "created": int(time.time()), "currency": currency,
             "livemode": False, "lookup_key": key, "metadata": _metadata(params.get("metadata")),
             "nickname": params.get("nickname") or None, "product": product,
             "recurring": {"interval": recurring["interval"], "interval_count": 1,
                           "meter": None, "trial_period_days": None,
                           "usage_type": "licensed"} if recurring else None,
             "tax_behavior": "unspecified", "tiers_mode": None, "transform_quantity": None,
             "type": "recurring" if recurring else "one_time", "unit_amount": unit,
             "unit_amount_decimal": str(unit)}
    price.pop("custom_unit_amount", None)
    s._prices[price["id"]] = price
    return price


def list_prices(s: StripeStandIn, params: dict) -> dict:
    keys = params.get("lookup_keys")
    keys = [keys] if isinstance(keys, str) else list(keys or [])
    found = [p for p in s._prices.values()
             if (not keys or p.get("lookup_key") in keys)
             and (not params.get("product") or p["product"] == params["product"])
             and (params.get("active") in (None, "") or
                  str(p["active"]).lower() == str(params["active"]).lower())]
    return {"object": "list", "data": found, "has_more": False, "url": "/v1/prices"}


def update_price(s: StripeStandIn, price_id: str, params: dict) -> dict:
    price = price_of(s, price_id)
    if "active" in params:
        price["active"] = str(params["active"]).lower() == "true"
    if "metadata" in params:
        price["metadata"] = {**price["metadata"], **_metadata(params["metadata"])}
    return price


def price_of(s: StripeStandIn, price_id: str, param: str = "price") -> dict:
    if price_id not in s._prices:
        raise _missing("price", price_id, param)
    return s._prices[price_id]


def create_customer(s: StripeStandIn, params: dict) -> dict:
    customer = s._fixture("customer")
    customer.update({"id": new_id("cus_", 14), "object": "customer",
                     "created": int(time.time()), "email": params.get("email") or None,
                     "name": params.get("name") or None, "livemode": False,
                     "metadata": _metadata(params.get("metadata"))})
    s._customers[customer["id"]] = customer
    return customer


# -- subscription-mode Checkout -----------------------------------------------------------------

def create_session(s: StripeStandIn, params: dict, session: dict) -> dict:
    """Complete `session` (the stand-in's common fields already set) for subscription mode."""
    types = params.get("payment_method_types") or ["card"]
    for kind in types:
        if kind in NOT_RECURRING:
            raise StandInError(f"The payment method type `{kind}` cannot be used in "
                               "`subscription` mode.", param="payment_method_types")
    if params.get("payment_intent_data"):
        raise StandInError("You can not pass `payment_intent_data` in `subscription` mode.",
                           param="payment_intent_data")
    raw = params.get("line_items")
    if not isinstance(raw, list) or not raw:
        raise StandInError("line_items is required in subscription mode.", param="line_items")
    items = []
    for i, line in enumerate(raw):
        line = _dict(line, f"line_items[{i}]")
        price = price_of(s, str(line.get("price")), f"line_items[{i}][price]")
        if not price.get("recurring"):
            raise StandInError("You must specify at least one recurring price in "
                               "`subscription` mode when using prices.",
                               param=f"line_items[{i}][price]")
        items.append((price, _int(line.get("quantity", 1), f"line_items[{i}][quantity]", 1)))
    customer = params.get("customer") or None
    if customer and customer not in s._customers:
        raise _missing("customer", customer, "customer")
    total = sum(int(p["unit_amount"]) * q for p, q in items)
    data = _dict(params.get("subscription_data"), "subscription_data")
    session.update({"amount_subtotal": total, "amount_total": total,
                    "currency": items[0][0]["currency"], "customer": customer,
                    "payment_method_types": list(types), "subscription": None,
                    "invoice": None})
    s._sub_plans[session["id"]] = {
        "items": [(p["id"], q) for p, q in items],
        "metadata": _metadata(data.get("metadata"), "subscription_data[metadata]")}
    return session


def session_line_items(s: StripeStandIn, session_id: str) -> list[dict]:
    """A subscription session's line items, as `GET .../line_items` and the page show them."""
    items = []
    for price_id, quantity in s._sub_plans[session_id]["items"]:
        price = s._prices[price_id]
        product = s._products.get(price["product"], {})
        amount = int(price["unit_amount"]) * quantity
        items.append({"id": new_id("li_"), "object": "item", "amount_discount": 0,
                      "amount_subtotal": amount, "amount_tax": 0, "amount_total": amount,
                      "currency": price["currency"],
                      "description": f"{product.get('name') or price['product']} "
                                     f"(every {price['recurring']['interval']})",
                      "price": copy.deepcopy(price), "quantity": quantity})
    return items


def pay_session(s: StripeStandIn, session: dict, outcome: str) -> list[str]:
    """Pay a subscription-mode session: a Customer (unless given), a Subscription with its
    first period, its paid Invoice; the events Stripe sends for them."""
    if outcome != "succeeded":
        return []  # a declined card: the buyer stays on the page, the session stays open
    customer_id = session.get("customer")
    if not customer_id:
        customer_id = create_customer(s, {"email": session.get("customer_email")})["id"]
    plan = s._sub_plans[session["id"]]
    now = int(time.time())
    sub = _new_subscription(s, customer_id, plan, now)
    invoice = _new_invoice(s, sub, "subscription_create", paid=True)
    session.update({"status": "complete", "payment_status": "paid", "customer": customer_id,
                    "subscription": sub["id"], "invoice": invoice["id"], "url": None,
                    "customer_details": s._customer_details(session)})
    return [s._emit("customer.subscription.created", sub),
            s._emit("invoice.paid", invoice),
            s._emit("checkout.session.completed", session)]


def _new_subscription(s: StripeStandIn, customer_id: str, plan: dict, now: int) -> dict:
    sub = s._fixture("subscription")
    sub_id = new_id("sub_")
    items = []
    for price_id, quantity in plan["items"]:
        price = s._prices[price_id]
        end = _add_interval(now, price["recurring"]["interval"])
        base = copy.deepcopy((sub.get("items") or {}).get("data", [{}])[0])
        base.update({"id": new_id("si_", 14), "created": now, "current_period_start": now,
                     "current_period_end": end, "metadata": {}, "price": copy.deepcopy(price),
                     "quantity": quantity, "subscription": sub_id, "discounts": [],
                     "tax_rates": [], "billing_thresholds": None})
        base.pop("plan", None)
        items.append(base)
    sub.update({"id": sub_id, "object": "subscription", "billing_cycle_anchor": now,
                "cancel_at": None, "cancel_at_period_end": False, "canceled_at": None,
                "cancellation_details": {"comment": None, "feedback": None, "reason": None},
                "collection_method": "charge_automatically", "created": now,
                "currency": items[0]["price"]["currency"], "customer": customer_id,
                "ended_at": None, "livemode": False, "metadata": dict(plan["metadata"]),
                "items": {"object": "list", "data": items, "has_more": False,
                          "total_count": len(items),
                          "url": f"/v1/subscription_items?subscription={sub_id}"},
                "schedule": None, "start_date": now, "status": "active", "test_clock": None,
                "trial_end": None, "trial_start": None, "pending_update": None,
                "latest_invoice": None})
    s._subscriptions[sub_id] = sub
    return sub


def _amount(sub: dict) -> int:
    return sum(int(i["price"]["unit_amount"]) * int(i["quantity"])
               for i in sub["items"]["data"])


def _new_invoice(s: StripeStandIn, sub: dict, reason: str, paid: bool,
                 amount: int | None = None) -> dict:
    invoice = s._fixture("invoice")
    invoice_id = new_id("in_")
    item = sub["items"]["data"][0]
    start, end = item["current_period_start"], item["current_period_end"]
    amount = _amount(sub) if amount is None else amount
    customer = s._customers.get(sub["customer"], {})
    line = copy.deepcopy((invoice.get("lines") or {}).get("data", [{}])[0])
    line.update({"id": new_id("il_"), "amount": amount, "currency": sub["currency"],
                 "description": f"1 × {item['price'].get('nickname') or item['price']['id']}",
                 "invoice": invoice_id, "metadata": {}, "period": {"start": start, "end": end},
                 "parent": {"type": "subscription_item_details", "invoice_item_details": None,
                            "subscription_item_details": {
                                "invoice_item": None, "proration": reason == "proration",
                                "proration_details": {"credited_items": None},
                                "subscription": sub["id"], "subscription_item": item["id"]}},
                 "pricing": {"type": "price_details", "price_details": {
                     "price": item["price"]["id"], "product": item["price"]["product"]},
                     "unit_amount_decimal": str(item["price"]["unit_amount"])},
                 "quantity": item["quantity"], "subtotal": amount})
    now = int(time.time())
    invoice.update({
        "id": invoice_id, "object": "invoice", "amount_due": amount,
        "amount_paid": amount if paid else 0, "amount_remaining": 0 if paid else amount,
        "amount_overpaid": 0, "attempt_count": 1, "attempted": True, "auto_advance": not paid,
        "billing_reason": "subscription_update" if reason == "proration" else reason,
        "collection_method": "charge_automatically", "created": now,
        "currency": sub["currency"], "customer": sub["customer"],
        "customer_email": customer.get("email"), "customer_name": customer.get("name"),
        "livemode": False, "metadata": {},
        "lines": {"object": "list", "data": [line], "has_more": False, "total_count": 1,
                  "url": f"/v1/invoices/{invoice_id}/lines"},
        "number": f"LOCAL-{len(s._invoices) + 1:04d}",
        "parent": {"type": "subscription_details", "quote_details": None,
                   "subscription_details": {"metadata": dict(sub["metadata"]),
                                            "subscription": sub["id"]}},
        "period_start": start, "period_end": end, "status": "paid" if paid else "open",
        "status_transitions": {"finalized_at": now, "marked_uncollectible_at": None,
                               "paid_at": now if paid else None, "voided_at": None},
        "subscription": sub["id"], "subtotal": amount, "subtotal_excluding_tax": amount,
        "total": amount, "total_excluding_tax": amount,
        "hosted_invoice_url": f"{s.page_base}/invoices/{invoice_id}",
        "next_payment_attempt": None if paid else now + 3 * 86400})
    s._invoices[invoice_id] = invoice
    sub["latest_invoice"] = invoice_id
    return invoice


# -- the Subscriptions API ---------------------------------------------------------------------

def subscription_of(s: StripeStandIn, sub_id: str) -> dict:
    if sub_id not in s._subscriptions:
        raise _missing("subscription", sub_id, "id")
    return s._subscriptions[sub_id]


def list_subscriptions(s: StripeStandIn, params: dict) -> dict:
    found = [sub for sub in s._subscriptions.values()
             if not params.get("customer") or sub["customer"] == params["customer"]]
    return {"object": "list", "data": found, "has_more": False, "url": "/v1/subscriptions"}


def update_subscription(s: StripeStandIn, sub_id: str, params: dict,
                        request: dict | None) -> dict:
    sub = subscription_of(s, sub_id)
    if sub["status"] == "canceled":
        raise StandInError("A canceled subscription can only update its cancellation_details "
                           "and metadata.")
    before: dict[str, Any] = {}
    if "cancel_at_period_end" in params:
        wanted = str(params["cancel_at_period_end"]).lower() == "true"
        if wanted != sub["cancel_at_period_end"]:
            before["cancel_at_period_end"] = sub["cancel_at_period_end"]
            sub["cancel_at_period_end"] = wanted
            sub["cancel_at"] = sub["items"]["data"][0]["current_period_end"] if wanted else None
            sub["canceled_at"] = int(time.time()) if wanted else None
    if "metadata" in params:
        before["metadata"] = dict(sub["metadata"])
        sub["metadata"] = {**sub["metadata"], **_metadata(params["metadata"])}
    invoice = None
    if params.get("items"):
        changes = params["items"]
        if not isinstance(changes, list):
            raise StandInError("Invalid array", param="items")
        change = _dict(changes[0], "items[0]")
        item = next((i for i in sub["items"]["data"] if i["id"] == change.get("id")), None)
        if item is None:
            raise _missing("subscription_item", str(change.get("id")), "items[0][id]")
        new = price_of(s, str(change.get("price")), "items[0][price]")
        behavior = params.get("proration_behavior") or "create_prorations"
        if behavior not in ("create_prorations", "none", "always_invoice"):
            raise StandInError("Invalid proration_behavior.", param="proration_behavior")
        old = item["price"]
        before["items"] = copy.deepcopy(sub["items"])
        now = int(time.time())
        start, end = item["current_period_start"], item["current_period_end"]
        left = max(0, end - now) / max(1, end - start)
        difference = round((int(new["unit_amount"]) - int(old["unit_amount"])) * left)
        if new["recurring"]["interval"] != old["recurring"]["interval"]:
            # A new interval starts a new period now, billed in full less the unused time.
            item["current_period_start"] = now
            item["current_period_end"] = _add_interval(now, new["recurring"]["interval"])
            difference = int(new["unit_amount"]) - round(int(old["unit_amount"]) * left)
        item["price"] = copy.deepcopy(new)
        if behavior == "always_invoice" and difference > 0:
            invoice = _new_invoice(s, sub, "proration", paid=True, amount=difference)
    _emit_updated(s, sub, before, request)
    if invoice is not None:
        s._emit("invoice.paid", invoice, request)
    return sub


def _emit_updated(s: StripeStandIn, sub: dict, before: dict, request: dict | None) -> str:
    """`customer.subscription.updated`, its `previous_attributes` beside the object as
    Stripe puts them (in `data`)."""
    return s._emit("customer.subscription.updated", sub, request, previous=before)


def cancel_subscription(s: StripeStandIn, sub_id: str, request: dict | None = None,
                        reason: str = "cancellation_requested") -> dict:
    sub = subscription_of(s, sub_id)
    if sub["status"] == "canceled":
        return sub
    now = int(time.time())
    sub.update({"status": "canceled", "ended_at": now, "canceled_at": sub["canceled_at"] or now,
                "cancellation_details": {"comment": None, "feedback": None, "reason": reason}})
    s._emit("customer.subscription.deleted", sub, request)
    return sub


# -- what a person triggers by hand --------------------------------------------------------------

def renew(s: StripeStandIn, sub_id: str) -> list[str]:
    """The period ends: the next one is invoiced and paid (a past-due subscription is paid
    up), or a subscription set to cancel at the period's end ends."""
    sub = subscription_of(s, sub_id)
    if sub["status"] == "canceled":
        raise StandInError(f"Subscription {sub_id} is canceled.", status=409)
    if sub["cancel_at_period_end"]:
        cancel_subscription(s, sub_id)
        return [s._events[-1]["id"]]
    before = {"status": sub["status"], "items": copy.deepcopy(sub["items"])}
    if sub["status"] != "past_due":  # a failed renewal already started the new period
        for item in sub["items"]["data"]:
            start = item["current_period_end"]
            item["current_period_start"] = start
            item["current_period_end"] = _add_interval(start, item["price"]["recurring"]
                                                       ["interval"])
    sub["status"] = "active"
    invoice = _new_invoice(s, sub, "subscription_cycle", paid=True)
    return [s._emit("invoice.paid", invoice), _emit_updated(s, sub, before, None)]


def fail_renewal(s: StripeStandIn, sub_id: str) -> list[str]:
    """The period ends and its renewal's payment fails: the new period starts unpaid and the
    subscription is past due."""
    sub = subscription_of(s, sub_id)
    if sub["status"] == "canceled":
        raise StandInError(f"Subscription {sub_id} is canceled.", status=409)
    before = {"status": sub["status"], "items": copy.deepcopy(sub["items"])}
    if sub["status"] != "past_due":
        for item in sub["items"]["data"]:
            start = item["current_period_end"]
            item["current_period_start"] = start
            item["current_period_end"] = _add_interval(start, item["price"]["recurring"]
                                                       ["interval"])
    sub["status"] = "past_due"
    invoice = _new_invoice(s, sub, "subscription_cycle", paid=False)
    return [s._emit("invoice.payment_failed", invoice), _emit_updated(s, sub, before, None)]


def lapse(s: StripeStandIn, sub_id: str) -> list[str]:
    """Stripe's retries are over: the subscription is canceled."""
    cancel_subscription(s, sub_id, reason="payment_failed")
    return [s._events[-1]["id"]]
