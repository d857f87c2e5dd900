"""Cold start of each deployed function against the floor: a fresh Python process that imports
boto3, builds a DynamoDB client and makes one GetItem. Every sample is a new interpreter talking
to the harness's moto server; kinds run round-robin (rotated each round) so drift on a busy
machine spreads over all of them. The headline is the time the parent measures from process
start to the response (the child prints it, flushed, the moment it has it): what a caller of
a cold function waits for. Also reported: start to exit, which adds interpreter teardown
(Lambda never tears down on the request path; and the app freezes its heap after the first
event, which shortens teardown and would flatter it), and the child's own time from its
first line to the response. One extra `-X importtime` run of each shows what the API
function imports that the floor does not.

The functions run from the deployment package itself (infra/package.py's zip, extracted as
Lambda does into /var/task): its code, its libraries and their bytecode, with the runtime's
boto3 and botocore (this virtualenv's) behind them on the path, as on Lambda. A first untimed
run of each function checks that everything it imports came from the package or the runtime
and had its bytecode there."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

try:  # as bench/run.py and `python bench/<name>.py` import it: bench/ is on sys.path
    from harness import ROOT, Harness, api_event, start
except ImportError:  # python -m bench.<name>
    from bench.harness import ROOT, Harness, api_event, start

TARGET = 1.3
FIXTURES = Path("/work/shared/fixtures/stripe")
ACCOUNT = "123456789012"  # moto's default account, as in the ARNs moto itself answers with

# Provided by the Lambda runtime rather than the package (infra/package.py leaves them out);
# the children see this virtualenv's copies of these and nothing else of it.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3",
                    "six.py")
# Children run without `site` (-S): on the path only the extracted package (/var/task), the
# runtime's libraries and the standard library, as on Lambda. The floor runs the same way.
_ISOLATED = ("-S",)

# Both children start the clock on their first line; `time` is built in, so nothing is
# imported before it.
_PRELUDE = "import time\n_t0 = time.perf_counter()\n"
_IMPORTED = "_t1 = time.perf_counter()\n"
# Flushed, so the parent sees the response the moment it is there, before interpreter teardown.
_REPORT = ("print('BENCH_MS', (time.perf_counter() - _t0) * 1000.0, (_t1 - _t0) * 1000.0, "
           "flush=True)\n")

# A stand-in for Lambda's context object with what Powertools and Idempotency read; defined in
# the child so that the API child does not pay for importing chalice.local.
_CONTEXT = '''
class Context:
    def __init__(self, name):
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 1024
        self.invoked_function_arn = "arn:aws:lambda:%s:%s:function:" % (REGION, ACCOUNT) + name
        self.aws_request_id = REQUEST_ID
        self.log_group_name = "/aws/lambda/" + name
        self.log_stream_name = "bench"
        self._deadline = time.monotonic() + 30

    def get_remaining_time_in_millis(self):
        return int((self._deadline - time.monotonic()) * 1000)
'''

_FLOOR = '''
import boto3
''' + _IMPORTED + '''
client = boto3.client("dynamodb", endpoint_url=ENDPOINT, region_name=REGION)
reply = client.get_item(TableName=TABLE, Key=KEY)
''' + _REPORT + '''
if "Item" not in reply:
    raise SystemExit("floor: GetItem found nothing")
'''

_API = '''
import app
''' + _IMPORTED + _CONTEXT + '''
reply = app.app(EVENT, Context(FUNCTION))
''' + _REPORT + '''
if reply["statusCode"] != 200 or EXPECT not in reply["body"]:
    raise SystemExit("api: unexpected reply %r" % (reply,))
'''

_SQS = '''
import app
''' + _IMPORTED + _CONTEXT + '''
reply = getattr(app, HANDLER)(EVENT, Context(FUNCTION))
''' + _REPORT + '''
if reply != {"batchItemFailures": []}:
    raise SystemExit("%s: not acknowledged: %r" % (HANDLER, reply))
'''

# A function S3 invokes directly (asynchronously): it answers nothing, a failure raises.
_S3 = '''
import app
''' + _IMPORTED + _CONTEXT + '''
reply = getattr(app, HANDLER)(EVENT, Context(FUNCTION))
''' + _REPORT + '''
if reply is not None:
    raise SystemExit("%s: unexpected reply %r" % (HANDLER, reply))
'''


# Appended to one untimed run of each function: what it loaded from outside the package (other
# than the runtime's libraries and the standard library), and which of the package's modules
# had no bytecode beside them.
_CHECK = '''
import importlib.util as _util, json as _json, os as _os, sys as _sys
_outside, _no_bytecode = [], []
for _name, _module in list(_sys.modules.items()):
    _file = getattr(_module, "__file__", None) or ""
    if _file.startswith(TASK):
        if _file.endswith(".py") and not _os.path.exists(_util.cache_from_source(_file)):
            _no_bytecode.append(_name)
    elif _file and not _file.startswith(ALLOWED):
        _outside.append(_name)
print("BENCH_CHECK", _json.dumps({"outside": sorted(_outside), "no_bytecode": _no_bytecode}))
'''


def _source(template: str, **constants: object) -> str:
    """Child code with its inputs as literals, so the child parses nothing before its work."""
    lines = "".join(f"{name} = {value!r}\n" for name, value in constants.items())
    return _PRELUDE + lines + template


def _common(h: Harness, cfg) -> dict[str, object]:
    return {"ENDPOINT": h.endpoint, "REGION": cfg.region, "ACCOUNT": ACCOUNT}


def _sqs_event(queue: str, region: str, body: str,
               attributes: dict[str, dict] | None = None) -> dict:
    """A one-record SQS event as Lambda's event source mapping delivers it."""
    from devstack.pump import sqs_record

    now = str(int(time.time() * 1000))
    message = {"MessageId": str(uuid.uuid4()), "ReceiptHandle": uuid.uuid4().hex, "Body": body,
               "MD5OfBody": "0" * 32, "MessageAttributes": attributes or {},
               "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": now,
                              "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                              "ApproximateFirstReceiveTimestamp": now}}
    return {"Records": [sqs_record(message, f"arn:aws:sqs:{region}:{ACCOUNT}:{queue}", region)]}


def _stripe_expired_event() -> dict:
    """checkout.session.expired for an order that is not ours, from Stripe's own fixtures."""
    event = json.loads((FIXTURES / "event.json").read_text(encoding="utf-8"))
    session = json.loads((FIXTURES / "checkout.session.json").read_text(encoding="utf-8"))
    session = {**session, "status": "expired",
               "metadata": {"order_id": "bench-unknown"}}
    event.update(id=f"evt_bench_{uuid.uuid4().hex[:24]}", type="checkout.session.expired",
                 data={"object": session})
    return event


def _s3_notification(bucket: str, key: str, region: str) -> dict:
    """S3's ObjectCreated event as S3 invokes a function with it (one record)."""
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": region,
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAIENQZJOLO23YVJ4VO"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(),
                             "x-amz-id-2": uuid.uuid4().hex},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "upload-events",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                          "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": key, "size": 1024, "eTag": uuid.uuid4().hex,
                          "versionId": uuid.uuid4().hex, "sequencer": "0A1B2C3D4E5F678901"}},
    }]}


def children(h: Harness) -> dict[str, Callable[[], str]]:
    """Code of each kind of child, by name; built anew per sample where the input must be
    unique (a Stripe event id is applied once, an analytics event counted once)."""
    from chalicelib.config import settings

    cfg = settings()
    common = _common(h, cfg)
    token = h.fresh_token()
    fn = f"{cfg.app_name}-{cfg.stage}"

    def floor() -> str:
        key = {"pk": {"S": f"USER#{h.buyer_id}"}, "sk": {"S": "PROFILE"}}
        return _source(_FLOOR, **common, TABLE=cfg.users_table, KEY=key)

    def api() -> str:
        return _source(_API, **common, REQUEST_ID=str(uuid.uuid4()), FUNCTION=fn,
                       EVENT=api_event("GET", "/me/library", "/me/library", token,
                                       "bench/cold-start"), EXPECT=h.owned_resource_id)

    def analytics_rollup() -> str:
        body = json.dumps({"event_id": uuid.uuid4().hex, "type": "signups",
                           "at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                           "count": 1})
        event = _sqs_event(cfg.analytics_queue, cfg.region, body)
        return _source(_SQS, **common, REQUEST_ID=str(uuid.uuid4()), HANDLER="analytics_rollup",
                       FUNCTION=f"{fn}-analytics_rollup", EVENT=event)

    def payment_events() -> str:
        body = json.dumps(_stripe_expired_event())
        attributes = {"event_type": {"DataType": "String",
                                     "StringValue": "checkout.session.expired"}}
        event = _sqs_event(cfg.payments_queue, cfg.region, body, attributes)
        return _source(_SQS, **common, REQUEST_ID=str(uuid.uuid4()), HANDLER="payment_events",
                       FUNCTION=f"{fn}-payment_events", EVENT=event)

    def upload_events() -> str:
        # A well-formed upload key for which no upload record exists: acknowledged "unknown".
        key = f"creators/{h.creator_id}/{h.paid_resource_id}/bench{uuid.uuid4().hex}/file.zip"
        event = _s3_notification(cfg.uploads_bucket, key, cfg.region)
        return _source(_S3, **common, REQUEST_ID=str(uuid.uuid4()), HANDLER="upload_events",
                       FUNCTION=f"{fn}-upload_events", EVENT=event)

    return {"floor": floor, "api": api, "analytics_rollup": analytics_rollup,
            "payment_events": payment_events, "upload_events": upload_events}


# What each function's log must show, so a sample that took another path does not count.
_EXPECTED_LOG = {"payment_events": "event for an unknown order",
                 "upload_events": "object without upload record"}


def child_env(h: Harness) -> dict[str, str]:
    """The harness's child environment as a deployed function sees it: no /_local routes."""
    env = h.child_env()
    env["LOCAL_MODE"] = "false"
    return env


class Sample(NamedTuple):
    """One fresh process, timed by the parent (start to exit, start to response) and by
    itself (first line to response, of which importing the entry module)."""

    wall_ms: float
    response_ms: float
    in_process_ms: float
    import_ms: float
    stderr: str
    check: dict | None = None  # what the _CHECK epilogue printed, when appended


def run_child(code: str, env: dict[str, str], name: str, flags: tuple[str, ...] = (),
              task: Path = ROOT) -> Sample:
    """Run one child in `task` (the extracted package) and check it did what its function is
    for."""
    # stderr goes to a file: an -X importtime run writes more than a pipe holds.
    with tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, *flags, "-c", code], env=env, cwd=task,
                                 stdout=subprocess.PIPE, stderr=err, text=True)
        out, responded = [], None
        assert child.stdout is not None
        for line in child.stdout:
            out.append(line)
            if responded is None and line.startswith("BENCH_MS "):
                responded = time.perf_counter()
        status = child.wait(timeout=120)
        ended = time.perf_counter()
        err.seek(0)
        stderr = err.read()
    stdout = "".join(out)
    if status != 0:
        raise RuntimeError(f"{name} child failed ({status}):\n{stdout[-2000:]}\n{stderr[-4000:]}")
    marks = [line for line in out if line.startswith("BENCH_MS ")]
    if not marks or responded is None:
        raise RuntimeError(f"{name} child reported no time:\n{stdout[-2000:]}")
    expected = _EXPECTED_LOG.get(name)
    if expected and expected not in stdout:
        raise RuntimeError(f"{name} child did not log {expected!r}:\n{stdout[-2000:]}")
    in_process, imported = (float(x) for x in marks[-1].split()[1:3])
    checks = [json.loads(line.split(" ", 1)[1]) for line in out if line.startswith("BENCH_CHECK ")]
    return Sample((ended - started) * 1000.0, (responded - started) * 1000.0, in_process,
                  imported, stderr, checks[-1] if checks else None)


# ------------------------------------------------------------------ -X importtime

def parse_importtime(stderr: str) -> list[dict]:
    """`-X importtime` lines as dicts (name, self_us, cumulative_us, depth, parent), in the
    order Python printed them (a module after everything it imported)."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, cumulative_us, name_part = line[len("import time:"):].split("|", 2)
        padding = len(name_part) - len(name_part.lstrip(" ")) - 1
        rows.append({"name": name_part.strip(), "self_us": int(self_us),
                     "cumulative_us": int(cumulative_us), "depth": padding // 2})
    # Reversed, the lines are a pre-order walk: the parent is the nearest shallower line seen.
    stack: list[dict] = []
    for row in reversed(rows):
        while stack and stack[-1]["depth"] >= row["depth"]:
            stack.pop()
        row["parent"] = stack[-1]["name"] if stack else None
        row["_parent_row"] = stack[-1] if stack else None
        stack.append(row)
    return rows


def _ours(name: str | None) -> bool:
    return name is not None and (name == "app" or name.startswith("chalicelib"))


def import_analysis(api_stderr: str, floor_stderr: str, top: int = 10) -> dict:
    """What the API child imports and the floor does not.

    `third_party`: the modules our code (app.py, chalicelib) imports directly, or imports
    lazily during the request, by the import time the floor does not also pay (self time of
    their subtree, leaving out modules the floor imports too); `own`: our modules by self
    time, i.e. the work their module bodies do (model classes, route registration).
    """
    floor = {r["name"] for r in parse_importtime(floor_stderr)}
    rows = parse_importtime(api_stderr)
    children: dict[int, list[dict]] = {}
    for row in rows:
        if row["_parent_row"] is not None:
            children.setdefault(id(row["_parent_row"]), []).append(row)

    def extra_us(row: dict) -> int:
        own = 0 if row["name"] in floor else row["self_us"]
        return own + sum(extra_us(c) for c in children.get(id(row), []))

    third_party = []
    for row in rows:
        if _ours(row["name"]) or row["name"] in floor:
            continue
        if row["parent"] is not None and not _ours(row["parent"]):
            continue  # counted within the third-party module that imported it
        # A module imported while the request runs (a lazy import) has no parent line.
        third_party.append({"module": row["name"],
                            "via": row["parent"] or "the first request (lazy import)",
                            "extra_ms": round(extra_us(row) / 1000.0, 1),
                            "cumulative_ms": round(row["cumulative_us"] / 1000.0, 1)})
    third_party.sort(key=lambda e: e["extra_ms"], reverse=True)
    own = sorted((r for r in rows if _ours(r["name"])), key=lambda r: r["self_us"], reverse=True)
    return {
        "modules": {"api": len(rows), "floor": len(floor)},
        "third_party_extra_ms": round(sum(e["extra_ms"] for e in third_party), 1),
        "own_self_ms": round(sum(r["self_us"] for r in own) / 1000.0, 1),
        "third_party": third_party[:top],
        "own": [{"module": r["name"], "self_ms": round(r["self_us"] / 1000.0, 1),
                 "via": r["parent"] or "-"} for r in own[:top]],
    }


# ------------------------------------------------------------------ the run

def _median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def build_package(out: Path) -> Path:
    """`make package`'s zip for the prod stage, built into `out`."""
    sys.path.insert(0, str(ROOT / "infra"))
    from package import package

    return package("prod", out / "prod") / "deployment.zip"


def _checked(code: str, env: dict[str, str], name: str, task: Path, runtime: Path) -> None:
    """The untimed first run of a function: it fills the page cache, as a deployed package's
    first cold start would find it warm enough, and shows what the function loaded."""
    import sysconfig

    stdlib = tuple(sysconfig.get_paths()[k] + os.sep for k in ("stdlib", "platstdlib"))
    check = (f"TASK = {str(task) + os.sep!r}\n"
             f"ALLOWED = {(str(runtime) + os.sep, *stdlib)!r}\n" + _CHECK)
    found = run_child(code + check, env, name, _ISOLATED, task).check
    if found is None or found["outside"] or found["no_bytecode"]:
        raise RuntimeError(f"{name} loaded modules from outside the package or without "
                           f"bytecode: {found}")


def _runtime(into: Path) -> Path:
    """A directory standing for the Lambda runtime's libraries: links to this virtualenv's
    copies of what infra/package.py leaves out of the package."""
    import botocore

    site_packages = Path(botocore.__file__).resolve().parents[1]
    into.mkdir()
    for name in RUNTIME_PROVIDED:
        (into / name).symlink_to(site_packages / name)
    return into


def run(h: Harness, count: int = 12, package: Path | None = None) -> dict:
    """Cold-start medians of every function and the floor; `count` samples of each (the issue
    asks for at least 10; fewer, for a quick run, is marked in the report). `package`: the
    deployment zip (built here when not given)."""
    with tempfile.TemporaryDirectory() as scratch:
        zip_path = package or build_package(Path(scratch))
        task = Path(scratch) / "task"
        zipfile.ZipFile(zip_path).extractall(task)
        return _measure(h, count, task, _runtime(Path(scratch) / "runtime"))


def _measure(h: Harness, count: int, task: Path, runtime: Path) -> dict:
    env = {**child_env(h), "PYTHONPATH": f"{task}{os.pathsep}{runtime}"}
    makers = children(h)
    kinds = list(makers)
    for name in kinds:
        _checked(makers[name](), env, name, task, runtime)
    samples: dict[str, list[Sample]] = {k: [] for k in kinds}
    for round_no in range(count):
        shift = round_no % len(kinds)
        for name in kinds[shift:] + kinds[:shift]:
            samples[name].append(run_child(makers[name](), env, name, _ISOLATED, task))

    timing = (*_ISOLATED, "-X", "importtime")
    api_imports = run_child(makers["api"](), env, "api", timing, task).stderr
    floor_imports = run_child(makers["floor"](), env, "floor", timing, task).stderr

    figures = {}
    for name, taken in samples.items():
        figures[name] = {
            "wall_median_ms": _median([s.wall_ms for s in taken]),
            "response_median_ms": _median([s.response_ms for s in taken]),
            "in_process_median_ms": _median([s.in_process_ms for s in taken]),
            "import_median_ms": _median([s.import_ms for s in taken]),
            "response_samples_ms": [round(s.response_ms, 1) for s in taken],
        }
    floor = figures.pop("floor")
    for f in figures.values():
        f["ratio"] = round(f["response_median_ms"] / floor["response_median_ms"], 2)
        f["exit_ratio"] = round(f["wall_median_ms"] / floor["wall_median_ms"], 2)
        f["in_process_ratio"] = round(f["in_process_median_ms"] / floor["in_process_median_ms"],
                                      2)
    return {"samples": count, "target": TARGET, "floor": floor, "functions": figures,
            "imports": import_analysis(api_imports, floor_imports)}


def report(result: dict) -> str:
    """The figures as printed, and as bench/run.py writes them into docs/BENCHMARKS.md."""
    fl = result["floor"]
    quick = " (quick run: fewer than the 10 samples the figure needs)" \
        if result["samples"] < 10 else ""
    intro = (f"{result['samples']} fresh processes of each kind{quick}, medians, each function"
             " run from the extracted deployment package. Headline: time measured by the parent"
             " from process start to the response; also from process start to exit (adds"
             " interpreter teardown, which Lambda never waits for) and the child's own time from"
             f" its first line to the response. Target <= {result['target']}x the floor.")
    lines = [
        f"floor (import boto3, DynamoDB client, one GetItem): {fl['response_median_ms']:.0f} ms to"
        f" response, {fl['wall_median_ms']:.0f} ms to exit, {fl['in_process_median_ms']:.0f}"
        f" ms in process (import {fl['import_median_ms']:.0f} ms)",
    ]
    for name, f in result["functions"].items():
        label = "cold start" if name == "api" else f"cold start {name}"
        verdict = "ok" if f["ratio"] <= result["target"] else f"over {result['target']}x"
        lines.append(
            f"{label}: {f['ratio']:.2f}x floor (median {f['response_median_ms']:.0f} ms vs "
            f"{fl['response_median_ms']:.0f} ms) [{verdict}]; to exit {f['exit_ratio']:.2f}x"
            f" ({f['wall_median_ms']:.0f} vs {fl['wall_median_ms']:.0f} ms), in process "
            f"{f['in_process_ratio']:.2f}x ({f['in_process_median_ms']:.0f} vs "
            f"{fl['in_process_median_ms']:.0f} ms; import {f['import_median_ms']:.0f} vs "
            f"{fl['import_median_ms']:.0f} ms)")
    im = result["imports"]
    lines.append(f"API function imports (one -X importtime run): {im['modules']['api']} modules "
                 f"vs {im['modules']['floor']} for the floor; not paid by the floor: "
                 f"{im['third_party_extra_ms']:.0f} ms of third-party imports and "
                 f"{im['own_self_ms']:.0f} ms in app.py/chalicelib module bodies")
    lines.append(f"  {'third-party, by time the floor does not pay':<48} {'ms':>6} "
                 f"{'cum. ms':>8}  imported by")
    for e in im["third_party"]:
        lines.append(f"  {e['module']:<48} {e['extra_ms']:>6.1f} {e['cumulative_ms']:>8.1f}  "
                     f"{e['via']}")
    lines.append(f"  {'app.py/chalicelib, by self time':<48} {'ms':>6} {'':>8}  imported by")
    for e in im["own"]:
        lines.append(f"  {e['module']:<48} {e['self_ms']:>6.1f} {'':>8}  {e['via']}")
    # Fenced, so the aligned tables survive in docs/BENCHMARKS.md as they read on a terminal.
    return intro + "\n\n```text\n" + "\n".join(lines) + "\n```"


if __name__ == "__main__":
    harness = start()
    try:
        print(report(run(harness, int(sys.argv[1]) if len(sys.argv) > 1 else 12)))
    finally:
        harness.stop()
