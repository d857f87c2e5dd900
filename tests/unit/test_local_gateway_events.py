"""The local gateway sends the app what the deployed HTTP API sends (payload format 1.0), and
the app reads it the way it reads API Gateway's."""
from __future__ import annotations

from chalicelib.web import from_http_api_v1
from devstack.gateway import http_api_v1_event

# What chalice local builds for GET /resources/r1?limit=5 (a REST API proxy event).
CHALICE_LOCAL = {
    "requestContext": {"httpMethod": "GET", "resourcePath": "/resources/{resource_id}",
                       "identity": {"sourceIp": "127.0.0.1"}, "path": "/resources/r1"},
    "headers": {"Host": "localhost:8000", "User-Agent": "curl/8.5.0",
                "Authorization": "Bearer t"},
    "pathParameters": {"resource_id": "r1"},
    "stageVariables": {},
    "multiValueQueryStringParameters": {"limit": ["5"]},
    "body": None,
}


def test_the_local_gateway_sends_an_http_api_payload_1_0_event():
    event = http_api_v1_event(CHALICE_LOCAL)

    assert event["version"] == "1.0"
    assert event["resource"] == "/resources/{resource_id}"
    assert event["path"] == "/api/resources/r1"  # an HTTP API keeps the stage in the path
    context = event["requestContext"]
    assert context["resourceId"] == "GET /resources/{resource_id}"
    assert context["stage"] == "api" and context["path"] == "/api/resources/r1"
    assert context["requestId"] and context["identity"]["sourceIp"] == "127.0.0.1"
    assert event["headers"]["authorization"] == "Bearer t"  # header names lower-cased
    assert event["queryStringParameters"] == {"limit": "5"}
    assert event["multiValueQueryStringParameters"] == {"limit": ["5"]}
    assert event["pathParameters"] == {"resource_id": "r1"}


def test_the_app_reads_the_local_event_as_chalice_routes_it():
    event = from_http_api_v1(http_api_v1_event(CHALICE_LOCAL))

    assert event["requestContext"]["resourcePath"] == "/resources/{resource_id}"
    assert event["path"] == "/resources/r1"
    assert event["requestContext"]["httpMethod"] == "GET"
    assert event["stageVariables"] is None
