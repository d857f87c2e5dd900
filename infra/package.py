"""`make package`: `chalice package` with the merge template, the API made an HTTP API, then
the zip rewritten.

The API: Chalice packages a REST API (`RestAPI`, an AWS::Serverless::Api). The merge template
declares an HTTP API (`HttpApi`, AWS::Serverless::HttpApi, payload format 1.0, the same
routes, throttling, access log and CORS; infra/app-merge.yaml) and `http_api` removes the
REST API, after checking that the HTTP API's routes are exactly the app's (every method of
every path Chalice packaged, its CORS preflights aside), and points the outputs at it.

The zip:
- built from the function's lock file (requirements.lock: exact versions, hashes checked),
  never from the ranges in requirements.txt: Chalice reads `requirements.txt` from the project
  directory, so it packages a copy of the project whose requirements.txt is the lock, and the
  zip is checked to hold exactly the lock's versions;
- without the libraries the Lambda Python runtime already provides (boto3, botocore and their
  helpers): they are most of its size and are loaded from the runtime either way;
- with compiled bytecode beside every module. /var/task is read-only, so a package without
  `__pycache__` makes every cold start compile app.py, chalicelib and every library it imports
  from source (bench/cold_start.py measures the package as built here). The bytecode is
  "unchecked-hash": Python loads it without comparing it to the source, which never changes
  inside a deployed package, and zip timestamps (2-second steps) could not be trusted for it.

    python infra/package.py STAGE OUT_DIR
"""
from __future__ import annotations

import importlib.util
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# Provided by the AWS Lambda Python 3.11 runtime (top-level modules and packages).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3",
                    "six")


def provided(name: str) -> bool:
    """Whether a zip entry, or a distribution's name, is one the runtime provides."""
    top = name.split("/", 1)[0].removesuffix(".py")
    base = top.split("-", 1)[0] if top.endswith(".dist-info") else top
    return base in RUNTIME_PROVIDED or base.replace("python_", "") in RUNTIME_PROVIDED


# Left as source: stripe's request-parameter TypedDicts and event classes, ~700 modules that
# exist for type checkers and that no code path here imports (bench/cold_start.py checks every
# module the functions load has its bytecode). Their bytecode would add ~1.5 MB to the zip;
# were one imported, Python would compile it from source, slower but the same.
NOT_COMPILED = ("stripe/params/", "stripe/events/")


def compiled(name: str) -> bool:
    return name.endswith(".py") and not name.startswith(NOT_COMPILED)


def runtime_version(template: Path) -> str:
    """The functions' Python version as `chalice package` wrote it into the SAM template."""
    found = set(re.findall(r"Runtime: python(3\.\d+)", template.read_text(encoding="utf-8")))
    if len(found) != 1:
        raise SystemExit(f"expected one Python runtime in {template}, found {sorted(found)}")
    return found.pop()


def bytecode(source: bytes, name: str, scratch: Path) -> bytes | None:
    """Unchecked-hash bytecode of one module, or None if this Python cannot compile it
    (a file some library ships for another version; it is never imported here)."""
    src, pyc = scratch / "module.py", scratch / "module.pyc"
    src.write_bytes(source)
    try:
        py_compile.compile(str(src), cfile=str(pyc), dfile=f"/var/task/{name}", doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except py_compile.PyCompileError:
        return None
    return pyc.read_bytes()


def rewrite(zip_path: Path, runtime: str) -> dict[str, int]:
    """Rewrite the zip without runtime-provided libraries and with bytecode beside each module
    (see the module docstring); returns sizes and counts."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if running != runtime:
        # Bytecode is specific to the Python version: build with the functions' runtime.
        raise SystemExit(f"packaging with Python {running} for a python{runtime} runtime")
    before = zip_path.stat().st_size
    slim = zip_path.with_suffix(".slim.zip")
    counts = {"compiled": 0, "not_compilable": 0}
    with zipfile.ZipFile(zip_path) as source, zipfile.ZipFile(
            slim, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as target, \
            tempfile.TemporaryDirectory() as scratch:
        for info in source.infolist():
            if provided(info.filename):
                continue
            data = source.read(info.filename)
            target.writestr(info, data)
            if not compiled(info.filename):
                continue
            code = bytecode(data, info.filename, Path(scratch))
            if code is None:
                counts["not_compilable"] += 1
                continue
            entry = zipfile.ZipInfo(importlib.util.cache_from_source(info.filename),
                                    date_time=info.date_time)
            entry.external_attr = info.external_attr
            entry.compress_type = zipfile.ZIP_DEFLATED  # a bare ZipInfo would be stored as is
            target.writestr(entry, code)
            counts["compiled"] += 1
    shutil.move(slim, zip_path)
    return {"before": before, "after": zip_path.stat().st_size, **counts}


LOCK = ROOT / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock_text: str) -> dict[str, str]:
    """{canonical name: version} of every pin in a lock file."""
    return {canonical(name): version for name, version in PIN.findall(lock_text)}


def project_copy(scratch: Path) -> Path:
    """The Chalice project as `chalice package` reads it, with the lock as requirements.txt.
    Chalice's cache of built dependencies (.chalice/deployments, keyed by a hash of the
    requirements and the app's files) stays the checkout's, so repeated packaging reuses it."""
    project = scratch / "project"
    (project / ".chalice").mkdir(parents=True)
    shutil.copy2(ROOT / "app.py", project / "app.py")
    shutil.copytree(ROOT / "chalicelib", project / "chalicelib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for config in (ROOT / ".chalice").glob("*.json"):
        shutil.copy2(config, project / ".chalice" / config.name)
    cache = ROOT / ".chalice" / "deployments"
    cache.mkdir(exist_ok=True)
    (project / ".chalice" / "deployments").symlink_to(cache, target_is_directory=True)
    (project / "requirements.txt").write_text(LOCK.read_text(encoding="utf-8"), encoding="utf-8")
    return project


def packaged_versions(zip_path: Path) -> dict[str, str]:
    """{canonical name: version} of every distribution installed in the zip."""
    found = {}
    with zipfile.ZipFile(zip_path) as package:
        for name in package.namelist():
            parts = name.split("/")
            if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
                meta = package.read(name).decode("utf-8", "replace")
                fields = dict(line.split(": ", 1) for line in meta.split("\n\n", 1)[0]
                              .splitlines() if ": " in line)
                found[canonical(fields["Name"])] = fields["Version"]
    return found


def check_against_lock(zip_path: Path, lock_text: str) -> None:
    """Refuse a zip whose libraries are not exactly the lock's, less what the runtime provides."""
    wanted = {name: version for name, version in pins(lock_text).items()
              if not provided(name.replace("-", "_"))}
    found = packaged_versions(zip_path)
    if found != wanted:
        differ = sorted(f"{name}: lock {wanted.get(name)}, zip {found.get(name)}"
                        for name in set(wanted) | set(found) if wanted.get(name) != found.get(name))
        raise SystemExit(f"{zip_path} does not hold the lock's versions: {differ}")


REST_API = "RestAPI"
HTTP_API = "HttpApi"
_METHODS = ("get", "put", "post", "delete", "patch", "head")


def routes(api: dict) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation of an API's OpenAPI/Swagger DefinitionBody, CORS
    preflights (`options`, answered by the gateway) aside."""
    paths = api["Properties"]["DefinitionBody"]["paths"]
    return {(method.upper(), path) for path, ops in paths.items() for method in ops
            if method in _METHODS}


def http_api(template: dict) -> dict:
    """The packaged template with Chalice's REST API replaced by the merge's HTTP API."""
    resources = template["Resources"]
    if HTTP_API not in resources or REST_API not in resources:
        raise SystemExit(f"expected {REST_API} from chalice package and {HTTP_API} from "
                         "infra/app-merge.yaml")
    app_routes, declared = routes(resources[REST_API]), routes(resources[HTTP_API])
    if app_routes != declared:
        raise SystemExit(
            "infra/app-merge.yaml HttpApi paths differ from the app's routes: missing "
            f"{sorted(app_routes - declared)}, not in the app {sorted(declared - app_routes)}")
    for path, ops in resources[HTTP_API]["Properties"]["DefinitionBody"]["paths"].items():
        for method, op in ops.items():
            integration = op.get("x-amazon-apigateway-integration", {})
            if integration.get("payloadFormatVersion") != "1.0":
                raise SystemExit(f"{method.upper()} {path}: payload format 1.0 is what the "
                                 "Chalice handler reads")
    del resources[REST_API]
    outputs = template.get("Outputs", {})
    outputs.pop("RestAPIId", None)
    leftover = [name for name, value in {**resources, **outputs}.items()
                if REST_API in json.dumps(value)]
    if leftover:
        raise SystemExit(f"still naming {REST_API}: {leftover}")
    return template


def package(stage: str, out: Path) -> Path:
    if out.exists():
        shutil.rmtree(out)
    out = out.resolve()
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    # Chalice imports the app with the caller's environment under the stage's: a local
    # shell's LOCAL_MODE would ship the /_local routes, and its endpoint nothing good.
    for local_only in ("LOCAL_MODE", "AWS_ENDPOINT_URL", "STRIPE_API_BASE"):
        env.pop(local_only, None)
    chalice = Path(sys.executable).with_name("chalice")
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run([str(chalice), "package", "--stage", stage,  # noqa: S603
                        "--merge-template", str(ROOT / "infra" / "app-merge.yaml"), str(out)],
                       cwd=project_copy(Path(scratch)), env=env, check=True)
    sam = out / "sam.yaml"
    template = http_api(yaml.safe_load(sam.read_text(encoding="utf-8")))
    sam.write_text(yaml.safe_dump(template, sort_keys=False, width=100), encoding="utf-8")
    done = rewrite(out / "deployment.zip", runtime_version(sam))
    check_against_lock(out / "deployment.zip", LOCK.read_text(encoding="utf-8"))
    print(f"deployment.zip: {done['before'] / 1e6:.1f} MB -> {done['after'] / 1e6:.1f} MB "
          f"without the libraries the Lambda runtime provides, with bytecode for "
          f"{done['compiled']} modules ({done['not_compilable']} not compilable, left as source)")
    return out


if __name__ == "__main__":
    package(sys.argv[1] if len(sys.argv) > 1 else "dev",
            Path(sys.argv[2] if len(sys.argv) > 2 else "build/dev"))
