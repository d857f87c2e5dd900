"""The community context as the API shows and takes it: reviews, comments, reports,
favorites and notifications. Every text has a length limit and must hold something visible;
Markdown sources come back with their rendered, sanitised HTML beside them."""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from msgspec import Meta, Struct

from chalicelib.accounts.schemas import VISIBLE, Cursor, Input, Limit
from chalicelib.catalog.schemas import ResourceCard

Rating = Annotated[int, Meta(ge=1, le=5, description="1 (poor) to 5 (excellent) stars")]
MARKDOWN = "Markdown (a safe subset; raw HTML is shown as text)"
ReviewBody = Annotated[str, Meta(min_length=1, max_length=5000, pattern=VISIBLE,
                                 description=MARKDOWN)]
CommentBody = Annotated[str, Meta(min_length=1, max_length=2000, pattern=VISIBLE,
                                  description=MARKDOWN)]
ReplyBody = ReviewBody
# Ids as the API hands them out; anything else is no such object (404), not a 400.
CommentId = Annotated[str, Meta(min_length=1, max_length=80, pattern=r"^[0-9a-z.]+$")]
ReportReason = Literal["spam", "abuse", "copyright", "inappropriate", "other"]
Note = Annotated[str, Meta(min_length=1, max_length=500, pattern=VISIBLE)]
TargetType = Literal["resource", "review", "comment"]
CaseState = Literal["open", "closed"]
Decision = Literal["hide", "unhide", "dismiss"]

# The rule `__post_init__` checks, stated in the document (merged by chalicelib.apispec):
# a review or comment is named by `target_id`, the resource itself by none.
TARGET_RULES: dict[str, Any] = {"allOf": [
    {"if": {"properties": {"target_type": {"const": "resource"}}, "required": ["target_type"]},
     "then": {"properties": {"target_id": {"type": "null"}}}},
    {"if": {"properties": {"target_type": {"enum": ["review", "comment"]}},
            "required": ["target_type"]},
     "then": {"required": ["target_id"], "properties": {"target_id": {"type": "string"}}}},
]}


class ReviewIn(Input):
    """Your review: a rating, with words if you like. Once per resource; only buyers (an
    active purchase) or members whose membership opens the resource may review."""

    rating: Rating
    body: ReviewBody | None = None


class ReviewPatch(Input):
    rating: Rating | None = None
    body: ReviewBody | None = None


class ReplyIn(Input):
    body: ReplyBody


class Author(Struct):
    id: str
    display_name: str


class ReviewReply(Struct):
    body: str
    html: str
    at: str


class ReviewOut(Struct):
    id: str
    resource_id: str
    author: Author
    rating: int
    body: str | None
    html: str | None
    status: Literal["visible", "hidden"]
    created_at: str
    updated_at: str
    reply: ReviewReply | None


class ReviewEnvelope(Struct):
    review: ReviewOut


class ReviewList(Struct):
    """Visible reviews, newest first (the average and count are on the resource)."""

    items: list[ReviewOut]
    next_cursor: str | None


class CommentIn(Input):
    """A comment, or with `parent_id` a reply to one (one level: replies take no replies)."""

    body: CommentBody
    parent_id: CommentId | None = None


class CommentPatch(Input):
    body: CommentBody


class CommentOut(Struct):
    """`body` and `html` are null once the comment is deleted or hidden (it keeps its place
    in the thread)."""

    id: str
    resource_id: str
    parent_id: str | None
    author: Author
    body: str | None
    html: str | None
    status: Literal["visible", "hidden", "deleted"]
    created_at: str
    edited_at: str | None
    replies: int


class CommentEnvelope(Struct):
    comment: CommentOut


class CommentList(Struct):
    """Threads: each comment (newest first) followed by its replies (oldest first)."""

    items: list[CommentOut]
    next_cursor: str | None


class ReportIn(Input):
    """A report of the resource itself, or of one of its reviews or comments (`target_id`)."""

    target_type: TargetType
    reason: ReportReason
    target_id: CommentId | None = None
    note: Note | None = None

    json_schema_extra: ClassVar[dict[str, Any]] = TARGET_RULES

    def __post_init__(self) -> None:
        if (self.target_type == "resource") != (self.target_id is None):
            raise ValueError("`target_id` names the review or comment, and only those, "
                             "in field `target_id`")


class ReportOut(Struct):
    """Your report is counted once, however often you send it."""

    target_type: TargetType
    target_id: str
    resource_id: str
    reports: int
    hidden: bool


class CaseOut(Struct):
    target_type: TargetType
    target_id: str
    resource_id: str
    reports: int
    state: CaseState
    auto_hidden: bool
    outcome: str | None
    last_reason: str | None
    first_at: str
    last_at: str
    decided_at: str | None
    decided_by: str | None


class CaseEnvelope(Struct):
    case: CaseOut


class CaseList(Struct):
    items: list[CaseOut]
    next_cursor: str | None


class CaseQuery(Struct):
    state: CaseState = "open"
    limit: Limit = 20
    cursor: Cursor | None = None


class DecisionIn(Input):
    """`hide` the target (its author is told), `unhide` it, or `dismiss` the reports (an
    auto-hidden target is shown again). The case closes either way."""

    target_type: TargetType
    resource_id: Annotated[str, Meta(min_length=1, max_length=64)]
    decision: Decision
    reason: Note
    target_id: CommentId | None = None

    json_schema_extra: ClassVar[dict[str, Any]] = TARGET_RULES

    def __post_init__(self) -> None:
        if (self.target_type == "resource") != (self.target_id is None):
            raise ValueError("`target_id` names the review or comment, and only those, "
                             "in field `target_id`")


class BanIn(Input):
    reason: Note


class BanOut(Struct):
    user_id: str
    banned: bool
    reason: str | None
    at: str | None


class FavoriteOut(Struct):
    resource: ResourceCard
    at: str


class FavoriteEnvelope(Struct):
    favorite: FavoriteOut


class FavoriteList(Struct):
    items: list[FavoriteOut]
    next_cursor: str | None


NotificationType = Literal["review_reply", "new_review", "comment_reply", "moderation",
                           "resource_approved", "resource_rejected", "payment",
                           "refund", "referral"]


class NotificationOut(Struct):
    id: str
    type: str
    title: str
    body: str | None
    link: str | None
    at: str
    read: bool


class NotificationList(Struct):
    """`unread`: how many are not read yet (one read); `items` newest first."""

    unread: int
    items: list[NotificationOut]
    next_cursor: str | None


class MarkReadIn(Input):
    """Mark these notifications read, or with `all` every one so far."""

    ids: Annotated[list[Annotated[str, Meta(min_length=1, max_length=120)]],
                   Meta(max_length=25)] = []
    all: bool = False

    json_schema_extra: ClassVar[dict[str, Any]] = {"anyOf": [
        {"required": ["ids"], "properties": {"ids": {"minItems": 1}}},
        {"required": ["all"], "properties": {"all": {"const": True}}}]}

    def __post_init__(self) -> None:
        if not self.ids and not self.all:
            raise ValueError("Name the `ids` to mark read, or set `all`, in field `ids`")


class UnreadOut(Struct):
    unread: int
