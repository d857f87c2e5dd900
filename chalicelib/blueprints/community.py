"""Community: reviews and ratings, comments, reports and their moderation, favorites and
notifications."""
from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.catalog.schemas import PageQuery
from chalicelib.community.schemas import (
    BanIn,
    BanOut,
    CaseEnvelope,
    CaseList,
    CaseQuery,
    CommentEnvelope,
    CommentIn,
    CommentList,
    CommentPatch,
    DecisionIn,
    FavoriteEnvelope,
    FavoriteList,
    MarkReadIn,
    NotificationList,
    ReplyIn,
    ReportIn,
    ReportOut,
    ReviewEnvelope,
    ReviewIn,
    ReviewList,
    ReviewPatch,
    UnreadOut,
)
from chalicelib.web import ADMIN, ANYONE, CREATOR, USER, Ctx, Router, lazy

if TYPE_CHECKING:  # the modules themselves load on first use (see web.lazy)
    from chalicelib.community import comments, favorites, notifications, reports, reviews
else:
    comments = lazy("chalicelib.community.comments")
    favorites = lazy("chalicelib.community.favorites")
    notifications = lazy("chalicelib.community.notifications")
    reports = lazy("chalicelib.community.reports")
    reviews = lazy("chalicelib.community.reviews")

bp = Blueprint(__name__)
api = Router(bp)
TAGS = ("community",)
RES = "/resources/{resource_id}"
REVIEW = RES + "/reviews/{review_id}"
COMMENT = RES + "/comments/{comment_id}"


@api.route(RES + "/reviews", "GET", role=ANYONE, tags=TAGS, query=PageQuery,
           response=ReviewList, errors=(400,), summary="A resource's reviews, newest first")
def list_reviews(ctx: Ctx, resource_id: str) -> ReviewList:
    return reviews.listing(resource_id, ctx.query.limit, ctx.query.cursor)


@api.route(RES + "/reviews", "POST", role=USER, tags=TAGS, body=ReviewIn, status=201,
           response=ReviewEnvelope, errors=(400, 401, 403, 404, 409),
           summary="Rate and review a resource you bought (once; edit it after)")
def post_review(ctx: Ctx, resource_id: str) -> ReviewEnvelope:
    b = ctx.body
    return ReviewEnvelope(review=reviews.post(ctx.user_id, resource_id, b.rating, b.body))


@api.route(REVIEW, "PATCH", role=USER, tags=TAGS, body=ReviewPatch, response=ReviewEnvelope,
           errors=(400, 401, 404, 409), summary="Change your review")
def edit_review(ctx: Ctx, resource_id: str, review_id: str) -> ReviewEnvelope:
    b = ctx.body
    return ReviewEnvelope(review=reviews.edit(ctx.user_id, resource_id, review_id, b.rating,
                                              b.body))


@api.route(REVIEW, "DELETE", role=USER, tags=TAGS, status=204, errors=(401, 404, 409),
           summary="Delete your review (its rating leaves the average)")
def delete_review(ctx: Ctx, resource_id: str, review_id: str) -> None:
    reviews.delete(ctx.user_id, resource_id, review_id)


@api.route(REVIEW + "/reply", "PUT", role=CREATOR, tags=TAGS, body=ReplyIn,
           response=ReviewEnvelope, errors=(400, 401, 403, 404, 409),
           summary="Answer a review of your resource (replaces your earlier answer)")
def reply_review(ctx: Ctx, resource_id: str, review_id: str) -> ReviewEnvelope:
    return ReviewEnvelope(review=reviews.reply(ctx.user_id, resource_id, review_id,
                                               ctx.body.body))


@api.route(RES + "/comments", "GET", role=ANYONE, tags=TAGS, query=PageQuery,
           response=CommentList, errors=(400,),
           summary="Comment threads: newest comment first, each with its replies")
def list_comments(ctx: Ctx, resource_id: str) -> CommentList:
    return comments.listing(resource_id, ctx.query.limit, ctx.query.cursor)


@api.route(RES + "/comments", "POST", role=USER, tags=TAGS, body=CommentIn, status=201,
           response=CommentEnvelope, errors=(400, 401, 403, 404, 409, 422, 429),
           summary="Comment on a resource, or reply to a comment (one level)")
def post_comment(ctx: Ctx, resource_id: str) -> CommentEnvelope:
    b = ctx.body
    return CommentEnvelope(comment=comments.post(ctx.user_id, resource_id, b.body, b.parent_id))


@api.route(COMMENT, "PATCH", role=USER, tags=TAGS, body=CommentPatch,
           response=CommentEnvelope, errors=(400, 401, 404, 409),
           summary="Reword your comment (within 15 minutes of posting it)")
def edit_comment(ctx: Ctx, resource_id: str, comment_id: str) -> CommentEnvelope:
    return CommentEnvelope(comment=comments.edit(ctx.user_id, resource_id, comment_id,
                                                 ctx.body.body))


@api.route(COMMENT, "DELETE", role=USER, tags=TAGS, status=204, errors=(401, 404, 409),
           summary="Delete your comment (its replies stay)")
def delete_comment(ctx: Ctx, resource_id: str, comment_id: str) -> None:
    comments.delete(ctx.user_id, resource_id, comment_id)


@api.route(RES + "/reports", "POST", role=USER, tags=TAGS, body=ReportIn, response=ReportOut,
           errors=(400, 401, 404, 409),
           summary="Report the resource, one of its reviews or one of its comments")
def report(ctx: Ctx, resource_id: str) -> ReportOut:
    b = ctx.body
    return reports.report(ctx.user_id, resource_id, b.target_type, b.target_id, b.reason,
                          b.note)


@api.route("/admin/moderation/cases", "GET", role=ADMIN, tags=TAGS, query=CaseQuery,
           response=CaseList, errors=(400, 401, 403),
           summary="Reported content: open cases oldest first, or closed ones")
def cases(ctx: Ctx) -> CaseList:
    q = ctx.query
    return reports.queue(q.state, q.limit, q.cursor)


@api.route("/admin/moderation/decisions", "POST", role=ADMIN, tags=TAGS, body=DecisionIn,
           response=CaseEnvelope, errors=(400, 401, 403, 404, 409),
           summary="Hide, show again or dismiss the reports of a resource, review or comment")
def decide(ctx: Ctx) -> CaseEnvelope:
    b = ctx.body
    return CaseEnvelope(case=reports.decide(ctx.user_id, b.target_type, b.resource_id,
                                            b.target_id, b.decision, b.reason))


@api.route("/admin/users/{user_id}/comment-ban", "PUT", role=ADMIN, tags=TAGS, body=BanIn,
           response=BanOut, errors=(400, 401, 403), summary="Ban a user from commenting")
def ban(ctx: Ctx, user_id: str) -> BanOut:
    return reports.ban(ctx.user_id, user_id, ctx.body.reason)


@api.route("/admin/users/{user_id}/comment-ban", "DELETE", role=ADMIN, tags=TAGS,
           response=BanOut, errors=(401, 403), summary="Let a banned user comment again")
def unban(ctx: Ctx, user_id: str) -> BanOut:
    return reports.unban(ctx.user_id, user_id)


@api.route("/me/favorites", "GET", role=USER, tags=TAGS, query=PageQuery,
           response=FavoriteList, errors=(400, 401), summary="Your saved resources, newest first")
def my_favorites(ctx: Ctx) -> FavoriteList:
    return favorites.mine(ctx.user_id, ctx.query.limit, ctx.query.cursor)


@api.route("/me/favorites/{resource_id}", "PUT", role=USER, tags=TAGS,
           response=FavoriteEnvelope, errors=(401, 404), summary="Save a resource (idempotent)")
def save_favorite(ctx: Ctx, resource_id: str) -> FavoriteEnvelope:
    return FavoriteEnvelope(favorite=favorites.save(ctx.user_id, resource_id))


@api.route("/me/favorites/{resource_id}", "DELETE", role=USER, tags=TAGS, status=204,
           errors=(401,), summary="Forget a saved resource (idempotent)")
def remove_favorite(ctx: Ctx, resource_id: str) -> None:
    favorites.remove(ctx.user_id, resource_id)


@api.route("/me/notifications", "GET", role=USER, tags=TAGS, query=PageQuery,
           response=NotificationList, errors=(400, 401),
           summary="Your notifications, newest first, with the unread count")
def my_notifications(ctx: Ctx) -> NotificationList:
    return notifications.mine(ctx.user_id, ctx.query.limit, ctx.query.cursor)


@api.route("/me/notifications/read", "POST", role=USER, tags=TAGS, body=MarkReadIn,
           response=UnreadOut, errors=(400, 401, 404),
           summary="Mark notifications read (some, or all); the unread count after")
def mark_read(ctx: Ctx) -> UnreadOut:
    b = ctx.body
    return UnreadOut(unread=notifications.mark_read(ctx.user_id, b.ids, b.all))
