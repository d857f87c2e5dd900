"""Routes that exist only in local mode (LOCAL_MODE=true): the outbox of sent mail and the
completion of local Stripe Checkout Sessions. `app.py` registers this blueprint only then, so
nothing under /_local/ exists on AWS."""
from typing import Annotated, Literal

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


class DashboardQuery(msgspec.Struct, forbid_unknown_fields=True):
    days: Annotated[int, msgspec.Meta(ge=1, le=90)] = 7
    currency: Annotated[str, msgspec.Meta(pattern=r"^[a-z]{3}$")] = "cny"


class DashboardDay(msgspec.Struct):
    day: str
    gross: int  # minor units, in `currency`
    refunds: int
    net: int
    orders: int
    signups: int
    views: int
    checkouts: int
    paid: int
    active_members: int
    mrr: int


class Dashboard(msgspec.Struct):
    """The business figures of the CloudWatch dashboard, from the same rollups."""

    currency: str
    days: list[DashboardDay]
    conversion: float  # paid orders per view over the days
    checkout_rate: float  # checkouts started per view


@api.route("/_local/dashboard", "GET", role=ANYONE, tags=("local",), query=DashboardQuery,
           response=Dashboard, summary="The dashboard's business figures, from the rollups")
def dashboard(ctx: Ctx) -> Dashboard:
    from datetime import date, timedelta

    from chalicelib import db
    from chalicelib.analytics import reports, revenue, rollup

    days, currency = ctx.query.days, ctx.query.currency
    last = db.now_iso()[:10]
    first = (date.fromisoformat(last) - timedelta(days=days - 1)).isoformat()
    money = {r["period"]: r for r in revenue.revenue("platform", currency, first, last, "day")}
    counts = rollup.dailies(("signups", "views", "checkouts", "paid"), first, last)
    members = reports.memberships(first, last, currency, "day")
    rows = [DashboardDay(day=m.period, gross=money[m.period]["gross"],
                         refunds=money[m.period]["refunds"], net=money[m.period]["net"],
                         orders=money[m.period]["orders"],
                         active_members=m.active, mrr=m.mrr,
                         **{name: values.get(m.period, 0) for name, values in counts.items()})
            for m in members.rows]
    views = sum(counts["views"].values())
    return Dashboard(currency=currency, days=rows,
                     conversion=round(sum(counts["paid"].values()) / views, 4) if views else 0.0,
                     checkout_rate=round(sum(counts["checkouts"].values()) / views, 4)
                     if views else 0.0)
