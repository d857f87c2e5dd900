"""The local gateway's own errors (no route, authorizer refusals) in the error envelope.
Fast: no server, the exceptions come from chalice's LocalGateway itself."""
from __future__ import annotations

import json

import pytest
from chalice import Chalice
from chalice.config import Config
from chalice.local import (
    ForbiddenError,
    InvalidAuthorizerError,
    LocalGateway,
    LocalGatewayException,
    NotAuthorizedError,
)

from devstack.gateway import gateway_error_envelope

tiny = Chalice(app_name="gatewaytest")


@tiny.route("/known")
def known():
    return {}


def gateway_error(path: str, headers: dict) -> LocalGatewayException:
    gateway = LocalGateway(tiny, Config.create(chalice_stage="local", app_name="gatewaytest"))
    with pytest.raises(LocalGatewayException) as caught:
        gateway.handle_request(method="GET", path=path, headers=headers, body=None)
    return caught.value


def error_of(body: bytes) -> dict:
    return json.loads(body)["error"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer x"}],
                         ids=["anonymous", "with-token"])
def test_unknown_route_becomes_404_not_found(headers):
    # given chalice's answer to an unknown route (403 "Missing Authentication Token")
    exc = gateway_error("/unknown", headers)
    assert exc.CODE == 403
    # when
    status, out_headers, body = gateway_error_envelope(exc)
    # then
    assert status == 404
    assert out_headers["Content-Type"] == "application/json"
    assert out_headers["x-amzn-RequestId"] == exc.headers["x-amzn-RequestId"]
    assert error_of(body) == {"code": "not_found", "message": "No route matches this path.",
                              "details": {}}


@pytest.mark.parametrize(("exc", "status", "code"), [
    (ForbiddenError({"x-amzn-ErrorType": "AccessDeniedException"}, b"{}"), 403, "forbidden"),
    (NotAuthorizedError({}, b"{}"), 401, "unauthenticated"),
    (InvalidAuthorizerError({}, b'{"message":null}'), 500, "internal_error"),
], ids=["authorizer-denied", "not-authorized", "authorizer-misconfigured"])
def test_other_gateway_errors_keep_their_status_in_the_envelope(exc, status, code):
    # when
    got_status, headers, body = gateway_error_envelope(exc)
    # then
    assert got_status == status
    assert headers["Content-Type"] == "application/json"
    assert error_of(body)["code"] == code
    assert error_of(body)["details"] == {}
