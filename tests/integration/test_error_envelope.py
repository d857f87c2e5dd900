"""Every error leaves in the envelope of the API contract, including Chalice's own."""
from __future__ import annotations

from tests.support import assert_envelope


def test_malformed_json_is_a_400_envelope(api):
    assert_envelope(api.post("/auth/login", raw="{not json"), 400, "invalid_json")


def test_a_missing_body_is_a_400_envelope(api):
    assert_envelope(api.post("/auth/login"), 400, "body_required")


def test_a_json_array_instead_of_an_object_is_a_400_envelope(api):
    assert_envelope(api.post("/auth/login", raw="[1, 2]"), 400, "validation_error")


def test_wrong_types_name_the_field(api):
    error = assert_envelope(api.post("/auth/login", {"email": 5, "password": "x"}), 400)
    assert "email" in error["details"]["fields"]


def test_wrong_content_type_is_a_415_envelope(api):
    reply = api.post("/auth/login", raw="email=a", headers={"Content-Type": "text/plain"})
    assert_envelope(reply, 415, "unsupported_media_type")


def test_wrong_method_is_a_405_envelope_with_allow(api):
    reply = api.call("DELETE", "/health")
    assert_envelope(reply, 405, "method_not_allowed")
    assert "GET" in reply.headers["Allow"]


def test_health_reports_ok_and_the_version(api):
    reply = api.get("/health")
    assert reply.status == 200
    assert reply.body["status"] == "ok" and reply.body["version"]
