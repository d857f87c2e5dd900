"""`make smoke` against the running local stack: the same module a release runs against a
deployed stage (docs/release.md)."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from devstack import smoke

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_every_smoke_step_passes_against_the_local_stack(stack):
    out = io.StringIO()
    passed = smoke.run(stack.base_url, out=out, email_domain="smoke.paidres.example.com")
    lines = out.getvalue().splitlines()
    assert passed, out.getvalue()
    steps = [line.split()[1] for line in lines if line.startswith("ok ")]
    assert steps[:3] == ["health", "catalog", "jwks"]
    assert len([x for x in lines if x.startswith("ok ")]) == len(smoke.STEPS)
    assert "smoke+" in out.getvalue() and "@smoke.paidres.example.com" in out.getvalue()
    assert all(" ms " in line for line in lines if line.startswith("ok "))


def test_the_command_line_exits_zero_on_success_and_one_on_the_first_failure(stack):
    command = [sys.executable, "-m", "devstack.smoke", "--timeout", "20"]
    ok = subprocess.run([*command, stack.base_url + "/"], cwd=ROOT, capture_output=True,
                        text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "all 9 steps passed" in ok.stdout

    # A base URL with a wrong prefix: /health is not found, so the very first step fails
    # and nothing after it runs.
    bad = subprocess.run([*command, stack.base_url + "/nope"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAIL health" in bad.stdout and "HTTP 200, got 404" in bad.stdout
    assert "ok " not in bad.stdout


def test_without_a_url_it_checks_the_running_local_stack(stack):
    """`make smoke` alone: the stack `make run` started, found through .local/stack.json."""
    result = subprocess.run([sys.executable, "-m", "devstack.smoke"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"smoke: {stack.base_url}\n")


def test_a_step_fails_on_a_wrong_answer_not_only_on_a_status(stack, monkeypatch):
    real = smoke.Client.call

    def without_keys(self, method, path, body=None, token=None):
        reply = real(self, method, path, body, token)
        if path == "/.well-known/jwks.json":
            reply.body = {"keys": []}
        return reply

    monkeypatch.setattr(smoke.Client, "call", without_keys)
    out = io.StringIO()
    assert not smoke.run(stack.base_url, out=out)
    assert "FAIL jwks" in out.getvalue() and "no signing keys" in out.getvalue()
    assert "register" not in out.getvalue()
