"""The HTTP surface against its declarations: every route has a declared policy, the policy
is enforced, docs/openapi.yaml is exactly what the code generates, and the routes of the
public contract (../shared/API.md) that exist are served with the contract's methods."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "docs" / "openapi.yaml"
CONTRACT = ROOT.parent / "shared" / "API.md"
HTTP_METHODS = {"GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS"}

# Contract routes built so far; each must be served and documented.
IMPLEMENTED = {
    ("GET", "/health"),
    ("POST", "/auth/register"),
    ("POST", "/auth/login"),
    ("POST", "/auth/refresh"),
    ("POST", "/auth/logout"),
    ("POST", "/auth/password/forgot"),
    ("POST", "/auth/password/reset"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/me"),
    ("PATCH", "/me"),
    ("POST", "/me/creator"),
    ("GET", "/me/points"),
}


@pytest.fixture(scope="module")
def app():
    from app import app as chalice_app

    return chalice_app


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))


def served_routes(app) -> dict[tuple[str, str], object]:
    """(METHOD, path) → view function of every route the app serves."""
    return {(method.upper(), path): entry.view_function
            for path, methods in app.routes.items() for method, entry in methods.items()}


def spec_routes(spec: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops
            if method.upper() in HTTP_METHODS}


def shape(path: str) -> str:
    """A path with its parameter names blanked: /x/{id} and /x/{user_id} are one route."""
    return re.sub(r"{[^}/]+}", "{}", path)


def contract_routes(markdown: str) -> set[tuple[str, str]]:
    """(METHOD, path) of every row of the contract's route table.

    `GET /me · PATCH /me` is two routes, `GET/PATCH /x` two methods, and a bare `/reject`
    after `POST /admin/resources/{id}/approve` replaces the last segment, same method.
    """
    routes: set[tuple[str, str]] = set()
    for line in markdown.splitlines():
        if not line.startswith("|"):
            continue
        cell = line.strip("|").split("|")[0].strip()
        methods: list[str] = []
        path = ""
        for alternative in cell.split("·"):
            alternative = alternative.strip()
            head, _, rest = alternative.partition(" ")
            if rest.strip().startswith("/") and set(head.split("/")) <= HTTP_METHODS:
                methods, path = head.split("/"), rest.strip()
            elif alternative.startswith("/") and methods:
                path = path.rsplit("/", 1)[0] + alternative
            else:
                break  # the header, the separator, or not a route row
            path = path.split("?")[0].strip()
            routes |= {(method, path) for method in methods}
    return routes


def filled(path: str) -> str:
    return re.sub(r"{[^}/]+}", "00000000000000000000000000000000", path)


def call(client, method: str, path: str, token: str | None = None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = b"{}" if method in {"POST", "PUT", "PATCH"} else b""
    return client.http.request(method, filled(path), headers=headers, body=body)


# ---------------------------------------------------------------- declared policies

def test_every_route_declares_its_policy_through_router_route(app):
    from chalicelib.web import ROLES

    offenders = []
    for (method, path), view in sorted(served_routes(app).items()):
        spec = getattr(view, "route_spec", None)
        if spec is None:
            offenders.append(f"{method} {path}: no route_spec (not registered via Router.route)")
        elif spec.role not in ROLES:
            offenders.append(f"{method} {path}: role {spec.role!r} is not one of {ROLES}")
        elif (spec.method, spec.path) != (method, path):
            offenders.append(f"{method} {path}: route_spec says {spec.method} {spec.path}")
        elif not spec.summary.strip():
            offenders.append(f"{method} {path}: no summary")
    assert not offenders, "routes without a declared policy:\n" + "\n".join(offenders)


def test_every_protected_route_refuses_an_anonymous_request_with_401(app, client):
    protected = sorted((method, path) for (method, path), view in served_routes(app).items()
                       if view.route_spec.role != "anyone")
    assert protected
    wrong = []
    for method, path in protected:
        response = call(client, method, path)
        body = json.loads(response.body or b"{}")
        if response.status_code != 401 or not isinstance(body.get("error"), dict):
            wrong.append(f"{method} {path}: {response.status_code} {response.body[:120]!r}")
        elif "WWW-Authenticate" not in response.headers:
            wrong.append(f"{method} {path}: 401 without WWW-Authenticate")
    assert not wrong, "protected routes that did not refuse an anonymous caller:\n" + \
        "\n".join(wrong)


def test_creator_and_admin_routes_refuse_a_buyer_with_403(app, client):
    elevated = sorted((method, path) for (method, path), view in served_routes(app).items()
                      if view.route_spec.role in {"creator", "admin"})
    assert elevated, "the app serves admin routes, so this list cannot be empty"
    password = "contract-check-Passw0rd!"
    registered = client.http.post("/auth/register", headers={"Content-Type": "application/json"},
                                  body=json.dumps({"email": "buyer@example.com",
                                                   "password": password,
                                                   "display_name": "Buyer"}).encode())
    assert registered.status_code == 201, registered.body
    login = client.http.post("/auth/login", headers={"Content-Type": "application/json"},
                             body=json.dumps({"email": "buyer@example.com",
                                              "password": password}).encode())
    assert login.status_code == 200, login.body
    token = json.loads(login.body)["access_token"]
    wrong = []
    for method, path in elevated:
        response = call(client, method, path, token)
        body = json.loads(response.body or b"{}")
        if response.status_code != 403 or body.get("error", {}).get("code") != "forbidden":
            wrong.append(f"{method} {path}: {response.status_code} {response.body[:120]!r}")
    assert not wrong, "elevated routes that let a buyer through:\n" + "\n".join(wrong)


# ---------------------------------------------------------------- docs/openapi.yaml

def test_openapi_names_exactly_the_routes_the_app_serves(app, spec):
    served = set(served_routes(app))
    documented = spec_routes(spec)
    missing = sorted(served - documented)
    extra = sorted(documented - served)
    assert not missing and not extra, (
        f"served but not in docs/openapi.yaml: {missing}\n"
        f"in docs/openapi.yaml but not served: {extra}\nrun `make openapi`")


def test_openapi_yaml_is_what_the_generator_produces_now(app, spec):
    from chalicelib import apispec

    fresh = yaml.safe_load(apispec.render(apispec.build(app)))
    if fresh != spec:
        changed = sorted(
            f"{m.upper()} {p}" for p in set(fresh["paths"]) | set(spec["paths"])
            for m in set(fresh["paths"].get(p, {})) | set(spec["paths"].get(p, {}))
            if fresh["paths"].get(p, {}).get(m) != spec["paths"].get(p, {}).get(m))
        pytest.fail("docs/openapi.yaml is out of date with the routes and models; run "
                    f"`make openapi` and commit the result (operations that differ: {changed}; "
                    "other sections may differ too)")


def test_openapi_declares_the_role_and_security_of_every_operation(spec):
    from chalicelib.web import ROLES

    wrong = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            role = op.get("x-required-role")
            secured = op.get("security") == [{"bearerAuth": []}]
            if role not in ROLES or secured != (role != "anyone"):
                wrong.append(f"{method.upper()} {path}: role {role!r}, security "
                             f"{op.get('security')!r}")
            if role != "anyone" and not {"401", "403"} <= set(op["responses"]):
                wrong.append(f"{method.upper()} {path}: 401/403 not documented")
    assert not wrong, "\n".join(wrong)


def test_openapi_errors_use_the_envelope_and_bodies_refuse_unknown_fields(spec):
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    schemas = spec["components"]["schemas"]
    wrong = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            for status, response in op["responses"].items():
                if int(status) >= 400 and \
                        response["content"]["application/json"]["schema"] != envelope:
                    wrong.append(f"{where} {status}: not the error envelope")
            if "requestBody" in op:
                ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                if schemas[ref.rsplit("/", 1)[-1]].get("additionalProperties") is not False:
                    wrong.append(f"{where}: request body accepts unknown fields")
                if "400" not in op["responses"]:
                    wrong.append(f"{where}: takes a body but documents no 400")
    error = schemas["ErrorBody"]
    assert set(error["required"]) == {"code", "message", "details"}
    assert not wrong, "\n".join(wrong)


def test_local_only_routes_are_marked_in_the_spec(app, spec):
    for (method, path), view in served_routes(app).items():
        op = spec["paths"][path][method.lower()]
        assert op.get("x-local-only", False) is view.route_spec.local_only, f"{method} {path}"
        assert path.startswith("/_local/") == view.route_spec.local_only, f"{method} {path}"


# ---------------------------------------------------------------- the public contract

@pytest.fixture(scope="module")
def contract() -> set[tuple[str, str]]:
    # CI lays shared/ beside the clone, as it is for every session: its absence is a fault.
    assert CONTRACT.exists(), f"the public contract is not at {CONTRACT}"
    routes = contract_routes(CONTRACT.read_text(encoding="utf-8"))
    # The parser must keep understanding the table, or the checks below prove nothing.
    assert len(routes) >= 35, sorted(routes)
    assert {("POST", "/admin/resources/{id}/approve"), ("POST", "/admin/resources/{id}/reject"),
            ("GET", "/creator/resources/{id}"), ("PATCH", "/creator/resources/{id}"),
            ("GET", "/search"), ("POST", "/me/membership/cancel")} <= routes
    return routes


def test_contract_routes_the_app_serves_are_in_the_spec_with_the_same_method(contract, spec):
    documented = {(method, shape(path)) for method, path in spec_routes(spec)}
    documented_paths = {shape(path) for path in spec["paths"]}
    wrong = sorted(f"{method} {path}" for method, path in contract
                   if shape(path) in documented_paths and (method, shape(path)) not in documented)
    assert not wrong, ("contract routes whose path is served but not with the contract's "
                       f"method: {wrong}")


def test_contract_routes_built_so_far_are_served_and_documented(contract, app, spec):
    assert IMPLEMENTED <= contract, sorted(IMPLEMENTED - contract)
    assert IMPLEMENTED <= set(served_routes(app)), sorted(IMPLEMENTED - set(served_routes(app)))
    assert IMPLEMENTED <= spec_routes(spec), sorted(IMPLEMENTED - spec_routes(spec))


def test_contract_table_parser_reads_alternatives_and_shorthand():
    table = ("| method & path | who | what |\n|---|---|---|\n"
             "| GET /me · PATCH /me | user | x |\n"
             "| GET /a · GET/PATCH /a/{id} | creator | x |\n"
             "| POST /r/{id}/approve · /reject | admin | x |\n"
             "| GET /search?q= | anyone | x |\n")
    assert contract_routes(table) == {
        ("GET", "/me"), ("PATCH", "/me"), ("GET", "/a"), ("GET", "/a/{id}"),
        ("PATCH", "/a/{id}"), ("POST", "/r/{id}/approve"), ("POST", "/r/{id}/reject"),
        ("GET", "/search")}
