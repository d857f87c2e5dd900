"""What the API function imports when Lambda loads it: heavy modules only where used."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.support import ROOT

PROBE = """
import json, sys
from devstack import stage
stage.apply("local")
import app
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in
      {"stripe", "aws_xray_sdk", "moto", "pydantic"} or m.startswith(
      "aws_lambda_powertools.utilities.idempotency"))))
"""


def test_importing_the_api_function_loads_no_stripe_idempotency_xray_or_moto():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


COLD_START_GC = """
import gc, json
from chalice.test import Client
from devstack import stage
stage.apply("local")
default = gc.get_threshold()
import app
seen = {"default": default, "cold": gc.get_threshold(), "frozen_before": gc.get_freeze_count()}
with Client(app.app, stage_name="local") as client:
    seen["status"] = client.http.get("/health").status_code
seen.update(after=gc.get_threshold(), frozen_after=gc.get_freeze_count())
print(json.dumps(seen))
"""


def test_collection_is_rare_until_the_first_event_is_answered_then_the_cold_start_is_frozen():
    # Given a fresh process that imports the app, when its first event (GET /health) is answered
    done = subprocess.run([sys.executable, "-c", COLD_START_GC], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # Then: sparse young collections while cold, defaults and a frozen heap afterwards
    assert seen["status"] == 200
    assert seen["cold"][0] >= 1000 * seen["default"][0]
    assert seen["after"] == seen["default"]
    assert seen["frozen_before"] == 0 and seen["frozen_after"] > 10_000
