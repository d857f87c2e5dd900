"""Storage of orders, entitlements and the ledger (the orders table), and the idempotency
records of the payments queue (the idempotency table). `docs/data-model.md` lists the access
patterns. Every key is built here: the services ask the models for them."""
from __future__ import annotations

import uuid
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    VersionAttribute,
)
from pynamodb.models import Model

from chalicelib import db
from chalicelib.config import settings
from chalicelib.db import global_index, table_meta
from chalicelib.payments.states import Access


class Line(MapAttribute):
    """One resource of an order, priced when the order was made."""

    resource_id = UnicodeAttribute()
    title = UnicodeAttribute()
    creator_id = UnicodeAttribute()
    unit_amount = NumberAttribute()
    # What the line costs after the member discount, coupon and points (absent on orders
    # made before the pricing engine: then unit_amount).
    total = NumberAttribute(null=True)


class OrderRecord(Model):
    """ORDER#<id> / META. The payment facts (paid, refunded, disputed...) only ever grow;
    `status` is derived from them, so events in any order converge."""

    Meta = table_meta("orders_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="META")
    order_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    email = UnicodeAttribute(null=True)
    status = UnicodeAttribute(default="pending")
    currency = UnicodeAttribute()
    subtotal = NumberAttribute()
    discount = NumberAttribute(default=0)
    total = NumberAttribute()
    lines = ListAttribute(of=Line)
    session_id = UnicodeAttribute(null=True)
    checkout_url = UnicodeAttribute(null=True)
    payment_intent = UnicodeAttribute(null=True)
    amount_paid = NumberAttribute(null=True)
    paid_at = UnicodeAttribute(null=True)
    failed_at = UnicodeAttribute(null=True)
    expired_at = UnicodeAttribute(null=True)
    charge_refunded = NumberAttribute(default=0)
    # refund id -> amount, from refund events
    refunds: MapAttribute[str, Any] = MapAttribute(default=dict)
    amount_refunded = NumberAttribute(default=0)
    # An admin refund between its reservation and Stripe's answer (one at a time per order).
    refund_in_flight = UnicodeAttribute(null=True)  # the request's id
    refund_in_flight_at = NumberAttribute(null=True)  # epoch seconds, to outlive a crash
    # Refunds Stripe accepted whose event has not arrived: "<refund id>:<amount>" (see
    # pending_refunds). Counted as refunded when the next refund is sized, removed when their
    # event lands.
    refunds_pending = UnicodeSetAttribute(null=True)
    # Accepted refunds that failed at Stripe later: "<refund id>:<amount>:<reason>".
    refund_failures = UnicodeSetAttribute(null=True)
    # Resources this order paid for that the buyer already owned through another order, the
    # amount owed back for them, and the refund that gives it back (reason `duplicate`). Due
    # is recorded with the payment, in its transaction, so a retried event still refunds.
    duplicates = UnicodeSetAttribute(null=True)
    duplicate_refund_due = NumberAttribute(null=True)
    duplicate_refund_id = UnicodeAttribute(null=True)
    dispute_id = UnicodeAttribute(null=True)
    dispute_status = UnicodeAttribute(null=True)  # open, won, lost
    flag = UnicodeAttribute(null=True)
    # The coupon reserved with the order and the points held for it (released or consumed
    # by the coupons and points contexts, from this order's events).
    coupon_code = UnicodeAttribute(null=True)
    points_used = NumberAttribute(default=0)
    # Whose referral link the buyer came by (a live attribution at checkout): the
    # referrals context rewards it from this order's events.
    referrer_id = UnicodeAttribute(null=True)
    referral_code = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    version = VersionAttribute()
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    gsi2pk = UnicodeAttribute(default="ORDERS")
    gsi2sk = UnicodeAttribute()
    gsi3pk = UnicodeAttribute()
    gsi3sk = UnicodeAttribute()
    by_user = global_index("gsi1")
    by_time = global_index("gsi2")
    by_status = global_index("gsi3")

    @staticmethod
    def pending_entry(refund_id: str, amount: int) -> str:
        """An entry of `refunds_pending`."""
        return f"{refund_id}:{amount}"

    @staticmethod
    def failure_entry(refund_id: str, amount: int, reason: str) -> str:
        """An entry of `refund_failures`."""
        return f"{refund_id}:{amount}:{reason}"

    def unissued_duplicate_refund(self) -> int:
        """What is owed back for duplicates and not yet asked of Stripe."""
        return 0 if self.duplicate_refund_id else int(self.duplicate_refund_due or 0)

    def pending_refunds(self) -> dict[str, int]:
        """{refund id: amount} of the refunds accepted whose event has not arrived."""
        return {entry.rsplit(":", 1)[0]: int(entry.rsplit(":", 1)[1])
                for entry in self.refunds_pending or ()}

    @staticmethod
    def key(order_id: str) -> str:
        return f"ORDER#{order_id}"

    @staticmethod
    def user_key(user_id: str) -> str:
        """The buyer's partition of `by_user` (gsi1)."""
        return f"USER#{user_id}"

    @staticmethod
    def status_key(status: str) -> str:
        """A status's partition of `by_status` (gsi3); `flagged` holds the flagged orders."""
        return f"STATUS#{status}"

    @staticmethod
    def time_key(at: str, order_id: str) -> str:
        """The sort key of an order in each of its indexes: when it was made."""
        return f"{at}#{order_id}"


class OrderLine(Model):
    """ORDER#<id> / ITEM#<resource>: a line, indexed for creators' sales (gsi1 SALES#) and an
    admin's search by resource (gsi2 RESORDERS#)."""

    Meta = table_meta("orders_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    order_id = UnicodeAttribute()
    resource_id = UnicodeAttribute()
    title = UnicodeAttribute()
    creator_id = UnicodeAttribute()
    buyer_id = UnicodeAttribute()
    unit_amount = NumberAttribute()
    currency = UnicodeAttribute()
    status = UnicodeAttribute()
    created_at = UnicodeAttribute()
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    gsi2pk = UnicodeAttribute()
    gsi2sk = UnicodeAttribute()
    by_creator = global_index("gsi1")
    by_resource = global_index("gsi2")

    @staticmethod
    def sort_key(resource_id: str) -> str:
        return f"ITEM#{resource_id}"

    @staticmethod
    def creator_key(creator_id: str) -> str:
        """The creator's partition of `by_creator` (gsi1): their sales."""
        return f"SALES#{creator_id}"

    @staticmethod
    def resource_key(resource_id: str) -> str:
        """The resource's partition of `by_resource` (gsi2): the orders holding it."""
        return f"RESORDERS#{resource_id}"

    @classmethod
    def of(cls, order: OrderRecord) -> list[OrderLine]:
        """The line items of `order`, with its status."""
        return [cls(pk=order.pk, sk=cls.sort_key(line.resource_id), order_id=order.order_id,
                    resource_id=line.resource_id, title=line.title,
                    creator_id=line.creator_id, buyer_id=order.user_id,
                    unit_amount=int(line.unit_amount), currency=order.currency,
                    status=order.status, created_at=order.created_at,
                    gsi1pk=cls.creator_key(line.creator_id),
                    gsi1sk=f"{order.created_at}#{order.pk}",
                    gsi2pk=cls.resource_key(line.resource_id),
                    gsi2sk=OrderRecord.time_key(order.created_at, order.order_id))
                for line in order.lines]


class Entitlement(Model):
    """ENT#<user> / RES#<resource>: the right to download. `status`: active, suspended (a
    dispute is open) or revoked (refunded, dispute lost)."""

    Meta = table_meta("orders_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    user_id = UnicodeAttribute()
    resource_id = UnicodeAttribute()
    order_id = UnicodeAttribute()
    source = UnicodeAttribute()  # purchase, free
    status = UnicodeAttribute()
    granted_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    downloads = NumberAttribute(default=0)

    @staticmethod
    def key(user_id: str) -> str:
        return f"ENT#{user_id}"

    @staticmethod
    def sort_key(resource_id: str) -> str:
        return f"RES#{resource_id}"

    @classmethod
    def read(cls, user_id: str, resource_ids: list[str], status_only: bool = False) -> db.Read:
        """The part of a `db.batch_read` that reads the user's entitlements of these
        resources (with `status_only`, their sort key and status alone)."""
        keys = [{"pk": {"S": cls.key(user_id)}, "sk": {"S": cls.sort_key(r)}}
                for r in resource_ids]
        if status_only:
            return db.Read(settings().orders_table, keys, projection="sk, #s",
                           names={"#s": "status"})
        return db.Read(settings().orders_table, keys)

    @classmethod
    def active_in(cls, items: list[dict]) -> set[str]:
        """The resources whose entitlement a `read` part found active."""
        return {item["sk"]["S"][len(cls.sort_key("")):] for item in items
                if item.get("status", {}).get("S") == Access.ACTIVE}

    @classmethod
    def first_in(cls, items: list[dict]) -> Entitlement | None:
        """The entitlement a `read` part of one resource found (in full), or None."""
        return cls.from_raw_data(items[0]) if items else None


class LedgerEntry(Model):
    """LEDGER#<order> / <entry>: money in (+) and out (-) in minor units, written once."""

    Meta = table_meta("orders_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    order_id = UnicodeAttribute()
    amount = NumberAttribute()
    currency = UnicodeAttribute()
    kind = UnicodeAttribute()
    at = UnicodeAttribute()

    @staticmethod
    def key(order_id: str) -> str:
        return f"LEDGER#{order_id}"

    @staticmethod
    def refund_key(refunded: int) -> str:
        """The entry of the refunds up to `refunded` in all (each total once)."""
        return f"refund#{refunded:012d}"


class OpenCheckout(Model):
    """OPEN#<user> / BASKET#<sha256 of the sorted resource ids>: the buyer's open checkout of
    one basket. Claimed by a conditional write before a Stripe session is made, so a second tab
    gets the open checkout back instead of paying twice; it lapses with the session."""

    Meta = table_meta("orders_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    order_id = UnicodeAttribute()
    expires_at = NumberAttribute()  # the table's TTL attribute: gone some time after

    @staticmethod
    def key(user_id: str) -> str:
        return f"OPEN#{user_id}"

    @staticmethod
    def sort_key(resource_ids: list[str]) -> str:
        import hashlib

        return "BASKET#" + hashlib.sha256("\n".join(sorted(resource_ids)).encode()).hexdigest()


class PaymentLink(Model):
    """PI#<payment intent> / PI: the order a Stripe payment belongs to."""

    Meta = table_meta("orders_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="PI")
    order_id = UnicodeAttribute()

    @staticmethod
    def key(payment_intent: str) -> str:
        return f"PI#{payment_intent}"


class DownloadLog(Model):
    """DL#<user>#<resource> / <at>#<id>: who downloaded what, when, from where."""

    Meta = table_meta("orders_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    source_ip = UnicodeAttribute(null=True)
    file_version = NumberAttribute(null=True)
    expires_at = NumberAttribute()
    flagged = BooleanAttribute(default=False)

    @staticmethod
    def key(user_id: str, resource_id: str) -> str:
        return f"DL#{user_id}#{resource_id}"

    @staticmethod
    def sort_key(at: str) -> str:
        """A new entry's sort key: when, and a random suffix (two downloads in a millisecond)."""
        return f"{at}#{uuid.uuid4().hex[:8]}"


def idempotency_store() -> Any:
    """The Powertools persistence layer of the payments queue's idempotency records (the
    idempotency table). Powertools is imported here, on the first event, not at import."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from chalicelib import aws

    return DynamoDBPersistenceLayer(table_name=settings().idempotency_table,
                                    boto3_client=aws.dynamodb())
