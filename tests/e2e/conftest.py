"""The local stack in a subprocess, exactly as `make run` starts it, on free ports."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
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


@pytest.fixture(scope="session")
def stack():
    """The started local stack: URLs, admin credentials and its output so far."""
    api_port, moto_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    env.update({"API_PORT": str(api_port), "MOTO_PORT": str(moto_port),
                "LOCAL_ADMIN_EMAIL": ADMIN_EMAIL, "LOCAL_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "PUMP_RETRY_DELAY_SECONDS": "1", "PYTHONUNBUFFERED": "1",
                "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET})
    process = subprocess.Popen([sys.executable, "-m", "chalicelib.local.stack"], cwd=ROOT,
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
def api(stack):
    """A requests session bound to the stack's base URL: `api.get("/health")`."""
    import requests

    class Api(requests.Session):
        def request(self, method, url, *args, **kwargs):
            kwargs.setdefault("timeout", 10)
            return super().request(method, stack.base_url + url, *args, **kwargs)

    with Api() as session:
        yield session


@pytest.fixture(scope="session")
def boto(stack):
    """boto3 clients on the stack's moto server: `boto("sqs")`."""
    import boto3

    def make(service: str):
        return boto3.client(service, endpoint_url=stack.moto_endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    return make
