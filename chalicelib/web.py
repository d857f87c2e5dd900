"""The HTTP edge: one way to declare a route, its required role, its request model and its
documentation; parsing and validation of bodies and queries; mapping domain errors to the
error envelope of the API contract.

Every view is registered through `Router.route`, which records a `RouteSpec` on the view.
Tests walk `app.routes` and fail on any route without one, and the OpenAPI document is
generated from the same specs and models.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import msgspec
from chalice import Blueprint, Chalice, Response

from chalicelib.errors import DomainError, Forbidden, Throttled, Unauthenticated, ValidationFailed
from chalicelib.observability import logger

ANYONE = "anyone"
USER = "user"
CREATOR = "creator"
ADMIN = "admin"
ROLES = (ANYONE, USER, CREATOR, ADMIN)

STATUS_BY_KIND = {
    "invalid": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "refused": 422,
    "throttled": 429,
    "provider_unavailable": 502,
    "unavailable": 503,
}

# Chalice's own error bodies ({"Code": ..., "Message": ...}) mapped to stable envelope codes.
_CHALICE_CODES = {
    "BadRequestError": "invalid_request",
    "UnauthorizedError": "unauthenticated",
    "ForbiddenError": "forbidden",
    "NotFoundError": "not_found",
    "MethodNotAllowedError": "method_not_allowed",
    "ConflictError": "conflict",
    "UnprocessableEntityError": "rule_refused",
    "TooManyRequestsError": "too_many_requests",
    "RequestTimeoutError": "timeout",
    "UnsupportedMediaType": "unsupported_media_type",
    "BadRequest": "invalid_request",
    "InternalServerError": "internal_error",
}
_JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Principal:
    user_id: str
    roles: frozenset[str]
    token_id: str


@dataclass(frozen=True)
class Csv:
    """How a route's response flattens to CSV, served for `?format=csv` (the `format` query
    parameter, `json` by default, exists on every route that declares this).

    The rows are the items of the response's list fields named in `rows`, in that order; the
    response's other scalar fields (a report's currency, its `from` and `to`...) repeat first
    on each row, then the item's scalar fields, and with several lists a `section` column
    names the list of each row. Money stays as the JSON has it: integer minor units, with
    the currency in its column. UTF-8 with a BOM (Excel then reads Chinese titles right),
    CRLF line ends, a header row; the file is `<name>-<from>-<to>.csv`, from the response's
    `from` and `to` fields."""

    name: str
    rows: tuple[str, ...] = ("rows",)


FORMATS = ("json", "csv")


@dataclass(frozen=True)
class RouteSpec:
    path: str
    method: str
    role: str
    summary: str
    tags: tuple[str, ...] = ()
    body: type | None = None
    query: type | None = None
    response: Any = None
    status: int = 200
    errors: tuple[int, ...] = ()
    local_only: bool = False
    also: tuple[int, ...] = ()  # other success statuses the view may answer with
    csv: Csv | None = None  # the response also as CSV, with `?format=csv`


@dataclass
class Ctx:
    """What a view may know about its request: already authenticated and validated."""

    principal: Principal | None
    body: Any
    query: Any
    headers: Any
    source_ip: str | None
    request_id: str | None
    raw_body: bytes | None = None

    @property
    def user_id(self) -> str:
        assert self.principal is not None
        return self.principal.user_id

    @property
    def visitor(self) -> str:
        """Who is looking, for unique-visitor counts: the user, or an anonymous key made
        from the address and the browser (hashed: analytics keeps no addresses)."""
        if self.principal is not None:
            return self.principal.user_id
        import hashlib

        agent = self.headers.get("user-agent", "") if self.headers else ""
        seen = f"{self.source_ip or ''}|{agent}".encode()
        return "anon:" + hashlib.blake2b(seen, digest_size=8).hexdigest()


class _LazyModule(ModuleType):
    """A module imported on first attribute access."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            import importlib

            self._module = importlib.import_module(self.__name__)
        return getattr(self._module, attribute)


def lazy(name: str) -> ModuleType:
    """Blueprints reach their services through this, so importing the app (every function's
    cold start, the SQS consumers' too) registers routes without loading PynamoDB models,
    JWT, argon2 or Stripe: each is imported by the first request that needs it.

    A string names no type, so each route module binds the name twice: the real import under
    `if TYPE_CHECKING:` for editors and mypy, `lazy()` in the `else:` branch for run time
    (tests/unit/test_lazy_services.py checks the two name the same module):

        if TYPE_CHECKING:
            from chalicelib.accounts import profiles
        else:
            profiles = lazy("chalicelib.accounts.profiles")
    """
    return _LazyModule(name)


def given(value: Any) -> Any:
    """None for a field the client left out (msgspec.UNSET), else the value."""
    return None if value is msgspec.UNSET else value


def envelope(status: int, code: str, message: str, details: dict | None = None,
             headers: dict | None = None) -> Response:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return Response(body=msgspec.json.encode(body).decode(), status_code=status,
                    headers={**_JSON, **(headers or {})})


def json_response(payload: Any, status: int = 200, headers: dict | None = None) -> Response:
    if payload is None:
        return Response(body="", status_code=status, headers=dict(headers or {}))
    return Response(body=msgspec.json.encode(payload).decode(), status_code=status,
                    headers={**_JSON, **(headers or {})})


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def csv_response(payload: Any, spec: Csv, status: int = 200) -> Response:
    """`payload` flattened as `spec` says (see `Csv`), as a CSV attachment."""
    import csv
    import io

    data = msgspec.to_builtins(payload)
    scalars = {k: v for k, v in data.items()
               if k not in spec.rows and not isinstance(v, (list, dict))}
    columns = (["section"] if len(spec.rows) > 1 else []) + list(scalars)
    records = []
    for section in spec.rows:
        for item in data.get(section) or ():
            flat = {k: v for k, v in item.items() if not isinstance(v, (list, dict))}
            columns += [k for k in flat if k not in columns]
            records.append({"section": section, **scalars, **flat})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record.get(column)) for column in columns])
    filename = f"{spec.name}-{data.get('from', '')}-{data.get('to', '')}.csv"
    return Response(body="\ufeff" + out.getvalue(), status_code=status, headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{filename}"'})


def _format(params: dict[str, Any]) -> str:
    """The `format` query parameter, taken out of `params`."""
    fmt = params.pop("format", "json")
    if fmt not in FORMATS:
        raise ValidationFailed("Invalid query: `format` must be json or csv.",
                               details={"fields": {"format": "json or csv"}})
    return str(fmt)


def error_response(exc: DomainError) -> Response:
    status = STATUS_BY_KIND.get(exc.kind, 400)
    headers: dict[str, str] = {}
    if isinstance(exc, Throttled):
        headers["Retry-After"] = str(exc.retry_after)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="paidres"'
    return envelope(status, exc.code, exc.message, exc.details, headers)


_AT = re.compile(r"at `\$\.?([^`]*)`")
# The last: a rule across a model's items (`__post_init__`) names its field so.
_NAMED = re.compile(r"(?:missing required field|unknown field|in field) `([^`]+)`")


def _validation_error(exc: msgspec.ValidationError, where: str) -> ValidationFailed:
    text = str(exc)
    named = _NAMED.search(text)
    at = _AT.search(text)
    parent = at.group(1) if at else ""
    if named:
        name = f"{parent}.{named.group(1)}" if parent else named.group(1)
    else:
        name = parent or where
    reason = text.split(" - at ")[0]
    return ValidationFailed(f"Invalid {where}: {reason}.", details={"fields": {name: reason}})


def decode_body(raw: bytes | None, model: type) -> Any:
    """Decode a JSON body into `model` (unknown fields refused) or raise a domain error."""
    if not raw:
        raise ValidationFailed("A JSON body is required.", code="body_required",
                               details={"fields": {"body": "required"}})
    try:
        return msgspec.json.decode(raw, type=model)
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError as exc:
        raise ValidationFailed("The body is not valid JSON.", code="invalid_json",
                               details={"reason": str(exc)}) from None
    # JSON has one number type: `2500.0` is the integer 2500 to JSON Schema, so to the API
    # too. Only a refused body pays for this second pass, which reports what is wrong.
    try:
        return msgspec.convert(_integral(msgspec.json.decode(raw)), type=model)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc, "body") from None


def _integral(value: Any) -> Any:
    """`value` with every float that has no fractional part as an int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(item) for item in value]
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    return value


def decode_query(params: Mapping[str, Any] | None, model: type) -> Any:
    try:
        return msgspec.convert(dict(params or {}), type=model, strict=False)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc, "query") from None


def authenticate(headers: Any) -> Principal:
    """The principal of a `Authorization: Bearer <jwt>` header, or Unauthenticated."""
    header = headers.get("authorization") if headers else None
    if not header:
        raise Unauthenticated()
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Use 'Authorization: Bearer <access token>'.", code="invalid_token")
    from chalicelib.accounts import sessions, tokens

    claims = tokens.verify_access_token(token.strip())
    # The roles the user has now, not those the token was issued with: revocation at once.
    roles = sessions.current_roles(claims["sub"], claims["epoch"])
    return Principal(user_id=claims["sub"], roles=roles, token_id=claims["jti"])


def _authorise(role: str, headers: Any) -> Principal | None:
    if role == ANYONE:
        return None
    principal = authenticate(headers)
    if role != USER and role not in principal.roles:
        raise Forbidden(f"This needs the {role} role.")
    return principal


class Router:
    """Registers views on a Chalice blueprint, each with its declared policy and models."""

    def __init__(self, blueprint: Blueprint, *, local_only: bool = False) -> None:
        self.blueprint = blueprint
        self.local_only = local_only

    def route(self, path: str, method: str, *, role: str, summary: str,
              tags: tuple[str, ...] = (), body: type | None = None, query: type | None = None,
              response: Any = None, status: int = 200, errors: tuple[int, ...] = (),
              also: tuple[int, ...] = (), content_types: list[str] | None = None,
              csv: Csv | None = None) -> Callable:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        spec = RouteSpec(path=path, method=method.upper(), role=role, summary=summary,
                         tags=tags, body=body, query=query, response=response, status=status,
                         errors=errors, local_only=self.local_only, also=also, csv=csv)
        bp = self.blueprint

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(fn)
            def view(**path_params: str) -> Response:
                request = bp.current_request
                try:
                    # Chalice annotates raw_body `str | bytes`; it always builds bytes.
                    raw = request.raw_body
                    raw_body = raw.encode() if isinstance(raw, str) else raw
                    principal = _authorise(spec.role, request.headers)
                    params = dict(request.query_params or {})
                    fmt = _format(params) if spec.csv else "json"
                    ctx = Ctx(
                        principal=principal,
                        body=decode_body(raw_body, spec.body) if spec.body else None,
                        query=decode_query(params, spec.query) if spec.query else None,
                        headers=request.headers,
                        source_ip=(request.context.get("identity") or {}).get("sourceIp"),
                        request_id=request.context.get("requestId"),
                        raw_body=raw_body,
                    )
                    result = fn(ctx, **path_params)
                except DomainError as exc:
                    logger.info("request refused", extra={"code": exc.code, "path": spec.path})
                    return error_response(exc)
                except Exception:
                    logger.exception("unhandled error", extra={"path": spec.path})
                    raise
                if isinstance(result, Response):
                    return result
                if fmt == "csv" and spec.csv is not None:
                    return csv_response(result, spec.csv, spec.status)
                return json_response(result, spec.status)

            view.route_spec = spec  # type: ignore[attr-defined]
            bp.route(path, methods=[spec.method], cors=True,
                     content_types=content_types or ["application/json"])(view)
            return view

        return decorate


def _is_envelope(body: Any) -> bool:
    if isinstance(body, (str, bytes)):
        try:
            body = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return False
    return isinstance(body, dict) and isinstance(body.get("error"), dict)


def envelope_middleware(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """Rewrites Chalice's own error responses (405, 415, malformed bodies, crashes) into the
    envelope, so no error anywhere leaves in another shape. The analytics events the request
    tracked leave with one SendMessage once its response is made."""
    from chalicelib.analytics import events

    token = events.begin()
    try:
        response = get_response(event)
    finally:
        events.flush(token)
    if response.status_code < 400 or _is_envelope(response.body):
        return response
    body = response.body
    if isinstance(body, (str, bytes)):
        try:
            body = msgspec.json.decode(body)
        except msgspec.DecodeError:
            body = {}
    chalice_code = body.get("Code") if isinstance(body, dict) else None
    status = response.status_code
    code = _CHALICE_CODES.get(chalice_code or "", "internal_error" if status >= 500 else
                              "invalid_request")
    message = (body.get("Message") if isinstance(body, dict) else None) or "Request failed."
    if status >= 500:
        message = "An internal error occurred."
    keep = {k: v for k, v in response.headers.items() if k.lower() in {"allow", "retry-after"}}
    return envelope(status, code, message, headers=keep)


# ------------------------------------------------------------------ API Gateway HTTP API

def from_http_api_v1(event: Any) -> Any:
    """An API Gateway HTTP API event (payload format 1.0) in the shape Chalice routes by.

    Payload 1.0 is the REST API's proxy event, with these differences Chalice would trip on:
    the route template Chalice looks views up by (`requestContext.resourcePath`) is, to be
    certain, taken from the route that matched (`requestContext.routeKey` or `resourceId`,
    "GET /resources/{resource_id}", else `resource`); the top-level `path` of a named stage
    starts with the stage ("/api/health"), which the REST API strips; and fields the REST
    API always sends (stageVariables, pathParameters, the multi-value maps) may be missing.
    Any other event is returned as it is.
    """
    if not isinstance(event, dict) or event.get("version") != "1.0" \
            or "requestContext" not in event:
        return event
    context = event["requestContext"]
    template = None
    for route_key in (context.get("routeKey"), context.get("resourceId")):
        if isinstance(route_key, str) and " /" in route_key:
            template = route_key.split(" ", 1)[1]
            break
    if template is None and str(event.get("resource", "")).startswith("/"):
        template = event["resource"]
    if template is not None:
        context["resourcePath"] = event["resource"] = template
    stage = context.get("stage")
    path = event.get("path") or ""
    if stage and stage != "$default" and (path == f"/{stage}" or path.startswith(f"/{stage}/")):
        event["path"] = path[len(stage) + 1:] or "/"
    context.setdefault("httpMethod", event.get("httpMethod"))
    for field in ("stageVariables", "pathParameters", "multiValueQueryStringParameters",
                  "queryStringParameters", "body"):
        event.setdefault(field, None)
    event.setdefault("headers", {})
    event["headers"] = event["headers"] or {}
    return event


class HttpApiChalice(Chalice):
    """Chalice served by an API Gateway HTTP API with payload format 1.0 (infra/package.py
    deploys one in place of Chalice's REST API): each request event is brought to the shape
    Chalice routes by (`from_http_api_v1`) before Chalice sees it."""

    def __call__(self, event: Any, context: Any) -> Any:
        event = from_http_api_v1(event)
        if isinstance(event, dict) and event.get("version") == "1.0" and \
                event["requestContext"].get("resourcePath") not in self.routes:
            # The HTTP API's `$default` route: no route of the app matched. API Gateway's
            # own answer would be {"message": "Not Found"}, outside the error envelope.
            return envelope(404, "not_found", "No route matches this path.").to_dict(
                self.api.binary_types)
        return super().__call__(event, context)
