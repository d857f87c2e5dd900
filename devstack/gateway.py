"""The local API Gateway: chalice's local dev server, threaded, with the project's error
envelope on the errors the gateway itself answers, sending the app the events an API Gateway
HTTP API sends with payload format 1.0 (what production runs; infra/package.py), not chalice
local's REST API events.

`chalice local` answers an unknown route the way API Gateway does, with 403 and
`{"message": "Missing Authentication Token"}`. Clients of this API expect every error in the
envelope of the contract, so the local gateway answers those with 404 `not_found` instead.
"""
from __future__ import annotations

import json
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

from chalice import Chalice
from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    ForbiddenError,
    LocalChalice,
    LocalDevServer,
    LocalGateway,
    LocalGatewayException,
    ThreadedHTTPServer,
)

from chalicelib.web import envelope

# API Gateway's error type for a request that matches no resource (chalice local mimics it).
_NO_ROUTE_ERROR_TYPE = "UnauthorizedException"
_REQUEST_ID = "x-amzn-RequestId"

# Chalice's local errors other than "no such route", by status: (code, message).
_BY_STATUS = {
    401: ("unauthenticated", "Authentication is required."),
    403: ("forbidden", "You are not allowed to do this."),
    500: ("internal_error", "An internal error occurred."),
}


def gateway_error_envelope(exc: LocalGatewayException) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the envelope answering a chalice local gateway error."""
    if isinstance(exc, ForbiddenError) and \
            exc.headers.get("x-amzn-ErrorType") == _NO_ROUTE_ERROR_TYPE:
        status, code, message = 404, "not_found", "No route matches this path."
    else:
        status = exc.CODE if exc.CODE in _BY_STATUS else 500
        code, message = _BY_STATUS[status]
    keep = {_REQUEST_ID: exc.headers[_REQUEST_ID]} if _REQUEST_ID in exc.headers else {}
    response = envelope(status, code, message, headers=keep)
    body = response.body if isinstance(response.body, bytes) else response.body.encode()
    return status, dict(response.headers), body


# The stage the deployed HTTP API serves the app under (.chalice/config.json api_gateway_stage).
STAGE_NAME = "api"


def http_api_v1_event(rest: dict[str, Any], stage: str = STAGE_NAME) -> dict[str, Any]:
    """chalice local's REST-shaped event as an HTTP API sends it with payload format 1.0:
    `version`, the matched route in `resourceId` ("GET /resources/{resource_id}"), the stage
    at the start of both paths, a request id, lower-case header names."""
    context = rest["requestContext"]
    method, template, path = context["httpMethod"], context["resourcePath"], context["path"]
    now = time.time()
    headers = {k.lower(): v for k, v in rest.get("headers", {}).items()}
    query = rest.get("multiValueQueryStringParameters")
    return {
        "version": "1.0",
        "resource": template,
        "path": f"/{stage}{path}",
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} if query else None,
        "multiValueQueryStringParameters": query,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": headers.get("host", "localhost"),
            "domainPrefix": "local",
            "extendedRequestId": str(uuid.uuid4()),
            "httpMethod": method,
            "identity": {**context.get("identity", {}),
                         "userAgent": headers.get("user-agent")},
            "path": f"/{stage}{path}",
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "resourceId": f"{method} {template}",
            "resourcePath": template,
            "stage": stage,
        },
        "pathParameters": rest.get("pathParameters") or None,
        "stageVariables": None,
        "body": rest.get("body"),
        "isBase64Encoded": bool(rest.get("isBase64Encoded", False)),
    }


class RequestIdGateway(LocalGateway):
    """LocalGateway whose events are an HTTP API's (payload 1.0, with a request id, which
    chalice local leaves out), so views and the Powertools correlation id see one."""

    def _generate_lambda_event(self, method: str, path: str, headers: dict[str, Any],
                               body: bytes | None) -> dict[str, Any]:
        return http_api_v1_event(super()._generate_lambda_event(method, path, headers, body))


class GatewayRequestHandler(ChaliceRequestHandler):
    """Chalice's request handler with request ids and enveloped gateway errors."""

    def __init__(self, request: Any, client_address: tuple[str, int], server: Any,
                 app_object: Chalice, config: Config) -> None:
        self.local_gateway = RequestIdGateway(app_object, config)
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)

    def _send_error_response(self, error: LocalGatewayException) -> None:
        status, headers, body = gateway_error_envelope(error)
        self._send_http_response(status, headers, body)


class BackloggedServer(ThreadedHTTPServer):
    """Chalice's threaded server with a real listen backlog: socketserver's default of 5
    resets connections as soon as a few clients connect at once (a browser alone opens six),
    before the app sees them."""

    request_queue_size = 128
    daemon_threads = True


def make_server(app: Chalice, config: Config, host: str, port: int) -> LocalDevServer:
    """A threaded local server for `app` on host:port (bound on return, not yet serving)."""
    # What chalice.local.create_local_server does: with one thread per request, the app's
    # current_request must be per thread.
    if not isinstance(app, LocalChalice):
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    return LocalDevServer(app, config, host, port, handler_cls=GatewayRequestHandler,
                          server_cls=BackloggedServer)


def chalice_config(stage: str, project_dir: str, config_file: str) -> Config:
    """The chalice Config of `stage` as `chalice local --stage` builds it from the project's
    `.chalice/config.json` (function names, timeouts and memory sizes)."""
    with open(config_file, encoding="utf-8") as fh:
        from_disk = json.load(fh)
    return Config(chalice_stage=stage, config_from_disk=from_disk,
                  default_params={"project_dir": project_dir, "autogen_policy": True})

