"""Storage of orders, entitlements and the ledger (the orders table). `docs/data-model.md`
lists the access patterns."""
from __future__ import annotations

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

from chalicelib.db import global_index, table_meta


class Line(MapAttribute):
    """One resource of an order, priced when the order was made."""

    resource_id = UnicodeAttribute()
    title = UnicodeAttribute()
    creator_id = UnicodeAttribute()
    unit_amount = NumberAttribute()


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
    refunds = MapAttribute(default=dict)  # refund id -> amount, from refund events
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


class DownloadLog(Model):
    """DL#<user>#<resource> / <at>#<id>: who downloaded what, when, from where."""

    Meta = table_meta("orders_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    source_ip = UnicodeAttribute(null=True)
    file_version = NumberAttribute(null=True)
    expires_at = NumberAttribute()
    flagged = BooleanAttribute(default=False)
