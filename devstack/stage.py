"""The environment of a stage as `.chalice/config.json` sets it, applied the way `chalice
local` applies it. Used by the local stack and the tests, so both run exactly the configured
stage."""
from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".chalice" / "config.json"


def stage_environment(stage: str = "local") -> dict[str, str]:
    config = json.loads(CONFIG.read_text(encoding="utf-8"))
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    return env


def load(stage: str) -> dict[str, str]:
    """Put the stage's variables into os.environ where not already set (operator tools run
    against a real stage with real credentials: nothing else is touched)."""
    env = stage_environment(stage)
    for name, value in env.items():
        os.environ.setdefault(name, value)
    return env


def apply(stage: str = "local", overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Put the stage's variables into os.environ (explicit overrides win), with moto's fake
    credentials, and return them. For the local stack and the tests only."""
    env = stage_environment(stage)
    env.update(overrides or {})
    os.environ.update(env)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_REGION", os.environ["AWS_DEFAULT_REGION"])
    # Fake credentials: real ones must never be used by tests or the local stack. moto accepts
    # any; LocalStack (the real-S3 tests) checks signatures made with an unknown key against
    # the secret `test`, so that is the secret.
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
        os.environ[name] = value
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    return env
