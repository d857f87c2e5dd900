"""The states a resource and an upload go through, the transitions between them as data, and
the conflicts a transition can meet. Pure data: the services and the repository both read
it, and it imports nothing of theirs.

Every transition is written as ONE conditional write, "status IN the transition's
allowed-from" (catalog.store.apply_transition), together with the audit entry where there is
one, so two transitions racing on one resource cannot both win."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from chalicelib.errors import Conflict


class ResourceStatus(StrEnum):
    DRAFT = "draft"
    PENDING_REVIEW = "pending_review"
    PUBLISHED = "published"
    UNPUBLISHED = "unpublished"
    REJECTED = "rejected"


class UploadStatus(StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"
    VERIFYING = "verifying"
    VERIFIED = "verified"
    REJECTED = "rejected"


# States that have an approved file buyers get.
LIVE = frozenset({ResourceStatus.PUBLISHED, ResourceStatus.UNPUBLISHED})
# An upload not decided yet: its object may still land, or is being checked.
OPEN_UPLOAD = frozenset({UploadStatus.AWAITING_UPLOAD, UploadStatus.VERIFYING})


@dataclass(frozen=True)
class Transition:
    """A change of a resource's state, allowed only from `source`. `target` None keeps the
    status; `review` (before, after) is the review of a new file version of a live resource
    (its `review_pending` flag); `deletes` removes the resource."""

    source: frozenset[ResourceStatus]
    target: ResourceStatus | None = None
    review: tuple[bool, bool] | None = None
    deletes: bool = False


_S = ResourceStatus
RESOURCE_TRANSITIONS: dict[str, Transition] = {
    "submit": Transition(frozenset({_S.DRAFT, _S.REJECTED}), _S.PENDING_REVIEW),
    "submit_version": Transition(LIVE, review=(False, True)),
    "approve": Transition(frozenset({_S.PENDING_REVIEW}), _S.PUBLISHED),
    "approve_version": Transition(LIVE, review=(True, False)),
    "reject": Transition(frozenset({_S.PENDING_REVIEW}), _S.REJECTED),
    "reject_version": Transition(LIVE, review=(True, False)),
    "unpublish": Transition(frozenset({_S.PUBLISHED}), _S.UNPUBLISHED),
    "publish": Transition(frozenset({_S.UNPUBLISHED}), _S.PUBLISHED),
    "edit": Transition(frozenset({_S.DRAFT, _S.PUBLISHED, _S.UNPUBLISHED})),
    # An edited rejected resource goes back to draft, ready to be submitted again.
    "edit_rejected": Transition(frozenset({_S.REJECTED}), _S.DRAFT),
    "delete_draft": Transition(frozenset({_S.DRAFT}), deletes=True),
}


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
