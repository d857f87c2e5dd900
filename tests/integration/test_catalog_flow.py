"""From draft to published: uploads straight to S3, checks by the upload-events handler
through the event pump, review, listing, detail and search."""
from __future__ import annotations

import base64
import hashlib
import json
import time

import pytest

from tests.support import (
    DRAFT,
    PDF_BYTES,
    PNG_BYTES,
    assert_envelope,
    drain,
    new_draft,
    post_form,
    publish,
    upload,
)


def policy_of(form: dict) -> dict:
    return json.loads(base64.b64decode(form["fields"]["policy"]))


# ---------------------------------------------------------------- drafts and validation

def test_a_creator_creates_a_draft_with_clean_tags(api, creator):
    _, pair = creator
    resource = new_draft(api, pair["access_token"], tags=[" Python ", "python", "数据"])
    assert resource["status"] == "draft" and resource["tags"] == ["Python", "数据"]
    assert resource["file"] is None
    assert resource["price"] == {"amount": 4900, "currency": "cny"}


@pytest.mark.parametrize("change,field", [
    ({"price": {"amount": -1, "currency": "cny"}}, "price.amount"),
    ({"price": {"amount": 10**12, "currency": "cny"}}, "price.amount"),
    ({"price": {"amount": 9.99, "currency": "usd"}}, "price.amount"),
    ({"price": {"amount": 100, "currency": "btc"}}, "price.currency"),
    ({"title": "x" * 121}, "title"),
    ({"description": "x" * 20_001}, "description"),
    ({"tags": [f"t{i}" for i in range(21)]}, "tags"),
    ({"tags": ["x" * 31]}, "tags[0]"),
    ({"kind": "podcast"}, "kind"),
    ({"owner": "me"}, "owner"),
])
def test_bad_drafts_are_refused_naming_the_field(api, creator, change, field):
    _, pair = creator
    error = assert_envelope(api.post("/creator/resources", {**DRAFT, **change},
                                     token=pair["access_token"]), 400)
    assert field in error["details"]["fields"], error


def test_a_draft_in_a_category_that_does_not_exist_is_refused_by_rule(api, creator):
    # A well-formed slug is valid input; which categories exist is data admins change.
    _, pair = creator
    error = assert_envelope(api.post("/creator/resources", {**DRAFT, "category": "nope"},
                                     token=pair["access_token"]), 422, "unknown_category")
    assert "category" in error["details"]["fields"]


def test_buyers_cannot_create_resources(api, catalog):
    _, pair = api.user_session()
    assert_envelope(api.post("/creator/resources", DRAFT, token=pair["access_token"]), 403)


def test_someone_elses_resource_is_not_found(api, creator):
    _, pair = creator
    resource = new_draft(api, pair["access_token"])
    _, other = api.creator_session()
    for method, path, body in (("GET", "", None), ("PATCH", "", {"title": "mine"}),
                               ("POST", "/submit", None), ("DELETE", "", None),
                               ("POST", "/uploads", {"filename": "a.pdf", "size": 10,
                                                     "content_type": "application/pdf"})):
        reply = api.call(method, f"/creator/resources/{resource['id']}{path}", body,
                         token=other["access_token"])
        assert_envelope(reply, 404)


def test_a_creator_lists_own_resources_by_status(api, creator, pump, admin):
    _, pair = creator
    token = pair["access_token"]
    draft = new_draft(api, token, title="草稿")
    live = publish(api, pump, token, admin[1]["access_token"], title="已发布")
    everything = api.get("/creator/resources", token=token).body["items"]
    assert [r["id"] for r in everything] == [live["id"], draft["id"]]
    drafts = api.get("/creator/resources?status=draft", token=token).body["items"]
    assert [r["id"] for r in drafts] == [draft["id"]]


def test_drafts_can_be_deleted_but_published_resources_cannot(api, creator, pump, admin):
    _, pair = creator
    token = pair["access_token"]
    draft = new_draft(api, token)
    assert api.call("DELETE", f"/creator/resources/{draft['id']}", token=token).status == 204
    assert_envelope(api.get(f"/creator/resources/{draft['id']}", token=token), 404)
    live = publish(api, pump, token, admin[1]["access_token"])
    assert_envelope(api.call("DELETE", f"/creator/resources/{live['id']}", token=token), 409)


# ---------------------------------------------------------------- uploads

def test_the_upload_policy_binds_key_type_size_encryption_and_expiry(api, creator):
    user, pair = creator
    resource = new_draft(api, pair["access_token"])
    reply = api.post(f"/creator/resources/{resource['id']}/uploads",
                     {"filename": "第一章 intro.pdf", "content_type": "application/pdf",
                      "size": 12345}, token=pair["access_token"])
    assert reply.status == 201
    form = reply.body
    assert form["method"] == "post"
    key = form["fields"]["key"]
    assert key.startswith(f"creators/{user['id']}/{resource['id']}/{form['upload_id']}/")
    policy = policy_of(form)
    conditions = policy["conditions"]
    assert {"key": key} in conditions
    assert {"Content-Type": "application/pdf"} in conditions
    assert ["content-length-range", 1, 12345] in conditions
    assert {"x-amz-server-side-encryption": "AES256"} in conditions
    assert {"bucket": "paidres-local-uploads"} in conditions
    expires = time.mktime(time.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ"))
    assert 0 < expires - time.mktime(time.gmtime()) <= 15 * 60 + 5


def test_a_declared_size_above_the_limit_is_413(api, creator):
    _, pair = creator
    resource = new_draft(api, pair["access_token"])
    reply = api.post(f"/creator/resources/{resource['id']}/uploads",
                     {"filename": "huge.mp4", "content_type": "video/mp4",
                      "size": 2 * 1024**3 + 1}, token=pair["access_token"])
    assert_envelope(reply, 413, "file_too_large")


def test_covers_must_be_images(api, creator):
    _, pair = creator
    resource = new_draft(api, pair["access_token"])
    reply = api.post(f"/creator/resources/{resource['id']}/uploads",
                     {"filename": "cover.pdf", "content_type": "application/pdf",
                      "size": 100, "purpose": "cover"}, token=pair["access_token"])
    assert_envelope(reply, 400, "unsupported_type")


def test_files_above_100_mb_get_presigned_multipart_part_urls(api, creator):
    _, pair = creator
    resource = new_draft(api, pair["access_token"], kind="video")
    size = 300 * 1024 * 1024
    reply = api.post(f"/creator/resources/{resource['id']}/uploads",
                     {"filename": "course.mp4", "content_type": "video/mp4", "size": size},
                     token=pair["access_token"])
    assert reply.status == 201
    form = reply.body
    assert form["method"] == "multipart"
    assert form["part_size"] * len(form["parts"]) >= size
    assert [p["part_number"] for p in form["parts"]] == list(range(1, len(form["parts"]) + 1))
    assert "uploadId=" in form["parts"][0]["url"] and "partNumber=1" in form["parts"][0]["url"]
    aborted = api.call("DELETE", f"/creator/resources/{resource['id']}/uploads/"
                                 f"{form['upload_id']}", token=pair["access_token"])
    assert aborted.status == 204


@pytest.fixture
def small_multipart_threshold(monkeypatch):
    """Multipart from 1 MiB, so a test can send a few MiB (S3 parts are 5 MiB at least)."""
    from chalicelib.config import settings

    monkeypatch.setenv("MULTIPART_THRESHOLD_BYTES", str(1024 * 1024))
    settings.cache_clear()
    # Read now: the test client re-applies the stage's variables around each request.
    assert settings().multipart_threshold_bytes == 1024 * 1024
    yield
    monkeypatch.undo()
    settings.cache_clear()


def test_a_multipart_upload_is_assembled_and_checked(api, creator, pump,
                                                     small_multipart_threshold):
    import requests

    _, pair = creator
    token = pair["access_token"]
    resource = new_draft(api, token)
    data = PDF_BYTES + b"\n%" + b"0" * (6 * 1024 * 1024)
    reply = api.post(f"/creator/resources/{resource['id']}/uploads",
                     {"filename": "big.pdf", "content_type": "application/pdf",
                      "size": len(data)}, token=token)
    form = reply.body
    assert form["method"] == "multipart"
    etags = []
    for part in form["parts"]:
        start = (part["part_number"] - 1) * form["part_size"]
        sent = requests.put(part["url"], data=data[start:start + form["part_size"]], timeout=30)
        assert sent.status_code == 200
        etags.append({"part_number": part["part_number"], "etag": sent.headers["ETag"]})
    done = api.post(f"/creator/resources/{resource['id']}/uploads/{form['upload_id']}/complete",
                    {"parts": etags}, token=token)
    assert done.status == 202, done.body
    drain(pump)
    file = api.get(f"/creator/resources/{resource['id']}", token=token).body["resource"]["file"]
    assert file["status"] == "verified"
    assert file["sha256"] == hashlib.sha256(data).hexdigest()


def test_an_uploaded_file_is_verified_with_its_size_and_sha256(api, creator, pump):
    _, pair = creator
    token = pair["access_token"]
    resource = new_draft(api, token)
    form = upload(api, pump, token, resource["id"])
    file = api.get(f"/creator/resources/{resource['id']}", token=token).body["resource"]["file"]
    assert file == {"upload_id": form["upload_id"], "status": "verified",
                    "filename": "book.pdf", "content_type": "application/pdf",
                    "size": len(PDF_BYTES), "sha256": hashlib.sha256(PDF_BYTES).hexdigest(),
                    "reason": None, "version": None}


def test_a_png_declared_as_pdf_is_rejected_and_deleted(api, creator, pump):
    from chalicelib import aws as factories
    from chalicelib.config import settings

    _, pair = creator
    token = pair["access_token"]
    resource = new_draft(api, token)
    form = upload(api, pump, token, resource["id"], data=PNG_BYTES)
    file = api.get(f"/creator/resources/{resource['id']}", token=token).body["resource"]["file"]
    assert file["status"] == "rejected"
    assert "image/png" in file["reason"]
    listed = factories.s3().list_objects_v2(Bucket=settings().uploads_bucket,
                                            Prefix=form["fields"]["key"])
    assert listed.get("KeyCount", 0) == 0
    assert_envelope(api.post(f"/creator/resources/{resource['id']}/submit", token=token), 409,
                    "file_not_verified")


def test_an_object_smaller_than_declared_is_rejected(api, creator, pump):
    _, pair = creator
    token = pair["access_token"]
    resource = new_draft(api, token)
    reply = api.post(f"/creator/resources/{resource['id']}/uploads",
                     {"filename": "a.pdf", "content_type": "application/pdf",
                      "size": len(PDF_BYTES) + 100}, token=token)
    post_form(reply.body, PDF_BYTES)
    drain(pump)
    file = api.get(f"/creator/resources/{resource['id']}", token=token).body["resource"]["file"]
    assert file["status"] == "rejected" and "declared" in file["reason"]


def test_a_redelivered_upload_event_changes_nothing(api, creator, pump):
    from chalicelib.catalog.files import check_object

    _, pair = creator
    token = pair["access_token"]
    resource = new_draft(api, token)
    form = upload(api, pump, token, resource["id"])
    assert check_object(form["fields"]["key"]) == "duplicate"


# ---------------------------------------------------------------- review

def test_submitting_without_a_verified_file_is_409(api, creator):
    _, pair = creator
    resource = new_draft(api, pair["access_token"])
    assert_envelope(api.post(f"/creator/resources/{resource['id']}/submit",
                             token=pair["access_token"]), 409, "file_required")


def test_submit_twice_and_approving_a_draft_are_409(api, creator, pump, admin):
    _, pair = creator
    token = pair["access_token"]
    resource = new_draft(api, token)
    assert_envelope(api.post(f"/admin/resources/{resource['id']}/approve",
                             token=admin[1]["access_token"]), 409, "not_under_review")
    upload(api, pump, token, resource["id"])
    assert api.post(f"/creator/resources/{resource['id']}/submit", token=token).status == 200
    assert_envelope(api.post(f"/creator/resources/{resource['id']}/submit", token=token), 409)
    assert_envelope(api.patch(f"/creator/resources/{resource['id']}", {"title": "changed"},
                              token=token), 409, "under_review")


def test_the_review_queue_is_oldest_first_and_rejection_needs_a_reason(api, creator, pump,
                                                                       admin):
    _, pair = creator
    token, admin_token = pair["access_token"], admin[1]["access_token"]
    first, second = new_draft(api, token, title="一"), new_draft(api, token, title="二")
    for resource in (first, second):
        upload(api, pump, token, resource["id"])
        api.post(f"/creator/resources/{resource['id']}/submit", token=token)
    queue = api.get("/admin/reviews", token=admin_token).body["items"]
    assert [r["id"] for r in queue] == [first["id"], second["id"]]
    assert_envelope(api.post(f"/admin/resources/{first['id']}/reject", {},
                             token=admin_token), 400)
    rejected = api.post(f"/admin/resources/{first['id']}/reject",
                        {"reason": "封面不清晰 / blurry cover"}, token=admin_token)
    assert rejected.body["resource"]["status"] == "rejected"
    seen = api.get(f"/creator/resources/{first['id']}", token=token).body["resource"]
    assert seen["rejection_reason"] == "封面不清晰 / blurry cover"
    assert [r["id"] for r in api.get("/admin/reviews", token=admin_token).body["items"]] == [
        second["id"]]


def test_every_moderation_action_is_in_the_audit_log(api, creator, pump, admin):
    admin_user, admin_pair = admin
    _, pair = creator
    token, admin_token = pair["access_token"], admin_pair["access_token"]
    resource = publish(api, pump, token, admin_token)
    api.post(f"/admin/resources/{resource['id']}/unpublish", {"reason": "版权投诉"},
             token=admin_token)
    log = api.get(f"/admin/audit?resource_id={resource['id']}", token=admin_token).body["items"]
    assert [(e["action"], e["actor_id"], e["reason"]) for e in log] == [
        ("unpublish", admin_user["id"], "版权投诉"), ("approve", admin_user["id"], None)]
    assert all(e["at"] and e["target_id"] == resource["id"] for e in log)
    everything = api.get("/admin/audit?limit=1", token=admin_token).body
    assert everything["items"][0]["action"] == "unpublish" and everything["next_cursor"]


def test_only_admins_review(api, creator, pump):
    _, pair = creator
    resource = new_draft(api, pair["access_token"])
    assert_envelope(api.get("/admin/reviews", token=pair["access_token"]), 403)
    assert_envelope(api.post(f"/admin/resources/{resource['id']}/approve",
                             token=pair["access_token"]), 403)


# ---------------------------------------------------------------- the public side

def test_a_published_resource_is_public_without_its_file_key(api, creator, pump, admin):
    _, pair = creator
    resource = publish(api, pump, pair["access_token"], admin[1]["access_token"])
    reply = api.get(f"/resources/{resource['id']}")
    assert reply.status == 200
    public = reply.body["resource"]
    assert public["title"] == DRAFT["title"] and public["creator"]["display_name"] == "Tester"
    assert public["file"] == {"filename": "book.pdf", "content_type": "application/pdf",
                              "size": len(PDF_BYTES), "version": 1}
    assert "creators/" not in json.dumps(reply.body)


def test_drafts_and_unpublished_resources_are_not_public(api, creator, pump, admin):
    _, pair = creator
    token = pair["access_token"]
    draft = new_draft(api, token)
    assert_envelope(api.get(f"/resources/{draft['id']}"), 404)
    live = publish(api, pump, token, admin[1]["access_token"])
    api.post(f"/creator/resources/{live['id']}/unpublish", token=token)
    assert_envelope(api.get(f"/resources/{live['id']}"), 404)
    assert api.get("/resources").body["items"] == []
    assert api.get("/search?q=Python").body["items"] == []
    api.post(f"/creator/resources/{live['id']}/publish", token=token)
    assert [r["id"] for r in api.get("/resources").body["items"]] == [live["id"]]


def test_listing_by_category_includes_subcategories_and_by_tag(api, creator, pump, admin):
    _, pair = creator
    token, admin_token = pair["access_token"], admin[1]["access_token"]
    data = publish(api, pump, token, admin_token, category="data", tags=["pandas"])
    design = publish(api, pump, token, admin_token, category="design", tags=["Figma"])
    assert [r["id"] for r in api.get("/resources?category=tech").body["items"]] == [data["id"]]
    assert [r["id"] for r in api.get("/resources?category=design").body["items"]] == [
        design["id"]]
    assert [r["id"] for r in api.get("/resources?tag=figma").body["items"]] == [design["id"]]
    assert [r["id"] for r in api.get("/resources?tag=pandas&category=design").body["items"]] \
        == []
    assert api.get("/resources?sort=cheapest").status == 400


def test_a_creators_page_lists_their_published_resources(api, creator, pump, admin):
    user, pair = creator
    resource = publish(api, pump, pair["access_token"], admin[1]["access_token"])
    page = api.get(f"/creators/{user['id']}").body
    assert page["display_name"] == "Tester"
    assert [r["id"] for r in page["resources"]] == [resource["id"]]
    buyer = api.register()
    assert_envelope(api.get(f"/creators/{buyer['id']}"), 404)


def test_editing_a_published_resource_updates_listing_and_search_at_once(api, creator, pump,
                                                                          admin):
    _, pair = creator
    token = pair["access_token"]
    resource = publish(api, pump, token, admin[1]["access_token"])
    api.patch(f"/creator/resources/{resource['id']}",
              {"title": "机器学习入门", "price": {"amount": 9900, "currency": "cny"}}, token=token)
    assert api.get("/search?q=实战").body["items"] == []  # only the old title had it
    found = api.get("/search?q=机器学习").body["items"]
    assert [(r["id"], r["price"]["amount"]) for r in found] == [(resource["id"], 9900)]
    listed = api.get("/resources").body["items"][0]
    assert listed["title"] == "机器学习入门"


def test_a_new_file_version_goes_live_only_after_approval(api, creator, pump, admin):
    _, pair = creator
    token, admin_token = pair["access_token"], admin[1]["access_token"]
    resource = publish(api, pump, token, admin_token)
    second = PDF_BYTES.replace(b"%%EOF", b"% v2\n%%EOF")
    upload(api, pump, token, resource["id"], data=second, filename="book-v2.pdf")
    mine = api.get(f"/creator/resources/{resource['id']}", token=token).body["resource"]
    assert mine["pending_file"]["status"] == "verified" and mine["file"]["filename"] == "book.pdf"
    assert api.get(f"/resources/{resource['id']}").body["resource"]["file"]["version"] == 1
    assert api.post(f"/creator/resources/{resource['id']}/submit", token=token).status == 200
    assert api.get(f"/resources/{resource['id']}").status == 200  # still on sale meanwhile
    api.post(f"/admin/resources/{resource['id']}/approve", token=admin_token)
    public = api.get(f"/resources/{resource['id']}").body["resource"]
    assert public["file"]["version"] == 2 and public["file"]["filename"] == "book-v2.pdf"


def test_a_verified_cover_is_served_as_a_presigned_url(api, creator, pump, admin):
    _, pair = creator
    token = pair["access_token"]
    resource = publish(api, pump, token, admin[1]["access_token"])
    upload(api, pump, token, resource["id"], data=PNG_BYTES, content_type="image/png",
           purpose="cover", filename="cover.png")
    public = api.get(f"/resources/{resource['id']}").body["resource"]
    assert public["cover_url"] and "X-Amz-Signature=" in public["cover_url"]
