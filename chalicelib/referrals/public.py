"""What the payments context's checkout uses of referrals, without their storage: the
buyer's attribution as a part of its own BatchGetItem.

    reads = [..., public.attribution_read(user_id)]
    referral = public.referral_in(items_of_that_part, buyer_id)   # None: no live referral
"""
from __future__ import annotations

import time
from typing import NamedTuple

from chalicelib import db
from chalicelib.referrals import store


class Referral(NamedTuple):
    referrer_id: str
    code: str


def attribution_read(user_id: str) -> db.Read:
    """The part of a `db.batch_read` that reads the user's attribution."""
    return store.attribution_read(user_id)


def referral_in(items: list[dict], buyer_id: str, now: float | None = None) -> Referral | None:
    """The referral an `attribution_read` part found, while it has not lapsed (the TTL
    removes a lapsed one only eventually) and is not the buyer's own."""
    for item in items:
        referrer = item.get("referrer_id", {}).get("S")
        expires = int(item.get("expires_at", {}).get("N", "0"))
        if referrer and referrer != buyer_id and expires > (now or time.time()):
            return Referral(referrer_id=referrer, code=item["code"]["S"])
    return None
