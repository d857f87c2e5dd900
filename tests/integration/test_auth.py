"""Accounts and sessions through the HTTP API (Chalice test client on moto)."""
from __future__ import annotations

import time

from tests.support import PASSWORD, assert_envelope


def test_register_normalises_email_and_returns_the_user_without_secrets(api):
    reply = api.post("/auth/register", {"email": "  Ann.Lee@Example.COM ", "password": PASSWORD,
                                        "display_name": "Ann"})
    assert reply.status == 201
    user = reply.body["user"]
    assert user["email"] == "ann.lee@example.com"
    assert user["roles"] == ["buyer"]
    assert "password_hash" not in user and "password" not in user


def test_register_twice_with_the_same_email_in_other_case_is_a_conflict(api):
    api.register(email="dup@example.com")
    reply = api.post("/auth/register", {"email": "DUP@example.com", "password": PASSWORD,
                                        "display_name": "Again"})
    assert_envelope(reply, 409, "email_taken")


def test_register_refuses_a_password_shorter_than_the_schema_says_as_invalid(api):
    reply = api.post("/auth/register", {"email": "someone@example.com",
                                        "password": "short1", "display_name": "S"})
    error = assert_envelope(reply, 400, "validation_error")
    assert "password" in error["details"]["fields"]


def test_register_refuses_common_and_email_like_passwords_by_rule(api):
    # A long enough password is valid input; the blocklist and the email are rules over data.
    for password in ("password123", "qwertyuiop", "someone@example.com"):
        reply = api.post("/auth/register", {"email": "someone@example.com",
                                            "password": password, "display_name": "S"})
        error = assert_envelope(reply, 422, "weak_password")
        assert "password" in error["details"]["fields"], password


def test_register_refuses_an_invalid_email_and_names_the_field(api):
    reply = api.post("/auth/register", {"email": "not-an-email", "password": PASSWORD,
                                        "display_name": "X"})
    error = assert_envelope(reply, 400, "validation_error")
    assert "email" in error["details"]["fields"]


def test_register_refuses_unknown_fields_such_as_roles(api):
    reply = api.post("/auth/register", {"email": "mass@example.com", "password": PASSWORD,
                                        "display_name": "M", "roles": ["admin"]})
    error = assert_envelope(reply, 400, "validation_error")
    assert "roles" in error["details"]["fields"]


def test_register_reports_a_missing_field_by_name(api):
    reply = api.post("/auth/register", {"email": "m@example.com", "password": PASSWORD})
    error = assert_envelope(reply, 400, "validation_error")
    assert "display_name" in error["details"]["fields"]


def test_login_returns_a_bearer_pair_with_a_short_lived_access_token(api):
    user = api.register()
    pair = api.login(user["email"])
    assert pair["token_type"] == "Bearer"
    assert 0 < pair["expires_in"] <= 900
    me = api.get("/me", token=pair["access_token"])
    assert me.status == 200 and me.body["user"]["id"] == user["id"]


def test_login_with_a_wrong_password_or_unknown_email_gives_the_same_answer(api):
    user = api.register()
    wrong = api.post("/auth/login", {"email": user["email"], "password": "wrong password!"})
    unknown = api.post("/auth/login", {"email": "nobody@example.com", "password": PASSWORD})
    assert_envelope(wrong, 401, "invalid_credentials")
    assert_envelope(unknown, 401, "invalid_credentials")
    assert wrong.body == unknown.body


def test_sixth_login_within_the_window_is_throttled_with_retry_after(api):
    user = api.register()
    for _ in range(5):
        assert api.post("/auth/login", {"email": user["email"], "password": "bad guess 12345"}
                        ).status == 401
    reply = api.post("/auth/login", {"email": user["email"], "password": PASSWORD})
    assert_envelope(reply, 429, "login_throttled")
    assert 0 < int(reply.headers["Retry-After"]) <= 900


def test_throttling_looks_the_same_for_an_email_without_account(api):
    for _ in range(5):
        api.post("/auth/login", {"email": "ghost@example.com", "password": "bad guess 12345"})
    reply = api.post("/auth/login", {"email": "ghost@example.com", "password": PASSWORD})
    assert_envelope(reply, 429, "login_throttled")
    assert "Retry-After" in reply.headers


def test_a_successful_login_clears_earlier_failures(api):
    user = api.register()
    for _ in range(4):
        api.post("/auth/login", {"email": user["email"], "password": "bad guess 12345"})
    api.login(user["email"])
    for _ in range(4):
        api.post("/auth/login", {"email": user["email"], "password": "bad guess 12345"})
    assert api.post("/auth/login", {"email": user["email"], "password": PASSWORD}).status == 200


def test_refresh_rotates_and_the_old_refresh_token_is_dead(api):
    _, pair = api.user_session()
    first = api.post("/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert first.status == 200
    assert first.body["refresh_token"] != pair["refresh_token"]
    again = api.post("/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert_envelope(again, 401, "refresh_token_reused")


def test_reusing_a_dead_refresh_token_revokes_the_whole_family(api):
    _, pair = api.user_session()
    rotated = api.post("/auth/refresh", {"refresh_token": pair["refresh_token"]}).body
    # The leaked old token is replayed: the thief and the owner both lose the session.
    api.post("/auth/refresh", {"refresh_token": pair["refresh_token"]})
    reply = api.post("/auth/refresh", {"refresh_token": rotated["refresh_token"]})
    assert_envelope(reply, 401, "invalid_refresh_token")


def test_other_sessions_survive_a_family_revocation(api):
    user, first = api.user_session()
    second = api.login(user["email"])
    api.post("/auth/refresh", {"refresh_token": first["refresh_token"]})
    api.post("/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert api.post("/auth/refresh", {"refresh_token": second["refresh_token"]}).status == 200


def test_an_unknown_refresh_token_is_refused(api):
    reply = api.post("/auth/refresh", {"refresh_token": "made-up-token"})
    assert_envelope(reply, 401, "invalid_refresh_token")


def test_logout_ends_the_session_and_needs_authentication(api):
    _, pair = api.user_session()
    assert_envelope(api.post("/auth/logout", {"refresh_token": pair["refresh_token"]}), 401)
    reply = api.post("/auth/logout", {"refresh_token": pair["refresh_token"]},
                     token=pair["access_token"])
    assert reply.status == 204
    refused = api.post("/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert_envelope(refused, 401)


def test_logout_with_someone_elses_refresh_token_leaves_their_session_alone(api):
    _, mine = api.user_session()
    _, theirs = api.user_session()
    reply = api.post("/auth/logout", {"refresh_token": theirs["refresh_token"]},
                     token=mine["access_token"])
    assert reply.status == 204
    assert api.post("/auth/refresh", {"refresh_token": theirs["refresh_token"]}).status == 200


def _reset_token_from_outbox(api, email: str) -> str:
    mail = api.get(f"/_local/outbox?to={email}").body["items"][0]
    assert mail["subject"] == "Reset your password"
    return mail["body"].split("Reset token: ")[1].split()[0]


def test_forgot_password_answers_202_whether_or_not_the_account_exists(api):
    user = api.register()
    known = api.post("/auth/password/forgot", {"email": user["email"]})
    unknown = api.post("/auth/password/forgot", {"email": "nobody@example.com"})
    assert known.status == unknown.status == 202
    assert known.body == unknown.body
    assert api.get("/_local/outbox?to=nobody@example.com").body["items"] == []


def test_password_reset_is_single_use_and_ends_every_session(api):
    user, pair = api.user_session()
    api.post("/auth/password/forgot", {"email": user["email"]})
    token = _reset_token_from_outbox(api, user["email"])
    new_password = "a brand new passphrase"
    assert api.post("/auth/password/reset", {"token": token, "new_password": new_password}
                    ).status == 204
    assert_envelope(api.post("/auth/refresh", {"refresh_token": pair["refresh_token"]}), 401)
    assert api.post("/auth/login", {"email": user["email"], "password": PASSWORD}).status == 401
    assert api.post("/auth/login", {"email": user["email"], "password": new_password}
                    ).status == 200
    again = api.post("/auth/password/reset", {"token": token, "new_password": "another phrase!"})
    assert_envelope(again, 401, "invalid_reset_token")


def test_password_reset_refuses_a_weak_password_and_keeps_the_token_usable(api):
    user = api.register()
    api.post("/auth/password/forgot", {"email": user["email"]})
    token = _reset_token_from_outbox(api, user["email"])
    weak = api.post("/auth/password/reset", {"token": token, "new_password": "1234567890"})
    assert_envelope(weak, 422, "weak_password")
    assert api.post("/auth/password/reset", {"token": token, "new_password": "good long phrase"}
                    ).status == 204


def test_password_reset_token_expires_after_its_lifetime(api):
    from chalicelib.accounts.store import ResetTokenRecord
    from chalicelib.accounts.tokens import digest

    user = api.register()
    api.post("/auth/password/forgot", {"email": user["email"]})
    token = _reset_token_from_outbox(api, user["email"])
    record = ResetTokenRecord.get(ResetTokenRecord.key(digest(token)), "RESET")
    assert 29 * 60 <= record.expires_at - time.time() <= 30 * 60
    # Given the 30 minutes have passed (DynamoDB TTL may lag; the check must not rely on it)
    record.update(actions=[ResetTokenRecord.expires_at.set(int(time.time()) - 1)])
    reply = api.post("/auth/password/reset", {"token": token, "new_password": "good long phrase"})
    assert_envelope(reply, 401, "invalid_reset_token")


def test_reset_tokens_and_refresh_tokens_are_stored_only_as_hashes(api, aws):
    import boto3

    user, pair = api.user_session()
    api.post("/auth/password/forgot", {"email": user["email"]})
    token = _reset_token_from_outbox(api, user["email"])
    from chalicelib.config import settings

    table = boto3.resource("dynamodb").Table(settings().auth_table)
    # A test may read the whole (tiny, in-memory) table; request paths never Scan.
    dump = repr(table.scan()["Items"])
    assert pair["refresh_token"] not in dump
    assert token not in dump
