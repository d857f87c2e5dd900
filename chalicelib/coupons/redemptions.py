"""What becomes of a reservation, from the payments context's events: consumed when its
order is paid (`order.paid`), released when it ends unpaid (`order.ended`). Each change is
one transaction conditioned on the redemption's status, so a redelivered or late event
changes nothing twice; a payment that arrives after its order was released (an expired
session paid at the last second) consumes it again."""
from __future__ import annotations

from pynamodb.exceptions import PutError, TransactWriteError

from chalicelib import db, outbox
from chalicelib.coupons.store import Buyer, CouponRecord, CouponUse, Redemption
from chalicelib.observability import logger


def _redemption(code: str, order_id: str) -> Redemption | None:
    try:
        return Redemption.get(CouponRecord.key(code), Redemption.sort_key(order_id),
                              consistent_read=True)
    except Redemption.DoesNotExist:
        return None


def _move(code: str, order_id: str, to: str) -> None:
    """Move the order's redemption to `to`, with the counters that follow, once."""
    key = CouponRecord.key(code)
    for _ in range(4):
        red = _redemption(code, order_id)
        if red is None:
            logger.warning("no redemption for the order", extra={"order_id": order_id,
                                                               "coupon": code})
            return
        if red.status == to or (red.status == "consumed" and to == "released"):
            return  # done already; a paid order's coupon is never given back
        counters = {("reserved", "consumed"): [CouponRecord.reserved.add(-1),
                                               CouponRecord.redeemed.add(1)],
                    ("released", "consumed"): [CouponRecord.claimed.add(1),
                                               CouponRecord.redeemed.add(1)],
                    ("reserved", "released"): [CouponRecord.reserved.add(-1),
                                               CouponRecord.claimed.add(-1)]}[red.status, to]
        try:
            with db.transaction() as tx:
                tx.update(red, actions=[Redemption.status.set(to), Redemption.at.set(
                    db.now_iso())], condition=Redemption.status == red.status)
                tx.update(CouponRecord(pk=key, sk="META"), actions=counters,
                          add_version_condition=False)
                uses = {"consumed": 1, "released": -1}[to] if red.status != "reserved" \
                    or to == "released" else 0
                if uses:
                    tx.update(CouponUse(pk=key, sk=CouponUse.sort_key(red.user_id)),
                              actions=[CouponUse.uses.add(uses)])
            return
        except TransactWriteError as exc:
            if "ConditionalCheckFailed" not in db.cancellation_codes(exc) and \
                    "TransactionConflict" not in db.cancellation_codes(exc):
                raise
    raise RuntimeError(f"redemption of {code} for {order_id} kept changing")


def on_paid(event: outbox.DomainEvent) -> None:
    """An order was paid: its coupon's reservation is consumed, and the buyer has bought."""
    payload = event.payload
    if payload.get("coupon_code"):
        _move(payload["coupon_code"], payload["order_id"], "consumed")
    try:
        Buyer(pk=Buyer.key(payload["user_id"]), order_id=payload["order_id"],
              paid_at=event.at).save(condition=Buyer.pk.does_not_exist())
    except PutError as exc:
        if not db.is_condition_failure(exc):
            raise


def on_ended(event: outbox.DomainEvent) -> None:
    """An order ended unpaid (expired, failed): its coupon's reservation is released."""
    if event.payload.get("coupon_code"):
        _move(event.payload["coupon_code"], event.payload["order_id"], "released")
