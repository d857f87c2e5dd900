"""The OpenAPI 3.1 document of the API, generated from the app itself.

Every view is registered through `chalicelib.web.Router.route`, which records a `RouteSpec`
(path, method, role, summary, tags, body/query/response models, statuses) on the view. This
module walks `app.routes`, reads those specs, and turns the msgspec models the routes decode
and encode with into component schemas, so the document cannot drift from the code
(`tests/integration/test_contract.py` compares docs/openapi.yaml with a fresh run).

    python -m devstack.openapi              # prints the YAML; `make openapi` writes it
                                            # to docs/openapi.yaml

The command line imports the app in the `local` stage environment and never calls AWS.
"""
from __future__ import annotations

import inspect
import re
from typing import Any

import msgspec
import yaml

from chalicelib.config import VERSION
from chalicelib.web import ANYONE, RouteSpec

REF = "#/components/schemas/{name}"
ERROR_SCHEMA = "ErrorEnvelope"
METHOD_ORDER = ("GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS")
PATH_PARAM = re.compile(r"{([^}/]+)}")

DESCRIPTION = """\
The HTTP API of the paid-resources platform: creators upload resources, admins review them,
buyers pay and download. This document is generated from the routes and the models they
decode with (`make openapi`); do not edit it by hand.

Conventions:

- JSON in and out, UTF-8, `snake_case` fields, timestamps as ISO 8601 UTC strings.
- Authentication: `Authorization: Bearer <access_token>` (an EdDSA JWT; keys at
  `/.well-known/jwks.json`). `x-required-role` names the role an operation needs:
  `anyone` (no token), `user` (any signed-in user, role `buyer`), `creator` or `admin`.
- Errors: every non-2xx response has the body
  `{"error": {"code": "<stable_snake_case_code>", "message": "<human text>",
  "details": {...}}}` (schema `ErrorEnvelope`). 400 invalid input (details name the
  fields), 401 not authenticated, 403 not allowed, 404 not found (also for objects owned by
  someone else), 409 conflict or wrong state, 413 too large, 422 business rule refused,
  429 throttled (with `Retry-After`).
- Request bodies are closed (`additionalProperties: false`): an unknown field is a 400.
- Money is always `{"amount": <integer minor units>, "currency": "cny" | "usd" | ...}`,
  never a float.
- Lists are `{"items": [...], "next_cursor": "<opaque>" | null}` with `?limit=` (1..100,
  default 20) and `?cursor=`. A cursor is opaque and tamper-proof: pass `next_cursor` back
  unchanged; an edited or foreign cursor is refused with 400 `invalid_cursor`.
- Reports also come as CSV: `?format=csv` (`json` by default) answers `text/csv;
  charset=utf-8`, UTF-8 with a BOM, a header row and a row per period or item, money in
  integer minor units with the currency in its column, as an attachment named
  `<report>-<from>-<to>.csv`.
- Operations marked `x-local-only: true` exist only in local mode (`make run`), never on AWS.
"""

TAG_DESCRIPTIONS = {
    "system": "Health and service metadata",
    "auth": "Registration, sessions, password reset and token-signing keys",
    "me": "The signed-in user's own account",
    "admin": "Administration (role admin)",
    "local": "Local mode only: helpers of the embedded stack, absent on AWS",
}

ERROR_DESCRIPTIONS = {
    400: "Invalid input; `details.fields` names the offending fields",
    401: "Not authenticated: missing, malformed, expired or revoked credentials",
    403: "Authenticated but not allowed",
    404: "Not found (also for objects that belong to someone else)",
    409: "Conflict or wrong state",
    413: "Too large",
    422: "Refused by a business rule",
    429: "Throttled; retry after `Retry-After` seconds",
}

SUCCESS_DESCRIPTIONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No content",
}


class ErrorBody(msgspec.Struct):
    """What went wrong: a stable code for programs, a message for people."""

    code: str
    message: str
    details: dict[str, Any]


class ErrorEnvelope(msgspec.Struct):
    """The body of every non-2xx response."""

    error: ErrorBody


def _response_model(response: Any) -> type | None:
    """The msgspec model of a route's success body (`"Jwks"` names the accounts model the
    JWKS view encodes by hand)."""
    if response is None:
        return None
    if isinstance(response, str):
        from chalicelib.accounts import schemas

        model = getattr(schemas, response, None)
        if model is None:
            raise ValueError(f"unknown response model name {response!r}")
        return model
    return response


def _routes(app: Any) -> list[tuple[str, str, Any, RouteSpec]]:
    """(path, method, view function, spec) of every route, in path then method order."""
    found = []
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            view = entry.view_function
            spec = getattr(view, "route_spec", None)
            if spec is None:
                raise ValueError(f"{method} {path}: view {view.__name__} has no route_spec; "
                                 "register it with chalicelib.web.Router.route")
            found.append((path, method.upper(), view, spec))
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    return sorted(found, key=lambda r: (r[0], order.get(r[1], len(order)), r[1]))


def _without_null(schema: dict) -> dict:
    """A query field's schema without the `null` alternative (an absent parameter is how a
    client says none)."""
    schema = dict(schema)
    options = schema.get("anyOf")
    if options and {"type": "null"} in options:
        rest = [s for s in options if s != {"type": "null"}]
        del schema["anyOf"]
        if len(rest) == 1:
            schema = {**rest[0], **schema}
        else:
            schema["anyOf"] = rest
    if schema.get("default", 0) is None:
        del schema["default"]
    return schema


def _query_parameters(model: type, components: dict) -> list[dict]:
    component = components[model.__name__]
    required = set(component.get("required", []))
    params = []
    for name, schema in component.get("properties", {}).items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                 "schema": _without_null(schema)}
        if "description" in schema:
            param["description"] = schema["description"]
        params.append(param)
    return params


FORMAT_PARAMETER = {
    "name": "format", "in": "query", "required": False,
    "description": "`csv`: the response as a CSV file (text/csv) instead of JSON",
    "schema": {"type": "string", "enum": ["json", "csv"], "default": "json"}}


def _csv_description(csv: Any) -> str:
    lists = ", ".join(f"`{name}`" for name in csv.rows)
    section = " (a `section` column names the list)" if len(csv.rows) > 1 else ""
    return (f"With `format=csv`: UTF-8 with a BOM, a header row, a row per item of {lists}"
            f"{section}; the report's other fields repeat on each row. Money in integer "
            "minor units, the currency in its column.")


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def _error_response(status: int) -> dict:
    response: dict[str, Any] = {
        "description": ERROR_DESCRIPTIONS.get(status, "Error"),
        "content": _json({"$ref": REF.format(name=ERROR_SCHEMA)}),
    }
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {
            "description": "Bearer challenge", "schema": {"type": "string"}}}
    if status == 429:
        response["headers"] = {"Retry-After": {
            "description": "Seconds to wait before trying again",
            "schema": {"type": "integer", "minimum": 0}}}
    return response


def _operation(path: str, view: Any, spec: RouteSpec, components: dict) -> dict:
    op: dict[str, Any] = {
        "operationId": view.__name__,
        "summary": spec.summary,
    }
    if view.__doc__ and view.__doc__.strip():
        op["description"] = view.__doc__
    if spec.tags:
        op["tags"] = list(spec.tags)
    params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
              for name in PATH_PARAM.findall(path)]
    if spec.query is not None:
        params += _query_parameters(spec.query, components)
    if spec.csv is not None:
        params.append(FORMAT_PARAMETER)
    if params:
        op["parameters"] = params
    if spec.body is not None:
        op["requestBody"] = {"required": True,
                             "content": _json({"$ref": REF.format(name=spec.body.__name__)})}
    if spec.role != ANYONE:
        op["security"] = [{"bearerAuth": []}]

    responses: dict[str, Any] = {}
    model = _response_model(spec.response)
    for status in (spec.status, *spec.also):
        success: dict[str, Any] = {"description": SUCCESS_DESCRIPTIONS.get(status, "Success")}
        if status != 204:
            if model is not None:
                success["content"] = _json({"$ref": REF.format(name=model.__name__)})
                if spec.csv is not None and status == spec.status:
                    success["content"]["text/csv"] = {"schema": {
                        "type": "string", "description": _csv_description(spec.csv)}}
                    success["headers"] = {"Content-Disposition": {
                        "description": "With `format=csv`: "
                                       f'`attachment; filename="{spec.csv.name}-<from>-<to>.csv"`',
                        "schema": {"type": "string"}}}
            elif status == 202:
                success["content"] = _json({"type": "object", "description": "Acknowledgement"})
        responses[str(status)] = success
    errors = set(spec.errors)
    if spec.body is not None or spec.query is not None or spec.csv is not None:
        errors.add(400)
    if spec.role != ANYONE:
        errors |= {401, 403}
    for status in sorted(errors):
        responses[str(status)] = _error_response(status)
    op["responses"] = responses

    op["x-required-role"] = spec.role
    if spec.local_only:
        op["x-local-only"] = True
    return op


def _refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = set()
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                found.add(item.rsplit("/", 1)[-1])
            else:
                found |= _refs(item)
        return found
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value)) if value else set()
    return set()


def _reachable(roots: set[str], schemas: dict) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_refs(schemas[name]) - seen)
    return seen


NULL = {"type": "null"}


def _canonical(node: Any) -> Any:
    """`node` in one form under every msgspec release the requirements allow: descriptions
    normalised by `inspect.cleandoc` (they come from docstrings, and msgspec 0.23 cleans them
    where earlier releases kept their indentation), and `null` last among `anyOf` alternatives
    (0.18 puts it before a `$ref`)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                value = inspect.cleandoc(value)
            elif key == "anyOf" and isinstance(value, list):
                value = [item for item in value if item != NULL] + \
                        [item for item in value if item == NULL]
            out[key] = _canonical(value)
        return out
    if isinstance(node, list):
        return [_canonical(item) for item in node]
    return node


def build(app: Any) -> dict:
    """The OpenAPI document (a plain dict) of every route `app` serves."""
    routes = _routes(app)
    models: list[type] = [ErrorEnvelope]
    for _, _, _, spec in routes:
        for model in (spec.body, spec.query, _response_model(spec.response)):
            if model is not None and model not in models:
                models.append(model)
    _, components = msgspec.json.schema_components(models, ref_template=REF)
    for model in models:
        # Rules across fields (if/then) that msgspec cannot derive from the annotations.
        extra = getattr(model, "json_schema_extra", None)
        if extra:
            components[model.__name__].update(extra)

    paths: dict[str, dict] = {}
    operation_ids: dict[str, str] = {}
    for path, method, view, spec in routes:
        op = _operation(path, view, spec, components)
        where = f"{method} {path}"
        if op["operationId"] in operation_ids:
            raise ValueError(f"operationId {op['operationId']!r} of {where} is also that of "
                             f"{operation_ids[op['operationId']]}; rename a view function")
        operation_ids[op["operationId"]] = where
        paths.setdefault(path, {})[method.lower()] = op

    # Query models become parameters; keep only the schemas something references.
    used = _reachable(_refs(paths) | {ERROR_SCHEMA}, components)
    schemas = {name: components[name] for name in sorted(used)}
    tags = sorted({tag for _, _, _, spec in routes for tag in spec.tags})

    return _canonical({
        "openapi": "3.1.0",
        "info": {
            "title": "Paid-resources platform API",
            "version": VERSION,
            "description": DESCRIPTION,
        },
        "servers": [{"url": "http://127.0.0.1:8000", "description": "Local stack (make run)"}],
        "tags": [{"name": t, **({"description": TAG_DESCRIPTIONS[t]}
                                if t in TAG_DESCRIPTIONS else {})} for t in tags],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "Access token from /auth/login or /auth/refresh"}},
            "schemas": schemas,
        },
    })


class _Dumper(yaml.SafeDumper):
    """Block-style YAML; multi-line strings as literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(document: dict) -> str:
    """The YAML text of `document`: key order as built, so the output is deterministic."""
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=100)
