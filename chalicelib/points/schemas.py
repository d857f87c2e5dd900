"""Points as the API shows and takes them."""
from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from chalicelib.accounts.schemas import DISPLAY_NAME_PATTERN, Cursor, Input, Limit

Delta = Annotated[int, Meta(ge=-10_000_000, le=10_000_000,
                            description="Points to add (positive) or take (negative); not 0",
                            extra_json_schema={"not": {"const": 0}})]
# Free text, like a display name: no control or invisible characters, not only spaces.
Note = Annotated[str, Meta(min_length=1, max_length=200, pattern=DISPLAY_NAME_PATTERN)]
IdempotencyKey = Annotated[str, Meta(
    min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$",
    description="The same key again changes nothing more (it answers the account as it is)")]


class PointsAdjustIn(Input):
    """An admin's adjustment. Added points repay any debt first; taken points come out of
    what is available (never below 0: 422 insufficient_points)."""

    delta: Delta
    reason: Note
    idempotency_key: IdempotencyKey | None = None

    def __post_init__(self) -> None:
        if self.delta == 0:
            raise ValueError("An adjustment of 0 points changes nothing, in field `delta`")


class PointsAccountOut(Struct):
    user_id: str
    balance: int
    available: int
    held: int
    debt: int
    updated_at: str | None


class PointsAccountEnvelope(Struct):
    account: PointsAccountOut


class PointsEntryOut(Struct):
    """One ledger entry. `delta` is the change of balance - debt (0 for a released hold)."""

    at: str
    reason: str
    delta: int
    balance_after: int
    debt_after: int
    order_id: str | None
    note: str | None


class PointsOut(Struct):
    """Your points: `balance` every unexpired point you own, `held` the part reserved by
    checkouts in progress, `available` = balance - held, `debt` points owed (taken back by a
    refund after they were spent), repaid first by what you earn next. `items`: the ledger,
    newest first."""

    balance: int
    available: int
    held: int
    debt: int
    items: list[PointsEntryOut]
    next_cursor: str | None


class PointsQuery(Struct):
    limit: Limit = 20
    cursor: Cursor | None = None
