"""Resource transitions cannot race. Each test lets a service read the resource, then runs a
competing transition before the service writes: a read-then-write would let both win (a
submitted resource deleted, two decisions, two audit entries); one conditional write
"status IN allowed-from" lets exactly one win, and the other gets the 409 the new state
calls for."""
from __future__ import annotations

from tests.support import assert_envelope, new_draft, upload


def interleave(monkeypatch, module, reader: str, competitor) -> list:
    """Make `module.<reader>` run `competitor` once, right after its first read returns (the
    stale value is still handed back). Returns a list that holds True once it ran."""
    real = getattr(module, reader)
    ran: list[bool] = []

    def read_then_compete(*args, **kwargs):
        value = real(*args, **kwargs)
        if not ran:
            ran.append(True)
            competitor()
        return value

    monkeypatch.setattr(module, reader, read_then_compete)
    return ran


def under_review(api, pump, token) -> str:
    resource = new_draft(api, token)
    upload(api, pump, token, resource["id"])
    assert api.post(f"/creator/resources/{resource['id']}/submit", token=token).status == 200
    return resource["id"]


def audit_actions(api, admin_token, resource_id) -> list[str]:
    log = api.get(f"/admin/audit?resource_id={resource_id}", token=admin_token).body["items"]
    return [entry["action"] for entry in log]


def test_a_draft_submitted_while_being_deleted_is_not_deleted(api, creator, pump, admin,
                                                               monkeypatch):
    from chalicelib.catalog import resources

    user, pair = creator
    token, admin_token = pair["access_token"], admin[1]["access_token"]
    # Given a draft with a verified file
    draft = new_draft(api, token)
    upload(api, pump, token, draft["id"])
    # when it is submitted between the delete's read (a draft) and its write
    ran = interleave(monkeypatch, resources, "collection",
                     lambda: resources.submit(user["id"], draft["id"]))
    reply = api.call("DELETE", f"/creator/resources/{draft['id']}", token=token)
    # then the delete is refused, and the resource waits for review with its file
    assert ran
    assert_envelope(reply, 409, "wrong_state")
    mine = api.get(f"/creator/resources/{draft['id']}", token=token).body["resource"]
    assert mine["status"] == "pending_review" and mine["file"]["status"] == "verified"
    queue = api.get("/admin/reviews", token=admin_token).body["items"]
    assert [r["id"] for r in queue] == [draft["id"]]


def test_two_approvals_at_once_publish_one_file_version_with_one_audit_entry(
        api, creator, pump, admin, monkeypatch):
    from chalicelib.catalog import moderation

    admin_user, admin_pair = admin
    admin_token = admin_pair["access_token"]
    # Given a resource under review
    resource_id = under_review(api, pump, creator[1]["access_token"])
    # when another admin approves it between this approval's read and its write
    ran = interleave(monkeypatch, moderation, "load",
                     lambda: moderation.approve(admin_user["id"], resource_id))
    reply = api.post(f"/admin/resources/{resource_id}/approve", token=admin_token)
    # then this approval is refused; one decision is recorded, file version 1 is live
    assert ran
    assert_envelope(reply, 409, "not_under_review")
    assert audit_actions(api, admin_token, resource_id) == ["approve"]
    public = api.get(f"/resources/{resource_id}").body["resource"]
    assert public["file"]["version"] == 1


def test_an_approval_racing_a_rejection_leaves_only_the_rejection(api, creator, pump, admin,
                                                                   monkeypatch):
    from chalicelib.catalog import moderation

    admin_user, admin_pair = admin
    admin_token = admin_pair["access_token"]
    # Given a resource under review
    resource_id = under_review(api, pump, creator[1]["access_token"])
    # when it is rejected between the approval's read and its write
    ran = interleave(monkeypatch, moderation, "load",
                     lambda: moderation.reject(admin_user["id"], resource_id, "blurry"))
    reply = api.post(f"/admin/resources/{resource_id}/approve", token=admin_token)
    # then the approval is refused: the resource is rejected, not on sale, one audit entry
    assert ran
    assert_envelope(reply, 409, "not_under_review")
    mine = api.get(f"/admin/resources/{resource_id}", token=admin_token).body["resource"]
    assert mine["status"] == "rejected" and mine["rejection_reason"] == "blurry"
    assert_envelope(api.get(f"/resources/{resource_id}"), 404)
    assert audit_actions(api, admin_token, resource_id) == ["reject"]


def test_a_second_submission_racing_the_first_is_refused_as_already_submitted(
        api, creator, pump, admin, monkeypatch):
    from chalicelib.catalog import resources

    user, pair = creator
    token = pair["access_token"]
    # Given a draft with a verified file
    draft = new_draft(api, token)
    upload(api, pump, token, draft["id"])
    # when it is submitted between another submission's read and its write
    ran = interleave(monkeypatch, resources, "owned",
                     lambda: resources.submit(user["id"], draft["id"]))
    reply = api.post(f"/creator/resources/{draft['id']}/submit", token=token)
    # then that other submission is refused, and the queue holds the resource once
    assert ran
    assert_envelope(reply, 409, "already_submitted")
    queue = api.get("/admin/reviews", token=admin[1]["access_token"]).body["items"]
    assert [r["id"] for r in queue] == [draft["id"]]


def test_an_edit_racing_a_submission_is_refused_and_the_reviewed_title_is_the_submitted(
        api, creator, pump, admin, monkeypatch):
    from chalicelib.catalog import resources

    user, pair = creator
    token = pair["access_token"]
    # Given a draft with a verified file
    draft = new_draft(api, token, title="Submitted title")
    upload(api, pump, token, draft["id"])
    # when it is submitted between an edit's read (a draft) and its write
    ran = interleave(monkeypatch, resources, "owned",
                     lambda: resources.submit(user["id"], draft["id"]))
    reply = api.patch(f"/creator/resources/{draft['id']}", {"title": "Changed title"},
                      token=token)
    # then the edit is refused as under review, and the admin reviews what was submitted
    assert ran
    assert_envelope(reply, 409, "under_review")
    seen = api.get(f"/admin/resources/{draft['id']}",
                   token=admin[1]["access_token"]).body["resource"]
    assert seen["status"] == "pending_review" and seen["title"] == "Submitted title"
