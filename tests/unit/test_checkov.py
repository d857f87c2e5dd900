"""checkov, offline, on the stateful template: no failed check beyond the documented skips
(each skip carries its reason in the template's Metadata)."""
from __future__ import annotations

import json
import subprocess

from tests.support import ROOT

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


def checkov(path) -> dict:
    assert CHECKOV.exists(), "checkov is installed by `make test` into .venv-checkov"
    done = subprocess.run([str(CHECKOV), "-f", str(path), "--framework", "cloudformation",
                           "--output", "json", "--skip-download"],
                          capture_output=True, text=True, timeout=600)
    return json.loads(done.stdout)


def test_the_stateful_template_fails_no_checkov_check():
    report = checkov(ROOT / "infra" / "resources.yaml")
    assert report["summary"]["parsing_errors"] == 0 and report["summary"]["passed"] > 20
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    skipped = report["results"]["skipped_checks"]
    assert all(s["check_result"].get("suppress_comment") for s in skipped)


def test_the_packaged_app_template_fails_no_checkov_check(tmp_path):
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if k != "LOCAL_MODE"}
    subprocess.run([sys.executable, "infra/package.py", "prod", str(tmp_path / "prod")],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    report = checkov(tmp_path / "prod" / "sam.yaml")
    assert report["summary"]["parsing_errors"] == 0 and report["summary"]["passed"] > 40
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    skipped = report["results"]["skipped_checks"]
    assert all(s["check_result"].get("suppress_comment") for s in skipped)
