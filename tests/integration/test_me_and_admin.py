"""Profile, creator requests and user administration."""
from __future__ import annotations

import pytest

from tests.support import PASSWORD, assert_envelope


def test_me_needs_a_bearer_token(api):
    reply = api.get("/me")
    assert_envelope(reply, 401, "unauthenticated")
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert_envelope(api.get("/me", headers={"Authorization": "Basic abc"}), 401, "invalid_token")
    assert_envelope(api.get("/me", token="not.a.jwt"), 401, "invalid_token")


def test_patch_me_changes_the_display_name_only(api):
    _, pair = api.user_session()
    reply = api.patch("/me", {"display_name": "  小明 "}, token=pair["access_token"])
    assert reply.status == 200 and reply.body["user"]["display_name"] == "小明"
    assert api.get("/me", token=pair["access_token"]).body["user"]["display_name"] == "小明"


def test_patch_me_refuses_email_and_role_changes(api):
    _, pair = api.user_session()
    for body in ({"email": "x@example.com"}, {"roles": ["admin"]}):
        assert_envelope(api.patch("/me", body, token=pair["access_token"]), 400,
                        "validation_error")


def test_patch_me_refuses_a_blank_or_too_long_name(api):
    _, pair = api.user_session()
    assert_envelope(api.patch("/me", {"display_name": "   "}, token=pair["access_token"]), 400)
    assert_envelope(api.patch("/me", {"display_name": "x" * 61}, token=pair["access_token"]),
                    400)


def test_change_password_keeps_this_session_and_ends_the_others(api):
    user, first = api.user_session()
    other = api.login(user["email"])
    reply = api.post("/me/password", {"current_password": PASSWORD,
                                      "new_password": "the next passphrase"},
                     token=first["access_token"])
    assert reply.status == 200
    assert api.post("/auth/refresh", {"refresh_token": reply.body["refresh_token"]}
                    ).status == 200
    assert_envelope(api.post("/auth/refresh", {"refresh_token": other["refresh_token"]}), 401)


def test_change_password_needs_the_current_one(api):
    _, pair = api.user_session()
    reply = api.post("/me/password", {"current_password": "not it at all",
                                      "new_password": "the next passphrase"},
                     token=pair["access_token"])
    error = assert_envelope(reply, 403, "wrong_password")
    assert "current_password" in error["details"]["fields"]


def test_become_creator_is_granted_at_once_where_auto_approval_is_on(api):
    _, pair = api.user_session()
    reply = api.post("/me/creator", token=pair["access_token"])
    assert reply.status == 200
    assert "creator" in reply.body["user"]["roles"]
    # The next access token carries the role.
    refreshed = api.post("/auth/refresh", {"refresh_token": pair["refresh_token"]}).body
    from chalicelib.accounts.tokens import verify_access_token

    assert "creator" in verify_access_token(refreshed["access_token"])["roles"]


@pytest.fixture
def manual_creator_approval(monkeypatch):
    from chalicelib.config import settings

    monkeypatch.setenv("CREATOR_AUTO_APPROVE", "false")
    settings.cache_clear()
    # Read now: the test client re-applies the stage's variables around each request.
    assert settings().creator_auto_approve is False
    yield
    monkeypatch.undo()
    settings.cache_clear()


def test_become_creator_waits_for_an_admin_when_auto_approval_is_off(
        api, manual_creator_approval):
    user, pair = api.user_session()
    reply = api.post("/me/creator", token=pair["access_token"])
    assert reply.status == 202
    assert reply.body["user"]["creator_status"] == "pending"
    assert "creator" not in reply.body["user"]["roles"]
    _, admin = api.admin_session()
    pending = api.get("/admin/users?creator_status=pending", token=admin["access_token"])
    assert [u["id"] for u in pending.body["items"]] == [user["id"]]
    approved = api.patch(f"/admin/users/{user['id']}", {"roles": ["buyer", "creator"]},
                         token=admin["access_token"])
    assert approved.status == 200
    assert approved.body["user"]["creator_status"] == "approved"
    again = api.get("/admin/users?creator_status=pending", token=admin["access_token"])
    assert again.body["items"] == []


def test_admin_can_reject_a_pending_creator_request(api, manual_creator_approval):
    user, pair = api.user_session()
    api.post("/me/creator", token=pair["access_token"])
    _, admin = api.admin_session()
    reply = api.patch(f"/admin/users/{user['id']}", {"creator_status": "rejected"},
                      token=admin["access_token"])
    assert reply.body["user"]["creator_status"] == "rejected"
    assert "creator" not in reply.body["user"]["roles"]


def test_admin_routes_refuse_buyers_and_anonymous_callers(api):
    _, pair = api.user_session()
    assert_envelope(api.get("/admin/users", token=pair["access_token"]), 403, "forbidden")
    assert_envelope(api.get("/admin/users"), 401)


def test_admin_lists_users_newest_first_with_tamper_proof_cursors(api):
    _, admin = api.admin_session()
    made = [api.register()["id"] for _ in range(5)]
    seen, cursor = [], None
    while True:
        path = "/admin/users?limit=2" + (f"&cursor={cursor}" if cursor else "")
        reply = api.get(path, token=admin["access_token"])
        assert reply.status == 200
        seen += [u["id"] for u in reply.body["items"]]
        cursor = reply.body["next_cursor"]
        if not cursor:
            break
    assert seen[:5] == list(reversed(made))
    assert len(seen) == len(set(seen)) == 6
    first = api.get("/admin/users?limit=2", token=admin["access_token"]).body["next_cursor"]
    forged = first[:-2] + ("AA" if first[-2:] != "AA" else "BB")
    assert_envelope(api.get(f"/admin/users?cursor={forged}", token=admin["access_token"]), 400,
                    "invalid_cursor")
    other_listing = api.get(f"/admin/users?creator_status=pending&cursor={first}",
                            token=admin["access_token"])
    assert_envelope(other_listing, 400, "invalid_cursor")


def test_admin_finds_a_user_by_email(api):
    user = api.register(email="findme@example.com")
    _, admin = api.admin_session()
    reply = api.get("/admin/users?email=FindMe@example.com", token=admin["access_token"])
    assert [u["id"] for u in reply.body["items"]] == [user["id"]]


def test_admin_query_limits_are_validated(api):
    _, admin = api.admin_session()
    for bad in ("limit=0", "limit=101", "limit=abc", "creator_status=maybe"):
        assert_envelope(api.get(f"/admin/users?{bad}", token=admin["access_token"]), 400)


def test_disabling_a_user_ends_their_sessions_and_blocks_login(api):
    user, pair = api.user_session()
    _, admin = api.admin_session()
    reply = api.patch(f"/admin/users/{user['id']}", {"status": "disabled"},
                      token=admin["access_token"])
    assert reply.body["user"]["status"] == "disabled"
    assert_envelope(api.post("/auth/refresh", {"refresh_token": pair["refresh_token"]}), 401)
    assert_envelope(api.post("/auth/login", {"email": user["email"], "password": PASSWORD}),
                    403, "account_disabled")


def test_an_admin_cannot_lock_themself_out(api):
    me, admin = api.admin_session()
    for body in ({"roles": ["buyer"]}, {"status": "disabled"}):
        assert_envelope(api.patch(f"/admin/users/{me['id']}", body,
                                  token=admin["access_token"]), 422, "self_lockout")


def test_admin_patch_of_an_unknown_user_is_404_and_bad_roles_are_400(api):
    _, admin = api.admin_session()
    assert_envelope(api.patch("/admin/users/nope", {"status": "active"},
                              token=admin["access_token"]), 404)
    user = api.register()
    assert_envelope(api.patch(f"/admin/users/{user['id']}", {"roles": ["root"]},
                              token=admin["access_token"]), 400)


# ---------------------------------------------------------------- revocation at once

def test_a_disabled_users_access_token_is_refused_on_the_next_request(api):
    user, pair = api.user_session()
    _, admin = api.admin_session()
    assert api.get("/me", token=pair["access_token"]).status == 200
    api.patch(f"/admin/users/{user['id']}", {"status": "disabled"}, token=admin["access_token"])
    assert_envelope(api.get("/me", token=pair["access_token"]), 403, "account_disabled")


def test_a_granted_admin_role_reaches_the_next_token_and_a_demotion_ends_it_at_once(api):
    user, pair = api.user_session()
    _, admin = api.admin_session()
    api.patch(f"/admin/users/{user['id']}", {"roles": ["admin"]}, token=admin["access_token"])
    promoted = api.post("/auth/refresh", {"refresh_token": pair["refresh_token"]}).body
    assert api.get("/admin/users", token=promoted["access_token"]).status == 200
    api.patch(f"/admin/users/{user['id']}", {"roles": ["buyer"]}, token=admin["access_token"])
    assert_envelope(api.get("/admin/users", token=promoted["access_token"]), 401,
                    "session_revoked")


def test_a_role_granted_counts_on_the_next_request_without_a_new_token(api):
    user, pair = api.user_session()
    _, admin = api.admin_session()
    assert_envelope(api.get("/admin/users", token=pair["access_token"]), 403)
    api.patch(f"/admin/users/{user['id']}", {"roles": ["admin"]}, token=admin["access_token"])
    assert api.get("/admin/users", token=pair["access_token"]).status == 200


def test_after_a_password_change_other_access_tokens_are_refused_at_once(api):
    user, first = api.user_session()
    other = api.login(user["email"])
    changed = api.post("/me/password", {"current_password": PASSWORD,
                                        "new_password": "the next passphrase"},
                       token=first["access_token"]).body
    assert_envelope(api.get("/me", token=other["access_token"]), 401, "session_revoked")
    assert_envelope(api.get("/me", token=first["access_token"]), 401, "session_revoked")
    assert api.get("/me", token=changed["access_token"]).status == 200
