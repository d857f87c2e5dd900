"""The states a resource goes through, and the conflicts a transition can meet. Pure data:
the services and the repository both read it, and it imports nothing of theirs."""
from __future__ import annotations

from chalicelib.errors import Conflict


class UnderReview(Conflict):
    code = "under_review"
    message = "The resource is under review and cannot change until it is decided."


class WrongState(Conflict):
    code = "wrong_state"


class NotUnderReview(WrongState):
    code = "not_under_review"
    message = "The resource is not waiting for review."


class Concurrent(Conflict):
    code = "concurrent_update"
    message = "The resource changed concurrently; try again."
