"""The deployed API is an API Gateway HTTP API with payload format 1.0 (infra/package.py): its
events, in the shape AWS documents for that format (a named stage, the matched route, lower-
case headers), reach the right Chalice view with their path parameters, query string, headers
and body. https://docs.aws.amazon.com/apigateway/latest/developerguide/
http-api-develop-integrations-lambda.html (payload format version 1.0)."""
from __future__ import annotations

import json
import uuid

from tests.support import PASSWORD


class Context:
    function_name = "paidres-local-APIHandler"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function_name
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    log_group_name = "/aws/lambda/" + function_name
    log_stream_name = "test"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def http_api_event(method: str, route: str, path: str, *, headers: dict | None = None,
                   query: dict[str, list[str]] | None = None, body: dict | None = None,
                   path_parameters: dict | None = None) -> dict:
    """An HTTP API payload-1.0 event for `method path` matched by the route `method route`,
    on the stage `api`, as AWS documents the format."""
    headers = {"content-type": "application/json", "host": "abc123.execute-api.us-east-1"
               ".amazonaws.com", "user-agent": "curl/8.5.0", **(headers or {})}
    return {
        "version": "1.0",
        "resource": route,
        "path": f"/api{path}",
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} if query else None,
        "multiValueQueryStringParameters": query,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123",
            "authorizer": {"claims": None, "scopes": None},
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123", "extendedRequestId": "request-id",
            "httpMethod": method,
            "identity": {"accessKey": None, "accountId": None, "caller": None,
                         "cognitoAuthenticationProvider": None,
                         "cognitoAuthenticationType": None, "cognitoIdentityId": None,
                         "cognitoIdentityPoolId": None, "principalOrgId": None,
                         "sourceIp": "203.0.113.9", "user": None, "userAgent": "curl/8.5.0",
                         "userArn": None},
            "path": f"/api{path}", "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()), "requestTime": "04/Mar/2020:19:15:17 +0000",
            "requestTimeEpoch": 1583349317135, "resourceId": f"{method} {route}",
            "resourcePath": route, "stage": "api",
        },
        "pathParameters": path_parameters,
        "stageVariables": None,
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def call(event: dict) -> tuple[int, dict, dict]:
    from app import app

    reply = app(event, Context())
    return reply["statusCode"], reply.get("headers", {}), json.loads(reply["body"])


def test_a_json_body_reaches_its_route_and_headers_carry_the_token(aws):
    # given a registered user, through HTTP API events only
    email = f"http-{uuid.uuid4().hex[:8]}@example.com"
    status, _, _ = call(http_api_event("POST", "/auth/register", "/auth/register", body={
        "email": email, "password": PASSWORD, "display_name": "HTTP API"}))
    assert status == 201
    # when
    status, _, pair = call(http_api_event("POST", "/auth/login", "/auth/login",
                                          body={"email": email, "password": PASSWORD}))
    # then
    assert status == 200
    status, _, me = call(http_api_event(
        "GET", "/me", "/me", headers={"authorization": f"Bearer {pair['access_token']}"}))
    assert status == 200 and me["user"]["email"] == email


def test_path_parameters_and_the_query_string_reach_the_view(aws):
    # given an id nobody published
    missing = "res_" + uuid.uuid4().hex
    # when
    status, _, body = call(http_api_event("GET", "/resources/{resource_id}",
                                          f"/resources/{missing}",
                                          path_parameters={"resource_id": missing}))
    # then the resource view answered (its own error code), not the router
    assert status == 404 and body["error"]["code"] == "resource_not_found"
    status, _, listing = call(http_api_event("GET", "/resources", "/resources",
                                             query={"limit": ["5"]}))
    assert status == 200 and listing["items"] == [] and "next_cursor" in listing
    status, _, refused = call(http_api_event("GET", "/resources", "/resources",
                                             query={"limit": ["0"]}))
    assert status == 400 and refused["error"]["code"] == "validation_error"


def test_the_route_is_taken_from_the_matched_route_even_if_resource_path_is_concrete(aws):
    from chalicelib.web import from_http_api_v1

    # given an event whose resourcePath names the concrete path (and whose path keeps the
    # stage), which Chalice could not route by
    event = http_api_event("GET", "/resources/{resource_id}", "/resources/r1",
                           path_parameters={"resource_id": "r1"})
    event["requestContext"]["resourcePath"] = "/resources/r1"
    event["resource"] = "/resources/r1"
    # when
    fixed = from_http_api_v1(event)
    # then
    assert fixed["requestContext"]["resourcePath"] == "/resources/{resource_id}"
    assert fixed["resource"] == "/resources/{resource_id}"
    assert fixed["path"] == "/resources/r1"
    status, _, body = call(event)
    assert status == 404 and body["error"]["code"] == "resource_not_found"


def test_a_rest_api_event_is_left_as_it_is():
    from chalicelib.web import from_http_api_v1

    rest = {"resource": "/health", "path": "/health", "httpMethod": "GET",
            "requestContext": {"resourcePath": "/health", "stage": "api", "path": "/api/health"}}

    assert from_http_api_v1(dict(rest)) == rest


def test_a_path_no_route_matches_is_answered_404_in_the_error_envelope(aws):
    # given the HTTP API's $default route, taken when no route matches
    event = http_api_event("GET", "$default", "/no/such/route")
    event["resource"] = "$default"
    event["requestContext"].update(resourceId="$default", resourcePath="/no/such/route")
    # when
    status, _, body = call(event)
    # then
    assert status == 404 and body == {"error": {"code": "not_found",
                                                "message": "No route matches this path.",
                                                "details": {}}}
