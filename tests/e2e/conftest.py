"""The local stack in a subprocess, exactly as `make run` starts it, on free ports."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

READY_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 15
ADMIN_EMAIL = "e2e-admin@paidres.example.com"
ADMIN_PASSWORD = "e2e-Admin-password-1"
WEBHOOK_SECRET = "whsec_e2e_local_secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningStack:
    base_url: str
    moto_endpoint: str
    admin_email: str
    admin_password: str
    process: subprocess.Popen
    output: list[str] = field(default_factory=list)
    webhook_secret: str = WEBHOOK_SECRET

    def log(self) -> str:
        return "".join(self.output)

    @property
    def stripe_url(self) -> str:
        """The local Stripe stand-in's base URL, as the banner prints it."""
        line = next(x for x in self.output if x.strip().startswith("Stripe (local):"))
        return line.split(":", 1)[1].strip()


def _read_output(stack: RunningStack, ready: threading.Event) -> None:
    # Drained for the whole run: a full pipe would block the stack's logging.
    assert stack.process.stdout is not None
    for line in stack.process.stdout:
        stack.output.append(line)
        if line.startswith("Ready: "):
            ready.set()
    ready.set()


@contextmanager
def running_stack(extra_env: dict[str, str] | None = None) -> Iterator[RunningStack]:
    """`python -m devstack.stack` on free ports until the block ends; fails the test
    if it does not become ready, or does not stop cleanly on SIGINT."""
    api_port, moto_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update({"API_PORT": str(api_port), "MOTO_PORT": str(moto_port),
                "LOCAL_ADMIN_EMAIL": ADMIN_EMAIL, "LOCAL_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "PUMP_RETRY_DELAY_SECONDS": "1", "PYTHONUNBUFFERED": "1",
                "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, **(extra_env or {})})
    process = subprocess.Popen([sys.executable, "-m", "devstack.stack"], cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    running = RunningStack(base_url=f"http://127.0.0.1:{api_port}",
                           moto_endpoint=f"http://127.0.0.1:{moto_port}",
                           admin_email=ADMIN_EMAIL, admin_password=ADMIN_PASSWORD,
                           process=process)
    ready = threading.Event()
    reader = threading.Thread(target=_read_output, args=(running, ready), daemon=True)
    reader.start()
    started = time.monotonic()
    ready.wait(READY_TIMEOUT_SECONDS)
    if not any(line.startswith("Ready: ") for line in running.output) \
            or process.poll() is not None:
        process.kill()
        process.wait()
        pytest.fail(f"the local stack did not become ready in {READY_TIMEOUT_SECONDS} s:\n"
                    f"{running.log()}")
    running.output.append(f"[e2e] ready after {time.monotonic() - started:.1f} s\n")
    yield running
    process.send_signal(signal.SIGINT)
    try:
        code = process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"the local stack did not stop on SIGINT:\n{running.log()}")
    reader.join(5)
    assert code == 0, f"the local stack exited with {code}:\n{running.log()}"


@pytest.fixture(scope="session")
def stack():
    """The started local stack: URLs, admin credentials and its output so far."""
    with running_stack() as running:
        yield running


def api_session(base_url: str, timeout: float = 10):
    """A requests session bound to `base_url`: `api.get("/health")`."""
    import requests

    class Api(requests.Session):
        def request(self, method, url, *args, **kwargs):
            kwargs.setdefault("timeout", timeout)
            return super().request(method, base_url + url, *args, **kwargs)

    return Api()


@pytest.fixture(scope="session")
def api(stack):
    with api_session(stack.base_url) as session:
        yield session


@pytest.fixture(scope="session")
def boto(stack):
    """boto3 clients on the stack's moto server: `boto("sqs")`."""
    import boto3

    def make(service: str):
        return boto3.client(service, endpoint_url=stack.moto_endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    return make


LOCALSTACK_PYTHON = ROOT / ".venv-localstack" / "bin" / "python"
LOCALSTACK_READY_SECONDS = 60


@pytest.fixture(scope="session")
def localstack(tmp_path_factory):
    """LocalStack's S3 and SQS on a free loopback port (its own venv, which `make test`
    builds from requirements-localstack.lock): S3 that checks presigned signatures, expiry and
    POST policy conditions as AWS does. Nothing of it reaches the network."""
    import requests

    if not LOCALSTACK_PYTHON.exists():
        pytest.fail(f"{LOCALSTACK_PYTHON} is missing: make test (or make test-e2e) builds it")
    port = free_port()
    root = tmp_path_factory.mktemp("localstack")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root),
           "GATEWAY_LISTEN": f"127.0.0.1:{port}", "SERVICES": "s3,sqs",
           "S3_SKIP_SIGNATURE_VALIDATION": "0",
           # Offline and self-contained: no telemetry, no DNS server, no certificate
           # download, and its files under `root` even where the machine looks like a
           # container (it would take /var/lib/localstack and wipe /tmp/localstack).
           "DISABLE_EVENTS": "1", "DNS_ADDRESS": "0", "SKIP_SSL_CERT_DOWNLOAD": "1",
           "OVERRIDE_IN_DOCKER": "0", "FILESYSTEM_ROOT": str(root / "fs")}
    log = (root / "localstack.log").open("w")
    process = subprocess.Popen([str(LOCALSTACK_PYTHON), "-m", "localstack.runtime.main"],
                               env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + LOCALSTACK_READY_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(f"{endpoint}/_localstack/health", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        time.sleep(0.2)
    else:
        process.kill()
        process.wait()
        log.close()
        pytest.fail("LocalStack did not start:\n" + (root / "localstack.log").read_text())
    yield endpoint
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


@pytest.fixture(scope="session")
def real_s3_stack(localstack, tmp_path_factory):
    """The local stack with S3, and the queue S3 notifies, on LocalStack; the rest on moto.
    Download links live 5 seconds and files above 1 MiB go multipart, so a test can see a
    link expire and send a multipart upload in seconds."""
    with running_stack({"AWS_ENDPOINT_URL_S3": localstack, "AWS_ENDPOINT_URL_SQS": localstack,
                        "DOWNLOAD_URL_SECONDS": "5",
                        # .local/stack.json stays the other stack's (make smoke, ops).
                        "LOCAL_STACK_FILE": str(tmp_path_factory.mktemp("s3") / "stack.json"),
                        "MULTIPART_THRESHOLD_BYTES": str(1024 * 1024)}) as running:
        yield running
