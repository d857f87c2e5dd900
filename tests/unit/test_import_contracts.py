"""The architecture's import contracts (pyproject.toml [tool.importlinter]) hold, so
`make test` enforces them as `make lint` does."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

KEY_CONTRACTS = (
    "The HTTP edge over the contexts over the shared kernel",
    "Inside each context its services over its one repository module",
    "No import cycles inside or between packages (contexts included)",
    "Only the catalog (and data migrations) import the catalog's repository",
)


def test_every_import_contract_of_the_architecture_is_kept():
    # Given the code as it is, when import-linter checks the configured contracts
    done = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache",
                           "--no-logo"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    # then none is broken, and the layering, cycle and repository contracts were all checked
    assert done.returncode == 0, done.stdout + done.stderr
    for name in KEY_CONTRACTS:
        assert f"{name} KEPT" in done.stdout, done.stdout
