"""Referral rewards, from the payments context's events. A referred buyer's first paid
order (amount > 0, none paid before it: the payments context says so on the event) earns
its referrer the configured reward, once per referred buyer: the referred-by marker, the
reward, the referrer's totals and the `referral.rewarded` event are one transaction (the
points context credits points from the event; the community context notifies). Refunds
reverse it in proportion, cumulatively, by a conditioned step each with its
`referral.reversed` event, so replays and late or reordered deliveries take back nothing
twice."""
from __future__ import annotations

import time

from pynamodb.exceptions import PutError, TransactWriteError

from chalicelib import db, outbox
from chalicelib.config import settings
from chalicelib.observability import logger
from chalicelib.referrals import store
from chalicelib.referrals.store import (
    ReferredByRecord,
    RefundNoteRecord,
    RewardRecord,
    SummaryRecord,
)

ATTEMPTS = 8
# A kept refund outlives any delivery of its order's payment by far.
NOTE_DAYS = 90
_FAILED = "ConditionalCheckFailed"


def _masked(name: str | None) -> str | None:
    """A referred buyer as their referrer sees them: the first letter of the name."""
    return f"{name[0]}**" if name else None


def reward_first_order(referrer_id: str, referee_id: str, order_id: str,
                       currency: str | None, amount: int, paid_at: str) -> bool:
    """Reward `referrer_id` for `order_id`, `referee_id`'s first paid order (paid `amount`
    at `paid_at`), unless the referral is a loop. False when it earns nothing (or was
    rewarded already)."""
    from chalicelib.accounts import profiles

    if referrer_id == referee_id or amount <= 0:
        return False
    link = store.referred_by(referee_id)
    if link is not None:
        return False  # rewarded once already (this order, on a replay, or an earlier one)
    cfg = settings()
    kind = cfg.referral_reward
    value = cfg.referral_reward_points if kind == "points" \
        else amount * cfg.referral_commission_bps // 10000
    if value <= 0:
        return False
    now = db.now_iso()
    sk = RewardRecord.sort_key(paid_at, order_id)
    pk = store.user_partition(referrer_id)
    try:
        name = profiles.get_user(referee_id).display_name
    except Exception:  # noqa: BLE001 - a deleted account is still a referral
        name = None
    totals = [SummaryRecord.referred.add(1)]
    totals.append(SummaryRecord.points_earned.add(value) if kind == "points"
                  else SummaryRecord.commission(str(currency)).add(value))
    event = outbox.record("referrals_table", "referral.rewarded", {
        "referrer_id": referrer_id, "referee_id": referee_id, "order_id": order_id,
        "kind": kind, "points": value if kind == "points" else 0,
        "commission": value if kind == "commission" else 0, "currency": currency}, now)
    try:
        with db.transaction() as tx:
            tx.save(ReferredByRecord(pk=store.user_partition(referee_id),
                                     referrer_id=referrer_id, order_id=order_id,
                                     reward_sk=sk, at=now),
                    condition=ReferredByRecord.pk.does_not_exist())
            # No loop: the referrer was not referred by this buyer.
            tx.condition_check(ReferredByRecord, pk, store.REFERRED_BY,
                               condition=ReferredByRecord.pk.does_not_exist()
                               | (ReferredByRecord.referrer_id != referee_id))
            tx.save(RewardRecord(pk=pk, sk=sk, referee_id=referee_id,
                                 referee_name=_masked(name), order_id=order_id, kind=kind,
                                 value=value, currency=currency, amount_paid=amount,
                                 at=paid_at, updated_at=now),
                    condition=RewardRecord.sk.does_not_exist())
            tx.update(SummaryRecord(pk=pk), actions=totals)
            tx.save(event)
    except TransactWriteError as exc:
        codes = db.cancellation_codes(exc)
        if codes[:1] == [_FAILED]:
            return False
        if len(codes) > 1 and codes[1] == _FAILED:
            logger.warning("referral loop refused at reward", extra={"order_id": order_id})
            return False
        raise
    outbox.publish([event])
    note = store.refund_note(referee_id, order_id)
    if note is not None:
        reverse(referee_id, order_id, int(note.amount_paid), int(note.refunded))
    return True


def reverse(referee_id: str, order_id: str, amount_paid: int, refunded: int) -> bool:
    """`refunded` (cumulative) of the referee's order was refunded: the reward it earned is
    taken back in proportion (rounded down), net of earlier steps. Before the reward is
    made, the refund is kept and applied by it. False when there was nothing (more) to
    take back."""
    link = store.referred_by(referee_id)
    if link is None:
        _remember(referee_id, order_id, amount_paid, refunded)
        return False
    if link.order_id != order_id:
        return False
    for _ in range(ATTEMPTS):
        reward = store.reward(link.referrer_id, link.reward_sk)
        if reward is None:
            return False
        paid = int(reward.amount_paid) or amount_paid
        total = min(max(refunded, int(reward.refunded)), paid)
        target = int(reward.value) * total // paid if paid else 0
        before = int(reward.reversed)
        if target <= before:
            return False
        if _step(link, reward, before, target, total):
            return True
    raise RuntimeError(f"referral reversal of {order_id} kept losing its race")


def _step(link: ReferredByRecord, reward: RewardRecord, before: int, target: int,
          total: int) -> bool:
    now = db.now_iso()
    step = target - before
    kind = reward.kind
    event = outbox.record("referrals_table", "referral.reversed", {
        "referrer_id": link.referrer_id, "referee_id": reward.referee_id,
        "order_id": reward.order_id, "kind": kind, "step": step, "reversed": target,
        "currency": reward.currency}, now)
    back = SummaryRecord.points_reversed.add(step) if kind == "points" \
        else SummaryRecord.reversal(str(reward.currency)).add(step)
    try:
        with db.transaction() as tx:
            tx.update(reward, actions=[RewardRecord.reversed.set(target),
                                       RewardRecord.refunded.set(total),
                                       RewardRecord.updated_at.set(now)],
                      condition=RewardRecord.reversed == before)
            tx.update(SummaryRecord(pk=store.user_partition(link.referrer_id)), actions=[back])
            tx.save(event)
    except TransactWriteError as exc:
        if db.cancellation_codes(exc)[:1] == [_FAILED]:
            return False  # another step got there first: computed again
        raise
    outbox.publish([event])
    return True


def _remember(referee_id: str, order_id: str, amount_paid: int, refunded: int) -> None:
    """Keep a refund whose reward is not made yet (or never will be: then it is only kept),
    when larger than one kept."""
    note = RefundNoteRecord(pk=store.user_partition(referee_id),
                            sk=RefundNoteRecord.sort_key(order_id), refunded=refunded,
                            amount_paid=amount_paid,
                            expires_at=int(time.time()) + NOTE_DAYS * 86400)
    try:
        note.save(condition=RefundNoteRecord.sk.does_not_exist()
                  | (RefundNoteRecord.refunded < refunded))
    except PutError as exc:
        if not db.is_condition_failure(exc):
            raise
    # A reward made meanwhile did not see this note: apply it now.
    link = store.referred_by(referee_id)
    if link is not None and link.order_id == order_id:
        reverse(referee_id, order_id, amount_paid, refunded)

