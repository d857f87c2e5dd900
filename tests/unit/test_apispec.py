"""The OpenAPI generator on a small app of its own: what each part of a RouteSpec becomes."""
from __future__ import annotations

import inspect
from typing import Annotated

import msgspec
import pytest
import yaml
from chalice import Blueprint, Chalice

from chalicelib import apispec
from chalicelib.web import ADMIN, ANYONE, USER, Router


class ThingIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1)]


class ThingQuery(msgspec.Struct):
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20
    cursor: str | None = None


class Thing(msgspec.Struct):
    id: str
    name: str


class Things(msgspec.Struct):
    items: list[Thing]
    next_cursor: str | None


class Gadget(msgspec.Struct):
    """A thing with parts: the first line,
        and an indented continuation, as a docstring wraps."""

    part: Thing | None


def make_app(*, duplicate: bool = False) -> Chalice:
    app = Chalice(app_name="spec-test")
    bp = Blueprint("spec_test_things")
    api = Router(bp)
    local_bp = Blueprint("spec_test_local")
    local = Router(local_bp, local_only=True)

    @api.route("/things", "GET", role=ANYONE, tags=("things",), query=ThingQuery,
               response=Things, summary="List things")
    def list_things(ctx):
        """Newest first."""

    @api.route("/things", "POST", role=ADMIN, tags=("things",), body=ThingIn, response=Thing,
               status=201, errors=(409,), summary="Make a thing")
    def make_thing(ctx):
        pass

    @api.route("/things/{thing_id}", "DELETE", role=USER, status=204, errors=(404,),
               summary="Drop a thing")
    def drop_thing(ctx, thing_id):
        pass

    @api.route("/things/{thing_id}/poke", "POST", role=ANYONE, status=202, errors=(429,),
               summary="Poke a thing")
    def poke_thing(ctx, thing_id):
        pass

    @local.route("/_local/keys", "GET", role=ANYONE, response="Jwks", summary="Keys")
    def local_keys(ctx):
        pass

    @api.route("/gadgets/{gadget_id}", "GET", role=ANYONE, tags=("things",), response=Gadget,
               summary="One gadget")
    def gadget(ctx, gadget_id):
        """One gadget,
            whatever its parts."""

    if duplicate:
        @api.route("/other", "GET", role=ANYONE, summary="Same name")
        def list_things(ctx):  # noqa: F811
            pass

    app.register_blueprint(bp)
    app.register_blueprint(local_bp)
    return app


@pytest.fixture(scope="module")
def doc() -> dict:
    return apispec.build(make_app())


def refs(value) -> set[str]:
    if isinstance(value, dict):
        found = {value["$ref"]} if isinstance(value.get("$ref"), str) else set()
        return found.union(*(refs(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(refs(v) for v in value))
    return set()


def test_document_has_info_servers_and_bearer_scheme(doc):
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["version"] == apispec.VERSION
    for word in ("ErrorEnvelope", "Money", "cursor"):
        assert word in doc["info"]["description"]
    assert doc["servers"][0]["url"] == "http://127.0.0.1:8000"
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "Access token from /auth/login or /auth/refresh"}
    assert [t["name"] for t in doc["tags"]] == ["things"]


def test_query_model_fields_become_query_parameters_without_null(doc):
    op = doc["paths"]["/things"]["get"]
    assert op["operationId"] == "list_things"
    assert op["description"] == "Newest first."
    assert op["x-required-role"] == "anyone"
    assert "security" not in op
    assert op["parameters"] == [
        {"name": "limit", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
        {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}},
    ]
    assert set(op["responses"]) == {"200", "400"}
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Things"}
    # The query model is inlined as parameters, not left as an orphan schema.
    assert "ThingQuery" not in doc["components"]["schemas"]


def test_body_role_and_declared_errors_shape_the_operation(doc):
    op = doc["paths"]["/things"]["post"]
    assert op["security"] == [{"bearerAuth": []}]
    assert op["x-required-role"] == "admin"
    assert op["requestBody"] == {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/ThingIn"}}}}
    assert set(op["responses"]) == {"201", "400", "401", "403", "409"}
    assert doc["components"]["schemas"]["ThingIn"]["additionalProperties"] is False
    for status in ("400", "401", "403", "409"):
        assert op["responses"][status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorEnvelope"}
    assert "WWW-Authenticate" in op["responses"]["401"]["headers"]


def test_path_parameters_204_and_202(doc):
    drop = doc["paths"]["/things/{thing_id}"]["delete"]
    assert drop["parameters"] == [{"name": "thing_id", "in": "path", "required": True,
                                   "schema": {"type": "string"}}]
    assert drop["responses"]["204"] == {"description": "No content"}
    assert set(drop["responses"]) == {"204", "401", "403", "404"}
    poke = doc["paths"]["/things/{thing_id}/poke"]["post"]
    assert poke["responses"]["202"]["content"]["application/json"]["schema"]["type"] == "object"
    assert set(poke["responses"]) == {"202", "429"}
    assert "Retry-After" in poke["responses"]["429"]["headers"]


def test_local_only_and_named_response_model(doc):
    op = doc["paths"]["/_local/keys"]["get"]
    assert op["x-local-only"] is True
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Jwks"}
    assert "x-local-only" not in doc["paths"]["/things"]["get"]


def test_every_ref_resolves_and_error_envelope_is_shared(doc):
    schemas = doc["components"]["schemas"]
    names = {r.rsplit("/", 1)[-1] for r in refs(doc)}
    assert names <= set(schemas), names - set(schemas)
    assert {"ErrorEnvelope", "ErrorBody", "Jwks", "Jwk", "Thing", "Things"} <= set(schemas)
    body = schemas["ErrorBody"]
    assert body["properties"] == {"code": {"type": "string"}, "message": {"type": "string"},
                                  "details": {"type": "object"}}


def test_descriptions_and_nullable_refs_have_one_form_whatever_the_msgspec_release(doc):
    # msgspec 0.23 dedents docstrings and puts null last; 0.18 did neither.
    schema = doc["components"]["schemas"]["Gadget"]
    assert schema["description"] == inspect.cleandoc(Gadget.__doc__)
    assert "\n    " not in schema["description"]
    assert schema["properties"]["part"]["anyOf"] == [
        {"$ref": "#/components/schemas/Thing"}, {"type": "null"}]
    assert doc["paths"]["/gadgets/{gadget_id}"]["get"]["description"] == \
        "One gadget,\nwhatever its parts."


def test_render_is_deterministic_yaml_of_the_document(doc):
    text = apispec.render(doc)
    assert text == apispec.render(apispec.build(make_app()))
    assert yaml.safe_load(text) == doc


def test_duplicate_operation_ids_are_refused():
    with pytest.raises(ValueError, match="operationId 'list_things'"):
        apispec.build(make_app(duplicate=True))


def test_a_route_without_a_spec_is_refused():
    app = Chalice(app_name="bare")

    @app.route("/bare")
    def bare():
        return {}

    with pytest.raises(ValueError, match="no route_spec"):
        apispec.build(app)
