"""Pricing and checkout. A quote stores nothing; a checkout stores a pending order with its
price snapshot and opens a Stripe Checkout Session for it, or grants free resources at once.
Reads: one BatchGetItem for the buyer's email, the resources (the catalog's offers) and the
buyer's entitlements together, each context handing over its part as a `db.Read`."""
from __future__ import annotations

import time
import uuid
from typing import Any, cast

from chalicelib import db
from chalicelib.accounts import profiles
from chalicelib.catalog import public
from chalicelib.catalog.public import Offer
from chalicelib.catalog.schemas import Currency, Money
from chalicelib.config import settings
from chalicelib.errors import Conflict, NotFound, ProviderUnavailable, Refused
from chalicelib.observability import logger
from chalicelib.payments import processing
from chalicelib.payments.schemas import CheckoutOut, Quote, QuoteLine
from chalicelib.payments.states import OrderStatus
from chalicelib.payments.store import Entitlement, Line, OpenCheckout, OrderLine, OrderRecord
from chalicelib.pricing import engine, methods

# Stripe's shortest allowed session lifetime is 30 minutes from when it receives the request;
# the margin keeps a slow request from falling under it.
SESSION_SECONDS = 30 * 60 + 30


class AlreadyOwned(Conflict):
    code = "already_owned"
    message = "You already have access to this resource."


class MixedCurrencies(Refused):
    code = "mixed_currencies"
    message = "All items of one order must be in the same currency."


class PaymentProviderError(ProviderUnavailable):
    """Stripe refused or could not be reached; nothing was stored."""

    message = "The payment provider is unavailable; nothing was charged. Try again."


def _load(user_id: str, resource_ids: list[str]) -> tuple[list[Offer], set[str], str | None]:
    """The resources' offers, which of them the user owns, and the user's email (for the
    Stripe session and the receipt): one BatchGetItem over three tables."""
    users, resources, owned = db.batch_read(
        profiles.email_read(user_id), public.resources_read(resource_ids),
        Entitlement.read(user_id, resource_ids, status_only=True))
    by_id = public.offers_in(resources)
    missing = [r for r in resource_ids if r not in by_id or by_id[r].status != "published"]
    if missing:
        raise NotFound("Some resources are not on sale.", code="resource_not_found",
                       details={"resource_ids": missing})
    return [by_id[r] for r in resource_ids], Entitlement.active_in(owned), \
        profiles.email_in(users)


def price(user_id: str, resource_ids: list[str], plan_id: str | None, coupon_code: str | None,
          points: int) -> tuple[Quote, list[Offer], str | None]:
    """The price breakdown of a would-be order, refusing what cannot be bought."""
    if plan_id:
        raise NotFound("No such membership plan.", code="plan_not_found")
    if coupon_code:
        raise Refused("The coupon is not valid.", code="coupon_invalid")
    resources, owned, email = _load(user_id, resource_ids)
    already = [r.id for r in resources if r.id in owned]
    if already:
        raise AlreadyOwned(details={"resource_ids": already})
    currencies = {r.currency for r in resources}
    if len(currencies) > 1:
        raise MixedCurrencies(details={"currencies": sorted(currencies)})
    # No membership, coupon or points ledger yet: no member discount, and a points balance
    # of 0, so any points asked for are refused by the engine (insufficient_points).
    priced = engine.price(currencies.pop(), [
        engine.Item(r.id, r.price_amount, r.category_path, r.creator_id) for r in resources],
        points=points, points_balance=0)
    return quote_of(priced, resources), resources, email


def quote_of(priced: engine.Priced, offers: list[Offer]) -> Quote:
    """The engine's breakdown as the API shows it."""
    currency = cast(Currency, priced.currency)

    def money(amount: int) -> Money:
        return Money(amount=amount, currency=currency)

    lines = [QuoteLine(resource_id=line.resource_id, title=offer.title,
                       unit_price=money(line.list_amount),
                       member_discount=money(line.member_discount),
                       coupon_discount=money(line.coupon_discount),
                       points_discount=money(line.points_discount), total=money(line.total))
             for line, offer in zip(priced.lines, offers, strict=True)]
    return Quote(items=lines, subtotal=money(priced.list_total),
                 member_discount=money(priced.member_discount),
                 coupon_discount=money(priced.coupon_discount),
                 points_discount=money(priced.points_discount),
                 discount=money(priced.list_total - priced.total), total=money(priced.total),
                 coupon_code=priced.coupon_code, points_used=priced.points_used,
                 payment_methods=methods.for_checkout(priced.currency, "payment"))


def _session_params(order: OrderRecord, quote: Quote) -> dict[str, Any]:
    cfg = settings()
    currency = quote.total.currency
    params: dict[str, Any] = {
        "mode": "payment",
        # Each line at what it costs after every discount, so Stripe's total is the quote's;
        # a line the discounts made free is on the order, not on the payment.
        "line_items": [{"quantity": 1, "price_data": {
            "currency": currency, "unit_amount": line.total.amount,
            "product_data": {"name": line.title, "metadata": {"resource_id": line.resource_id}}}}
            for line in quote.items if line.total.amount > 0],
        "client_reference_id": order.order_id,
        "metadata": {"order_id": order.order_id, "user_id": order.user_id},
        "payment_intent_data": {"metadata": {"order_id": order.order_id}},
        "success_url": f"{cfg.storefront_url}/orders/{order.order_id}?checkout=success",
        "cancel_url": f"{cfg.storefront_url}/orders/{order.order_id}?checkout=cancelled",
        "expires_at": int(time.time()) + SESSION_SECONDS,
    }
    if order.email:
        params["customer_email"] = order.email
    params["payment_method_types"] = quote.payment_methods
    params.update(methods.session_options(quote.payment_methods))
    return params


def new_order(order_id: str, user_id: str, email: str | None, quote: Quote,
              resources: list[Offer]) -> OrderRecord:
    now = db.now_iso()
    return OrderRecord(
        pk=OrderRecord.key(order_id), order_id=order_id, user_id=user_id, email=email,
        currency=quote.total.currency, subtotal=quote.subtotal.amount,
        discount=quote.discount.amount, total=quote.total.amount,
        lines=[Line(resource_id=r.id, title=r.title, creator_id=r.creator_id,
                    unit_amount=r.price_amount, total=line.total.amount)
               for r, line in zip(resources, quote.items, strict=True)],
        created_at=now, updated_at=now, gsi1pk=OrderRecord.user_key(user_id),
        gsi1sk=OrderRecord.time_key(now, order_id), gsi2sk=OrderRecord.time_key(now, order_id),
        gsi3pk=OrderRecord.status_key(OrderStatus.PENDING),
        gsi3sk=OrderRecord.time_key(now, order_id))


class CheckoutInProgress(Conflict):
    code = "checkout_in_progress"
    message = "A checkout of these items is being opened; try again in a moment."


def _claim_basket(claim: OpenCheckout) -> CheckoutOut | None:
    """Claim the buyer's basket for a new checkout (None), or the checkout already open for
    it. A lapsed claim, or one whose order ended unpaid, is taken over under a condition."""
    from pynamodb.exceptions import PutError

    from chalicelib.payments import orders

    now = int(time.time())
    condition = OpenCheckout.sk.does_not_exist() | (OpenCheckout.expires_at < now)
    for _ in range(2):
        try:
            claim.save(condition=condition)
            return None
        except PutError as exc:
            if not db.is_condition_failure(exc):
                raise
        try:
            held = OpenCheckout.get(claim.pk, claim.sk, consistent_read=True)
        except OpenCheckout.DoesNotExist:
            continue
        order = processing.load(held.order_id)
        if order is None:  # its request is still creating the Stripe session
            raise CheckoutInProgress()
        if order.status == "pending" and order.checkout_url:
            return CheckoutOut(order=orders.order_out(order), checkout_url=order.checkout_url,
                               checkout_session_id=order.session_id)
        condition = OpenCheckout.order_id == held.order_id  # ended unpaid: take it over
    raise CheckoutInProgress()


def _release_basket(claim: OpenCheckout) -> None:
    from pynamodb.exceptions import DeleteError

    try:
        claim.delete(condition=OpenCheckout.order_id == claim.order_id)
    except DeleteError:
        logger.warning("open-checkout claim not released", extra={"order_id": claim.order_id})


def checkout(user_id: str, email: str | None, resource_ids: list[str], plan_id: str | None,
             coupon_code: str | None, points: int) -> CheckoutOut:
    """Open a Stripe Checkout Session for a new pending order, or grant free items at once.
    `email` overrides the account's (None: the account's, read with the resources)."""
    from chalicelib.payments import orders

    quote, resources, account_email = price(user_id, resource_ids, plan_id, coupon_code, points)
    email = email or account_email
    order_id = uuid.uuid4().hex
    order = new_order(order_id, user_id, email, quote, resources)
    if quote.total.amount == 0:
        processing.grant_free(order)
        # The order as the grant's transaction stored it.
        return CheckoutOut(order=orders.order_out(order),
                           checkout_url=None, checkout_session_id=None)
    from chalicelib.payments import gateway

    claim = OpenCheckout(pk=OpenCheckout.key(user_id), sk=OpenCheckout.sort_key(resource_ids),
                         order_id=order_id, expires_at=int(time.time()) + SESSION_SECONDS)
    opened = _claim_basket(claim)
    if opened is not None:
        return opened
    try:
        session = gateway.create_checkout_session(_session_params(order, quote),
                                                  idempotency_key=f"checkout-{order_id}")
    except gateway.stripe_errors() as exc:
        logger.exception("checkout session not created", extra={"order_id": order_id})
        _release_basket(claim)
        raise PaymentProviderError() from exc
    order.session_id, order.checkout_url = session.id, session.url
    # The only write: if it fails, the session is orphaned and simply expires unpaid.
    with db.transaction() as tx:
        tx.save(order, condition=OrderRecord.pk.does_not_exist())
        for line in OrderLine.of(order):
            tx.save(line)
    order.version = 1
    return CheckoutOut(order=orders.order_out(order), checkout_url=session.url,
                       checkout_session_id=session.id)
