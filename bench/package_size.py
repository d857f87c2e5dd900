"""The size of the Lambda deployment package `make package` builds (hard budget: 15 MB)."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from harness import ROOT

BUDGET_MB = 15.0


def run(out: Path | None = None) -> dict:
    """Build the prod package (into `out` when given, to be reused: bench/cold_start.py runs
    the functions from it) and weigh its zip."""
    sys.path.insert(0, str(ROOT / "infra"))
    from package import package

    if out is None:
        with tempfile.TemporaryDirectory() as scratch:
            return run(Path(scratch))
    built = package("prod", out / "prod") / "deployment.zip"
    size = built.stat().st_size / 1e6
    return {"mb": round(size, 2), "budget_mb": BUDGET_MB, "ok": size <= BUDGET_MB,
            "zip": built}


if __name__ == "__main__":
    result = run()
    print(f"package size: {result['mb']:.1f} MB ({result['mb'] / BUDGET_MB:.2f}x the "
          f"{BUDGET_MB:.0f} MB budget)")
    sys.exit(0 if result["ok"] else 1)
