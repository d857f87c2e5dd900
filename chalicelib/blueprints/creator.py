"""Creators' own resources: drafts, edits, direct-to-S3 uploads, submission for review."""
from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.catalog.schemas import (
    CreatorListQuery,
    MultipartCompleteIn,
    ResourceEnvelope,
    ResourceIn,
    ResourceList,
    ResourcePatch,
    UploadForm,
    UploadIn,
)
from chalicelib.web import CREATOR, Ctx, Router, lazy

if TYPE_CHECKING:  # the modules themselves load on first use (see web.lazy)
    from chalicelib.accounts import profiles as accounts
    from chalicelib.catalog import moderation, resources
else:
    accounts = lazy("chalicelib.accounts.profiles")
    resources = lazy("chalicelib.catalog.resources")
    moderation = lazy("chalicelib.catalog.moderation")

bp = Blueprint(__name__)
api = Router(bp)
TAGS = ("creator",)
R = "/creator/resources/{resource_id}"


@api.route("/creator/resources", "POST", role=CREATOR, tags=TAGS, body=ResourceIn, status=201,
           response=ResourceEnvelope, errors=(422,), summary="Create a draft resource")
def create(ctx: Ctx) -> ResourceEnvelope:
    name = accounts.get_user(ctx.user_id).display_name
    return ResourceEnvelope(resource=resources.create(ctx.user_id, name, ctx.body))


@api.route("/creator/resources", "GET", role=CREATOR, tags=TAGS, query=CreatorListQuery,
           response=ResourceList, summary="Your resources, newest first, optionally by status")
def list_own(ctx: Ctx) -> ResourceList:
    q = ctx.query
    return resources.list_own(ctx.user_id, q.status, q.limit, q.cursor)


@api.route(R, "GET", role=CREATOR, tags=TAGS, response=ResourceEnvelope, errors=(404,),
           summary="One of your resources with its file, cover and preview checks")
def get_own(ctx: Ctx, resource_id: str) -> ResourceEnvelope:
    return ResourceEnvelope(resource=resources.view(resource_id, ctx.user_id))


@api.route(R, "PATCH", role=CREATOR, tags=TAGS, body=ResourcePatch, response=ResourceEnvelope,
           errors=(404, 409, 422), summary="Edit a resource (not while under review)")
def patch_own(ctx: Ctx, resource_id: str) -> ResourceEnvelope:
    return ResourceEnvelope(resource=resources.update(ctx.user_id, resource_id, ctx.body))


@api.route(R, "DELETE", role=CREATOR, tags=TAGS, status=204, errors=(404, 409),
           summary="Delete a draft with its uploads")
def delete_draft(ctx: Ctx, resource_id: str) -> None:
    resources.delete_draft(ctx.user_id, resource_id)


@api.route(R + "/uploads", "POST", role=CREATOR, tags=TAGS, body=UploadIn, status=201,
           response=UploadForm, errors=(404, 409, 413),
           summary="A presigned POST (or multipart part URLs above 100 MB) to send a file to S3")
def create_upload(ctx: Ctx, resource_id: str) -> UploadForm:
    b = ctx.body
    return resources.create_upload(ctx.user_id, resource_id, b.filename, b.content_type, b.size,
                                   b.purpose)


@api.route(R + "/uploads/{upload_id}/complete", "POST", role=CREATOR, tags=TAGS,
           body=MultipartCompleteIn, status=202, errors=(404, 409),
           summary="Assemble a multipart upload from its parts' ETags")
def complete_upload(ctx: Ctx, resource_id: str, upload_id: str) -> dict:
    parts = [(p.part_number, p.etag) for p in ctx.body.parts]
    resources.complete_upload(ctx.user_id, resource_id, upload_id, parts)
    return {"upload_id": upload_id, "status": "verifying"}


@api.route(R + "/uploads/{upload_id}", "DELETE", role=CREATOR, tags=TAGS, status=204,
           errors=(404, 409), summary="Abandon an upload that has not landed")
def abort_upload(ctx: Ctx, resource_id: str, upload_id: str) -> None:
    resources.abort_upload(ctx.user_id, resource_id, upload_id)


@api.route(R + "/submit", "POST", role=CREATOR, tags=TAGS, response=ResourceEnvelope,
           errors=(404, 409), summary="Send for review (needs a verified file)")
def submit(ctx: Ctx, resource_id: str) -> ResourceEnvelope:
    return ResourceEnvelope(resource=resources.submit(ctx.user_id, resource_id))


@api.route(R + "/unpublish", "POST", role=CREATOR, tags=TAGS, response=ResourceEnvelope,
           errors=(404, 409), summary="Take a published resource off sale")
def unpublish_own(ctx: Ctx, resource_id: str) -> ResourceEnvelope:
    return ResourceEnvelope(resource=moderation.set_visibility(ctx.user_id, resource_id, False,
                                                           as_admin=False))


@api.route(R + "/publish", "POST", role=CREATOR, tags=TAGS, response=ResourceEnvelope,
           errors=(404, 409), summary="Put an unpublished (already approved) resource back")
def publish_own(ctx: Ctx, resource_id: str) -> ResourceEnvelope:
    return ResourceEnvelope(resource=moderation.set_visibility(ctx.user_id, resource_id, True,
                                                           as_admin=False))
