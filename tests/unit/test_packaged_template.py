"""The template `make package` produces: Chalice's output merged with infra/app-merge.yaml."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.provision import load_template

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("package") / "dev"
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    subprocess.run([sys.executable, "infra/package.py", "dev", str(out)], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=600)
    return {"path": out / "sam.yaml", "template": load_template(out / "sam.yaml"),
            "zip": out / "deployment.zip"}


def test_the_package_never_carries_local_only_routes(packaged):
    text = packaged["path"].read_text()
    assert "/_local/" not in text


def test_the_zip_has_the_app_without_what_the_lambda_runtime_provides(packaged):
    import zipfile

    names = zipfile.ZipFile(packaged["zip"]).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert {"app.py", "chalicelib", "pynamodb", "msgspec", "jwt", "stripe"} <= tops
    assert not {"boto3", "botocore", "s3transfer"} & tops


def test_the_zip_ships_no_local_stack_stripe_stand_in_or_local_routes(packaged):
    import zipfile

    # Given the zip `make package` builds
    package = zipfile.ZipFile(packaged["zip"])
    names = package.namelist()
    # Then nothing of the local stack is in it: no devstack package, no stand-in or its
    # fixtures, no /_local blueprint, wherever they might sit
    assert not [n for n in names if n.split("/", 1)[0] == "devstack"
                or n.startswith(("chalicelib/local/", "chalicelib/blueprints/local."))
                or "stripe_standin" in n or "stripe_fixtures" in n]
    sources = {n: package.read(n).decode("utf-8") for n in names
               if n == "app.py" or (n.startswith("chalicelib/") and n.endswith(".py"))}
    assert not [n for n, text in sources.items() if "StripeStandIn" in text]
    # And only app.py imports devstack, inside `if settings().local_mode:`
    importers = {n: _devstack_imports(text) for n, text in sources.items()}
    assert {n for n, found in importers.items() if found} == {"app.py"}
    assert importers["app.py"] == ["settings().local_mode"]


def _devstack_imports(source: str) -> list[str]:
    """For each import of devstack in a module, the test of the `if` it sits in ("" if none)."""
    import ast

    found = []

    def visit(node: ast.AST, condition: str) -> None:
        for child in ast.iter_child_nodes(node):
            names = ([a.name for a in child.names] if isinstance(child, ast.Import) else
                     [child.module or ""] if isinstance(child, ast.ImportFrom) else [])
            if any(name.split(".")[0] == "devstack" for name in names):
                found.append(condition)
            visit(child, ast.unparse(child.test) if isinstance(child, ast.If) else condition)

    visit(ast.parse(source), "")
    return found


def test_every_module_of_the_app_ships_bytecode_python_loads_without_the_source_check(packaged):
    import importlib.util
    import zipfile

    package = zipfile.ZipFile(packaged["zip"])
    names = set(package.namelist())
    ours = [n for n in names if n.endswith(".py") and (n == "app.py" or n.startswith(
        ("chalicelib/", "pynamodb/", "aws_lambda_powertools/", "chalice/", "msgspec/")))]
    assert len(ours) > 100
    for name in ours:
        pyc = importlib.util.cache_from_source(name)
        assert pyc in names, f"no bytecode for {name}"
        data = package.read(pyc)
        # PEP 552 header: magic of this Python, flags 0b01 (hash-based, unchecked), source hash.
        assert data[:4] == importlib.util.MAGIC_NUMBER
        assert int.from_bytes(data[4:8], "little") == 0b01
        assert data[8:16] == importlib.util.source_hash(package.read(name))


def test_every_sqs_event_source_reports_batch_item_failures(packaged):
    sources = [(name, event) for name, res in packaged["template"]["Resources"].items()
               if res["Type"] == "AWS::Serverless::Function"
               for event in res["Properties"].get("Events", {}).values()
               if event["Type"] == "SQS"]
    assert sources, "the app has SQS consumers"
    for name, event in sources:
        assert event["Properties"].get("FunctionResponseTypes") == ["ReportBatchItemFailures"], name


def test_a_request_no_route_matches_reaches_the_app_for_the_error_envelope(packaged):
    """An HTTP API has no gateway responses: its `$default` route sends what matches no route
    to the app, which answers 404 in the envelope (tests/integration/test_http_api_events)."""
    resources = packaged["template"]["Resources"]
    assert not [r for r in resources.values() if r["Type"] == "AWS::ApiGateway::GatewayResponse"]
    default = resources["HttpApi"]["Properties"]["DefinitionBody"]["paths"]["$default"]
    operation = default["x-amazon-apigateway-any-method"]
    assert operation["isDefaultRoute"] is True
    integration = operation["x-amazon-apigateway-integration"]
    assert integration["payloadFormatVersion"] == "1.0"
    assert integration["uri"]["Fn::Sub"][1] == {"Alias": {"Ref": "APIHandler.Alias"}}


def test_the_packaged_template_passes_cfn_lint(packaged):
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(packaged["path"])],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 4, 8), result.stderr  # 2: errors; 4/8: warnings/info
    errors = [line for line in result.stdout.splitlines() if line.startswith("E")]
    assert not errors, result.stdout


def test_no_iam_policy_of_the_package_grants_wildcard_actions(packaged):
    """Roles the package creates (the functions' from .chalice/policy-<stage>.json, and those
    SAM adds) never allow `*` or `service:*` actions."""
    statements = []
    for name, res in packaged["template"]["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                statements += [(name, s) for s in policy["PolicyDocument"]["Statement"]]
        if res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            statements += [(name, s) for s in props["PolicyDocument"]["Statement"]]
    assert statements, "the functions' role carries the stage's policy"
    for name, statement in statements:
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        assert all(a != "*" and not a.endswith(":*") for a in actions), (name, statement)



@pytest.fixture(scope="module")
def packager():
    """infra/package.py, the module `make package` runs."""
    sys.path.insert(0, str(ROOT / "infra"))
    import package

    return package


def test_the_zip_holds_exactly_the_function_locks_versions(packaged, packager):
    pinned = packager.pins((ROOT / "requirements.lock").read_text(encoding="utf-8"))
    wanted = {name: version for name, version in pinned.items()
              if not packager.provided(name.replace("-", "_"))}
    assert packager.packaged_versions(packaged["zip"]) == wanted
    assert {"msgspec", "pynamodb", "stripe", "aws-lambda-powertools"} <= set(wanted)


def test_a_zip_with_a_version_the_lock_does_not_pin_is_refused(tmp_path, packager):
    import zipfile

    zip_path = tmp_path / "deployment.zip"
    with zipfile.ZipFile(zip_path, "w") as built:
        built.writestr("msgspec-0.1.0.dist-info/METADATA",
                       "Metadata-Version: 2.1\nName: msgspec\nVersion: 0.1.0\n\nbody")
    with pytest.raises(SystemExit, match="msgspec: lock"):
        packager.check_against_lock(zip_path, "msgspec==0.23.0 \\\n    --hash=sha256:00\n")
