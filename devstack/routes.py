"""Routes that exist only in local mode (LOCAL_MODE=true): the outbox of sent mail and the
completion of local Stripe Checkout Sessions. `app.py` registers this blueprint only then, so
nothing under /_local/ exists on AWS."""
from typing import Literal

import msgspec
from chalice import Blueprint

from chalicelib.accounts.schemas import Input
from chalicelib.config import settings
from chalicelib.errors import Conflict, NotFound
from chalicelib.web import ANYONE, Ctx, Router

bp = Blueprint(__name__)
api = Router(bp, local_only=True)


class OutboxQuery(msgspec.Struct):
    to: str | None = None


class Mail(msgspec.Struct):
    id: str
    sender: str
    to: list[str]
    subject: str
    body: str


class Outbox(msgspec.Struct):
    items: list[Mail]
    next_cursor: str | None = None


@api.route("/_local/outbox", "GET", role=ANYONE, tags=("local",), query=OutboxQuery,
           response=Outbox, summary="Mail sent through the embedded SES, newest first")
def outbox(ctx: Ctx) -> Outbox:
    # moto's SES keeps sent mail in the memory of this process (the embedded server).
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    sent = ses_backends[DEFAULT_ACCOUNT_ID][settings().region].sent_messages
    items = [Mail(id=m.id, sender=m.source, to=list(m.destinations.get("ToAddresses", [])),
                  subject=getattr(m, "subject", ""), body=getattr(m, "body", ""))
             for m in reversed(sent)]
    if ctx.query.to:
        wanted = ctx.query.to.strip().lower()
        items = [m for m in items if wanted in (t.lower() for t in m.to)]
    return Outbox(items=items)


class PayIn(Input):
    outcome: Literal["succeeded", "failed"]
    delayed: bool = False


class PayOut(msgspec.Struct):
    session_id: str
    outcome: str
    events: list[str]


@api.route("/_local/stripe/checkout/{session_id}/pay", "POST", role=ANYONE, tags=("local",),
           body=PayIn, response=PayOut, status=202, errors=(404, 409),
           summary="Complete a local Stripe Checkout Session the way Stripe would")
def stripe_checkout_pay(ctx: Ctx, session_id: str) -> PayOut:
    """Signed Stripe events go to /webhooks/stripe as Stripe sends them; lists their ids."""
    # The local Stripe stand-in completes the open session: `succeeded` sends
    # `checkout.session.completed` (paid), or with `delayed` (Alipay/WeChat-style notification)
    # `completed` (unpaid) then `checkout.session.async_payment_succeeded`; `failed` sends
    # `completed` (unpaid) then `checkout.session.async_payment_failed`. Delivery follows the
    # answer. An unknown or not open session is a 409.
    from devstack import stripe_standin

    standin = stripe_standin.current()
    if standin is None:
        raise NotFound("The local Stripe stand-in is not running in this process.",
                       code="stripe_standin_not_running")
    try:
        events = standin.pay(session_id, ctx.body.outcome, delayed=ctx.body.delayed)
    except stripe_standin.StandInError as exc:
        raise Conflict(exc.message, code="checkout_session_not_payable",
                       details={"session_id": session_id}) from None
    return PayOut(session_id=session_id, outcome=ctx.body.outcome, events=events)


class SubscriptionEvents(msgspec.Struct):
    subscription_id: str
    status: str
    events: list[str]


@api.route("/_local/stripe/subscriptions/{subscription_id}/{action}", "POST", role=ANYONE,
           tags=("local",), response=SubscriptionEvents, status=202, errors=(404, 409),
           summary="Renew a local subscription's period, fail its renewal, or end it (lapse)")
def stripe_subscription_trigger(ctx: Ctx, subscription_id: str, action: str
                                ) -> SubscriptionEvents:
    """`renew`: the next period invoiced and paid (`invoice.paid`, then
    `customer.subscription.updated`), or, when set to cancel at the period's end, ended
    (`customer.subscription.deleted`); `fail`: the renewal's payment failed
    (`invoice.payment_failed`, the subscription `past_due`); `lapse`: Stripe gives up
    (`customer.subscription.deleted`). Signed events go to /webhooks/stripe."""
    from devstack import stripe_standin

    standin = stripe_standin.current()
    actions = {"renew": "renew", "fail": "fail_renewal", "lapse": "lapse"}
    if standin is None or action not in actions:
        raise NotFound("No such local Stripe action.", code="stripe_action_not_found")
    try:
        events = getattr(standin, actions[action])(subscription_id)
    except stripe_standin.StandInError as exc:
        raise Conflict(exc.message, code="subscription_not_changeable",
                       details={"subscription_id": subscription_id}) from None
    return SubscriptionEvents(subscription_id=subscription_id,
                              status=standin.get(subscription_id)["status"], events=events)
