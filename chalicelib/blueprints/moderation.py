"""Admins: the review queue, decisions, visibility, categories and the audit log."""
from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.catalog.schemas import (
    AuditList,
    AuditQuery,
    CategoryEnvelope,
    CategoryIn,
    CategoryPatch,
    PageQuery,
    RejectIn,
    ResourceEnvelope,
    ResourceList,
)
from chalicelib.web import ADMIN, Ctx, Router, given, lazy

if TYPE_CHECKING:  # the modules themselves load on first use (see web.lazy)
    from chalicelib.catalog import audit, categories, moderation, resources
else:
    audit = lazy("chalicelib.catalog.audit")
    categories = lazy("chalicelib.catalog.categories")
    resources = lazy("chalicelib.catalog.resources")
    moderation = lazy("chalicelib.catalog.moderation")

bp = Blueprint(__name__)
api = Router(bp)
TAGS = ("admin",)
R = "/admin/resources/{resource_id}"


@api.route("/admin/reviews", "GET", role=ADMIN, tags=TAGS, query=PageQuery,
           response=ResourceList, summary="Resources waiting for review, oldest first")
def reviews(ctx: Ctx) -> ResourceList:
    return moderation.queue(ctx.query.limit, ctx.query.cursor)


@api.route(R, "GET", role=ADMIN, tags=TAGS, response=ResourceEnvelope, errors=(404,),
           summary="Any resource, as its creator sees it")
def get_any(ctx: Ctx, resource_id: str) -> ResourceEnvelope:
    return ResourceEnvelope(resource=resources.view(resource_id))


@api.route(R + "/approve", "POST", role=ADMIN, tags=TAGS, response=ResourceEnvelope,
           errors=(404, 409), summary="Publish a resource (or its new file version)")
def approve(ctx: Ctx, resource_id: str) -> ResourceEnvelope:
    return ResourceEnvelope(resource=moderation.approve(ctx.user_id, resource_id))


@api.route(R + "/reject", "POST", role=ADMIN, tags=TAGS, body=RejectIn,
           response=ResourceEnvelope, errors=(404, 409),
           summary="Reject with a reason the creator sees")
def reject(ctx: Ctx, resource_id: str) -> ResourceEnvelope:
    return ResourceEnvelope(resource=moderation.reject(ctx.user_id, resource_id, ctx.body.reason))


@api.route(R + "/unpublish", "POST", role=ADMIN, tags=TAGS, body=RejectIn,
           response=ResourceEnvelope, errors=(404, 409),
           summary="Take a published resource down, with a reason")
def take_down(ctx: Ctx, resource_id: str) -> ResourceEnvelope:
    return ResourceEnvelope(resource=moderation.set_visibility(
        ctx.user_id, resource_id, False, as_admin=True, reason=ctx.body.reason))


@api.route(R + "/publish", "POST", role=ADMIN, tags=TAGS, response=ResourceEnvelope,
           errors=(404, 409), summary="Put an unpublished resource back on sale")
def put_back(ctx: Ctx, resource_id: str) -> ResourceEnvelope:
    return ResourceEnvelope(resource=moderation.set_visibility(ctx.user_id, resource_id, True,
                                                           as_admin=True))


@api.route("/admin/audit", "GET", role=ADMIN, tags=TAGS, query=AuditQuery, response=AuditList,
           summary="Moderation actions, newest first; optionally one resource's")
def audit_log(ctx: Ctx) -> AuditList:
    q = ctx.query
    return audit.listing(q.resource_id, q.limit, q.cursor)


@api.route("/admin/categories", "POST", role=ADMIN, tags=TAGS, body=CategoryIn, status=201,
           response=CategoryEnvelope, errors=(409, 422), summary="Add a category")
def add_category(ctx: Ctx) -> CategoryEnvelope:
    b = ctx.body
    return CategoryEnvelope(category=categories.create(b.slug, b.name, b.parent, b.position))


@api.route("/admin/categories/{slug}", "PATCH", role=ADMIN, tags=TAGS, body=CategoryPatch,
           response=CategoryEnvelope, errors=(404,), summary="Rename or reorder a category")
def patch_category(ctx: Ctx, slug: str) -> CategoryEnvelope:
    b = ctx.body
    return CategoryEnvelope(category=categories.update(slug, given(b.name), given(b.position)))


@api.route("/admin/categories/{slug}", "DELETE", role=ADMIN, tags=TAGS, status=204,
           errors=(404, 409), summary="Delete a category without subcategories")
def delete_category(ctx: Ctx, slug: str) -> None:
    categories.delete(slug)
