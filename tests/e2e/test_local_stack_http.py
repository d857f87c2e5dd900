"""The local stack over real HTTP: health, seeded admin, accounts round trips, error
envelopes and the mail outbox."""
from __future__ import annotations

import re
import uuid

import pytest

pytestmark = pytest.mark.e2e

PASSWORD = "correct-horse-battery-9"


def new_email() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}@paidres.example.com"


def login(api, email: str, password: str) -> str:
    response = api.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def assert_envelope(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert isinstance(error["details"], dict)


def test_health_answers_ok(api):
    # when
    response = api.get("/health")
    # then
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_seeded_admin_logs_in_and_lists_users(api, stack):
    # given
    token = login(api, stack.admin_email, stack.admin_password)
    # when
    response = api.get("/admin/users", params={"email": stack.admin_email},
                       headers={"Authorization": f"Bearer {token}"})
    # then
    assert response.status_code == 200, response.text
    admins = [u for u in response.json()["items"] if u["email"] == stack.admin_email]
    assert admins and "admin" in admins[0]["roles"]


def test_registered_user_logs_in_and_reads_their_profile(api):
    # given
    email = new_email()
    registered = api.post("/auth/register", json={"email": email, "password": PASSWORD,
                                                  "display_name": "E2E user"})
    assert registered.status_code == 201, registered.text
    # when
    token = login(api, email, PASSWORD)
    me = api.get("/me", headers={"Authorization": f"Bearer {token}"})
    # then
    assert me.status_code == 200, me.text
    assert me.json()["user"]["email"] == email
    assert me.json()["user"]["id"] == registered.json()["user"]["id"]


def test_unknown_route_answers_404_envelope(api):
    assert_envelope(api.get("/no/such/route"), 404, "not_found")


def test_unknown_route_with_a_token_still_answers_404_envelope(api):
    response = api.get("/no/such/route", headers={"Authorization": "Bearer x"})
    assert_envelope(response, 404, "not_found")


def test_wrong_method_answers_405_envelope(api):
    response = api.delete("/health")
    assert_envelope(response, 405, "method_not_allowed")
    assert response.headers.get("Allow") == "GET"


def test_malformed_json_answers_400_envelope(api):
    response = api.post("/auth/login", data=b"{not json",
                        headers={"Content-Type": "application/json"})
    assert_envelope(response, 400, "invalid_json")


def test_wrong_content_type_answers_415_envelope(api):
    response = api.post("/auth/login", data=b"email=a", headers={"Content-Type": "text/plain"})
    assert_envelope(response, 415, "unsupported_media_type")


def test_reset_token_from_the_outbox_resets_the_password(api):
    # given an account that forgot its password
    email = new_email()
    assert api.post("/auth/register", json={"email": email, "password": PASSWORD,
                                            "display_name": "Forgetful"}).status_code == 201
    assert api.post("/auth/password/forgot", json={"email": email}).status_code == 202
    # when the token of the mail in the outbox is used
    outbox = api.get("/_local/outbox", params={"to": email})
    assert outbox.status_code == 200, outbox.text
    mails = outbox.json()["items"]
    assert len(mails) == 1 and mails[0]["to"] == [email]
    token = re.search(r"Reset token: (\S+)", mails[0]["body"]).group(1)
    new_password = "a-brand-new-password-7"
    reset = api.post("/auth/password/reset", json={"token": token, "new_password": new_password})
    # then the new password works and the old one does not
    assert reset.status_code == 204, reset.text
    login(api, email, new_password)
    old = api.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert_envelope(old, 401, "invalid_credentials")
