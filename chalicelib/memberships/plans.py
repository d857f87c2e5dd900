"""Membership plans: admins make and change them; buyers list them; `sync` gives each price
its Stripe Price (a Product per plan, a recurring Price per interval and currency, found
again by its lookup key, so a sync run twice makes nothing twice)."""
from __future__ import annotations

from msgspec import UNSET
from pynamodb.exceptions import PutError, UpdateError
from pynamodb.expressions.update import Action

from chalicelib import db, stripe_client
from chalicelib.errors import Conflict, NotFound
from chalicelib.memberships import store
from chalicelib.memberships.schemas import PlanIn, PlanList, PlanOut, PlanPatch
from chalicelib.memberships.store import PlanRecord


class PlanExists(Conflict):
    code = "plan_exists"
    message = "A plan with this id exists."


class PlanNotFound(NotFound):
    code = "plan_not_found"
    message = "No such membership plan."


plain = db.plain_map


def prices_of(plan: PlanRecord) -> dict[str, dict[str, int]]:
    return {interval: {c: int(a) for c, a in plain(by_currency).items()}
            for interval, by_currency in plain(plan.prices).items()}


def price_keys(plan: PlanRecord) -> list[str]:
    return [f"{interval}:{currency}" for interval, by_currency in prices_of(plan).items()
            for currency in by_currency]


def out(plan: PlanRecord) -> PlanOut:
    synced = plain(plan.stripe_prices)
    return PlanOut(id=plan.plan_id, name=plan.name, description=plan.description,
                   level=int(plan.level), prices=prices_of(plan),
                   discount_percent=int(plan.discount_percent),
                   monthly_points=int(plan.monthly_points),
                   priority_support=bool(plan.priority_support), active=bool(plan.active),
                   synced=all(key in synced for key in price_keys(plan)))


def create(body: PlanIn) -> PlanOut:
    """A new plan; 409 when its id is taken."""
    now = db.now_iso()
    plan = PlanRecord(pk=PlanRecord.key(body.plan_id), plan_id=body.plan_id, name=body.name,
                      description=body.description, level=body.level,
                      prices={i: dict(p) for i, p in body.prices.items()},
                      discount_percent=body.discount_percent,
                      monthly_points=body.monthly_points,
                      priority_support=body.priority_support, created_at=now, updated_at=now,
                      gsi1sk=PlanRecord.level_key(body.level, body.plan_id))
    try:
        plan.save(condition=PlanRecord.pk.does_not_exist())
    except PutError as exc:
        if db.is_condition_failure(exc):
            raise PlanExists() from None
        raise
    return out(plan)


def get(plan_id: str) -> PlanRecord:
    plan = store.get_plan(plan_id)
    if plan is None:
        raise PlanNotFound()
    return plan


def update(plan_id: str, patch: PlanPatch) -> PlanOut:
    """Change a plan; one conditional update. Members keep the discount their subscription
    was last synced with until Stripe next tells us of it (renewal, change)."""
    actions: list[Action] = [PlanRecord.updated_at.set(db.now_iso())]
    for name in ("name", "description", "discount_percent", "monthly_points",
                 "priority_support", "active"):
        value = getattr(patch, name)
        if value is not UNSET:
            actions.append(getattr(PlanRecord, name).set(value))
    if patch.prices is not UNSET:
        actions.append(PlanRecord.prices.set({i: dict(p) for i, p in patch.prices.items()}))
    try:
        PlanRecord(pk=PlanRecord.key(plan_id)).update(
            actions=actions, condition=PlanRecord.pk.exists(), add_version_condition=False)
    except UpdateError as exc:
        if db.is_condition_failure(exc):
            raise PlanNotFound() from None
        raise
    return out(get(plan_id))


def list_plans(include_inactive: bool) -> PlanList:
    """The plans by level: one Query."""
    return PlanList(items=[out(p) for p in store.plans() if include_inactive or p.active])


def lookup_key(plan: PlanRecord, interval: str, currency: str) -> str:
    # The amount is in the key: a Stripe Price never changes, so a new price is a new Price.
    amount = prices_of(plan)[interval][currency]
    return f"paidres-plan-{plan.plan_id}-{interval}-{currency}-{amount}"


def sync(plan_id: str) -> PlanOut:
    """Give every price of the plan its Stripe Price, reusing one found by lookup key."""
    plan = get(plan_id)
    client = stripe_client.client().v1
    product_id = f"paidres_plan_{plan.plan_id}"
    try:
        client.products.retrieve(product_id)
    except stripe_client.stripe_errors():
        client.products.create(params={"id": product_id, "name": plan.name,
                                       "metadata": {"plan_id": plan.plan_id}},
                               options={"idempotency_key": f"product-{product_id}"})
    made: dict[str, str] = {}
    for interval, by_currency in prices_of(plan).items():
        for currency, amount in by_currency.items():
            key = lookup_key(plan, interval, currency)
            found = client.prices.list(params={"lookup_keys": [key], "active": True}).data
            price = found[0] if found else client.prices.create(params={
                "product": product_id, "currency": currency, "unit_amount": amount,
                "recurring": {"interval": interval}, "lookup_key": key,
                "metadata": {"plan_id": plan.plan_id, "interval": interval}},
                options={"idempotency_key": f"price-{key}"})
            made[f"{interval}:{currency}"] = price.id
    plan.update(actions=[PlanRecord.stripe_prices.set(made),
                         PlanRecord.updated_at.set(db.now_iso())],
                add_version_condition=False)
    return out(get(plan_id))


SEED = (
    PlanIn(plan_id="member", name="会员", level=1, description="会员专享资源，购买九折，每月积分。",
           prices={"month": {"cny": 3000, "usd": 500}, "year": {"cny": 30000, "usd": 5000}},
           discount_percent=10, monthly_points=100),
    PlanIn(plan_id="premium", name="高级会员", level=2,
           description="全部会员资源，购买八折，每月更多积分，优先支持。",
           prices={"month": {"cny": 6800, "usd": 1000}, "year": {"cny": 68000, "usd": 10000}},
           discount_percent=20, monthly_points=300, priority_support=True),
)


def seed(with_stripe: bool) -> list[str]:
    """The two plans of a new platform, made if missing (and synced to Stripe)."""
    made = []
    for plan in SEED:
        try:
            create(plan)
            made.append(plan.plan_id)
        except PlanExists:
            pass
        if with_stripe:
            sync(plan.plan_id)
    return made
