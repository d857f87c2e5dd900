"""What the API function imports when Lambda loads it: heavy modules only where used."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.support import ROOT

PROBE = """
import json, sys
from chalicelib.local import stage
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
