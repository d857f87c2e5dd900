"""Pricing and checkout. A quote stores nothing; a checkout stores a pending order with its
price snapshot and opens a Stripe Checkout Session for it, or grants free resources at once.
Reads: one BatchGetItem for the buyer's email, the resources (the catalog's offers), the
buyer's entitlements, membership, coupon and points account together, each context handing
over its part as a `db.Read`; writes: one transaction of the order with its coupon
reservation and its points hold."""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, cast

from chalicelib import db
from chalicelib.accounts import profiles
from chalicelib.analytics import events as analytics
from chalicelib.catalog import public
from chalicelib.catalog.public import Offer
from chalicelib.catalog.schemas import Currency, Money
from chalicelib.config import settings
from chalicelib.coupons import public as coupons
from chalicelib.errors import Conflict, NotFound, ProviderUnavailable, Refused
from chalicelib.memberships import public as memberships
from chalicelib.observability import logger
from chalicelib.payments import processing
from chalicelib.payments.schemas import CheckoutOut, Quote, QuoteLine
from chalicelib.payments.states import OrderStatus
from chalicelib.payments.store import Entitlement, Line, OpenCheckout, OrderLine, OrderRecord
from chalicelib.points import public as points_port
from chalicelib.pricing import engine, methods
from chalicelib.referrals import public as referrals

# Stripe's shortest allowed session lifetime is 30 minutes from when it receives the request;
# the margin keeps a slow request from falling under it.
SESSION_SECONDS = 30 * 60 + 30


class AlreadyOwned(Conflict):
    code = "already_owned"
    message = "You already have access to this resource."


class IncludedInMembership(Conflict):
    code = "included_in_membership"
    message = "Your membership already gives you this resource."


class MixedCurrencies(Refused):
    code = "mixed_currencies"
    message = "All items of one order must be in the same currency."


class PaymentProviderError(ProviderUnavailable):
    """Stripe refused or could not be reached; nothing was stored."""

    message = "The payment provider is unavailable; nothing was charged. Try again."


@dataclass
class Priced:
    """A would-be order as checkout prices it: the quote, the offers, the buyer's email,
    and the coupon as the coupons context found it (None without one)."""

    quote: Quote
    offers: list[Offer]
    email: str | None
    coupon: coupons.Found | None
    referral: referrals.Referral | None = None


def price(user_id: str, resource_ids: list[str], plan_id: str | None, coupon_code: str | None,
          points: int, with_referral: bool = False) -> Priced:
    """The price breakdown of a would-be order, refusing what cannot be bought. One
    BatchGetItem: the buyer's email, the resources (the catalog's offers), the buyer's
    entitlements and membership, with a coupon the coupon with the buyer's uses of it, with
    points the points account and, `with_referral` (a checkout), the buyer's attribution."""
    if plan_id:
        raise Refused("A membership is priced by its plan (GET /membership/plans); only "
                      "resources are quoted.", code="plan_not_quoted")
    if not resource_ids:
        raise Refused("Name the resources to buy, or a plan to subscribe to.",
                      code="items_required")
    reads = [profiles.email_read(user_id), public.resources_read(resource_ids),
             Entitlement.read(user_id, resource_ids, status_only=True),
             memberships.read(user_id)]
    if coupon_code:
        reads.append(coupons.read(coupon_code, user_id))
    if points:
        reads.append(points_port.account_read(user_id))
    if with_referral:
        reads.append(referrals.attribution_read(user_id))
    users, resources, owned, membership, *rest = db.batch_read(*reads)
    attribution = rest.pop() if with_referral else []
    coupon_items = rest[0] if coupon_code else []
    balance = points_port.available_in(rest[-1]) if points else 0
    by_id = public.offers_in(resources)
    missing = [r for r in resource_ids if r not in by_id or by_id[r].status != "published"]
    if missing:
        raise NotFound("Some resources are not on sale.", code="resource_not_found",
                       details={"resource_ids": missing})
    offers = [by_id[r] for r in resource_ids]
    active = Entitlement.active_in(owned)
    already = [r.id for r in offers if r.id in active]
    if already:
        raise AlreadyOwned(details={"resource_ids": already})
    currencies = {r.currency for r in offers}
    if len(currencies) > 1:
        raise MixedCurrencies(details={"currencies": sorted(currencies)})
    currency = currencies.pop()
    now = db.now_iso()
    member = memberships.benefits_in(membership, now)
    included = [r.id for r in offers if r.members_only and member.level >= r.member_level]
    if included:
        raise IncludedInMembership(details={"resource_ids": included})
    found = coupons.found_in(coupon_items, coupon_code, user_id) if coupon_code else None
    terms = coupons.terms(found, currency, now) if found else None
    priced = engine.price(currency, [
        engine.Item(r.id, r.price_amount, r.category_path, r.creator_id) for r in offers],
        member_percent=member.discount_percent, coupon=terms, points=points,
        points_balance=balance)
    return Priced(quote_of(priced, offers), offers, profiles.email_in(users), found,
                  referrals.referral_in(attribution, user_id))


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
              resources: list[Offer], referral: referrals.Referral | None = None) -> OrderRecord:
    now = db.now_iso()
    return OrderRecord(
        pk=OrderRecord.key(order_id), order_id=order_id, user_id=user_id, email=email,
        coupon_code=quote.coupon_code, points_used=quote.points_used,
        referrer_id=referral.referrer_id if referral else None,
        referral_code=referral.code if referral else None,
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


class _Reservation:
    """What the order's transaction holds for it besides the order, right after the order's
    put: its coupon, then its points; and which of them refused, when one did."""

    def __init__(self, priced: Priced, order: OrderRecord) -> None:
        self.priced, self.order = priced, order
        self.coupon_items = 0

    def __call__(self, tx: Any) -> int:
        priced, order = self.priced, self.order
        if priced.coupon is not None:
            self.coupon_items = coupons.add_reservation(
                tx, priced.coupon, order.order_id, priced.quote.coupon_discount.amount,
                order.currency, order.created_at)
        if priced.quote.points_used:
            points_port.add_hold(tx, order.user_id, order.order_id, priced.quote.points_used,
                                 order.created_at)
        return self.coupon_items + (points_port.HOLD_ITEMS if priced.quote.points_used else 0)

    def refused(self, exc: Exception) -> Exception | None:
        codes = db.cancellation_codes(exc)
        refused = coupons.refusal(codes, 1) if self.coupon_items else None
        if refused is None and self.priced.quote.points_used and \
                points_port.hold_refused(codes, 1 + self.coupon_items):
            return engine.InsufficientPoints()
        return refused


def checkout(user_id: str, email: str | None, resource_ids: list[str], plan_id: str | None,
             coupon_code: str | None, points: int, interval: str | None = None,
             currency: str | None = None) -> CheckoutOut:
    """Open a Stripe Checkout Session for a new pending order, or grant free items at once;
    or, with `plan_id`, one in subscription mode for a membership.
    `email` overrides the account's (None: the account's, read with the resources). The
    coupon is reserved, and the points held, in the order's one transaction."""
    from pynamodb.exceptions import TransactWriteError

    from chalicelib.payments import orders

    if plan_id:
        return _subscribe(user_id, email, resource_ids, plan_id, coupon_code, points,
                          interval, currency)

    priced = price(user_id, resource_ids, plan_id, coupon_code, points, with_referral=True)
    quote = priced.quote
    for offer in priced.offers:
        analytics.track("checkout.started", resource_id=offer.id, creator_id=offer.creator_id,
                        category=offer.category_path[0] if offer.category_path else None,
                        viewer=user_id)
    order_id = uuid.uuid4().hex
    order = new_order(order_id, user_id, email or priced.email, quote, priced.offers,
                      priced.referral)
    reserve = _Reservation(priced, order)
    if quote.total.amount == 0:
        try:
            processing.grant_free(order, reserve)
        except TransactWriteError as exc:
            raise reserve.refused(exc) or exc from None
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
    # The only write: if it fails, the session is orphaned and expires unpaid; when the
    # coupon or the points were refused it is expired now, so it cannot be paid.
    try:
        with db.transaction() as tx:
            tx.save(order, condition=OrderRecord.pk.does_not_exist())
            reserve(tx)
            for line in OrderLine.of(order):
                tx.save(line)
    except TransactWriteError as exc:
        refused = reserve.refused(exc)
        if refused is None:
            raise
        _release_basket(claim)
        _expire_quietly(session.id)
        raise refused from None
    order.version = 1
    return CheckoutOut(order=orders.order_out(order), checkout_url=session.url,
                       checkout_session_id=session.id)


def _expire_quietly(session_id: str) -> None:
    from chalicelib.payments import gateway

    try:
        gateway.expire_session(session_id)
    except gateway.stripe_errors():
        # It expires by itself within the half hour; no order of ours can be paid by it.
        logger.exception("refused checkout's session not expired",
                         extra={"session_id": session_id})


def _subscribe(user_id: str, email: str | None, resource_ids: list[str], plan_id: str,
               coupon_code: str | None, points: int, interval: str | None,
               currency: str | None) -> CheckoutOut:
    from chalicelib.memberships import billing

    if resource_ids or coupon_code or points:
        raise Refused("A membership is bought on its own, without items, coupon or points.",
                      code="subscription_alone")
    if interval is None:
        raise Refused("Say which interval: month or year.", code="interval_required")
    session_id, url = billing.subscribe(user_id, email or profiles.get_user(user_id).email,
                                        plan_id, interval, currency)
    return CheckoutOut(order=None, checkout_url=url, checkout_session_id=session_id,
                       mode="subscription")
