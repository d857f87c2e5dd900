"""`make bench`: every benchmark in one run, side by side, written to docs/BENCHMARKS.md.

Prints ratios and tables; timings are reported, never asserted. Exits non-zero only when a
hard budget is broken: AWS round trips per request (bench/round_trips.py) or the size of the
deployment package (bench/package_size.py). The recommender's offline evaluation
(bench/recommend_eval.py: hit-rate@10 against popularity) runs first; it needs no AWS.

    .venv/bin/python bench/run.py [--quick]     # --quick: fewer samples, smallest scale only
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from harness import ROOT, start

OUT = ROOT / "docs" / "BENCHMARKS.md"


def _section(title: str, module, result: dict) -> str:
    body = module.report(result) if hasattr(module, "report") else \
        "```json\n" + json.dumps(result, indent=2, default=str) + "\n```"
    return f"## {title}\n\n{body}\n"


def _machine() -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{platform.system()} {platform.release()} ({platform.machine()}), {cpu}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    import cold_start
    import cost
    import package_size
    import recommend_eval
    import round_trips
    import scale
    import warm

    started = time.monotonic()
    sections, hard_failures = [], []
    scratch = tempfile.TemporaryDirectory()
    size = package_size.run(Path(scratch.name))
    print(f"package size: {size['mb']:.1f} MB ({size['mb'] / size['budget_mb']:.2f}x budget)")
    sections.append(f"## Package size\n\n`make package` zip: **{size['mb']:.1f} MB** "
                    f"(budget {size['budget_mb']:.0f} MB, {'ok' if size['ok'] else 'OVER'}).\n")
    if not size["ok"]:
        hard_failures.append("package size")
    print("\n== Recommendations (offline)", flush=True)
    evaluation = recommend_eval.run()
    text = _section("Recommendations (offline evaluation)", recommend_eval, evaluation)
    print(text)
    sections.append(text)
    h = start()
    try:
        cold = {"package": size["zip"], **({"count": 4} if args.quick else {})}
        plan = [("Cold start", cold_start, cold),
                ("Warm overhead", warm, {"repeat": 50} if args.quick else {}),
                ("AWS round trips per request", round_trips, {}),
                ("Cost", cost, {}),
                ("Scale", scale, {"quick": True} if args.quick else {})]
        for title, module, options in plan:
            print(f"\n== {title}", flush=True)
            import inspect

            accepted = inspect.signature(module.run).parameters
            result = module.run(h, **{k: v for k, v in options.items() if k in accepted})
            text = _section(title, module, result)
            print(text)
            sections.append(text)
            if module is round_trips and result.get("failures"):
                hard_failures.append(f"round trips: {', '.join(result['failures'])}")
    finally:
        h.stop()
        scratch.cleanup()
    header = (f"# Benchmarks\n\nMeasured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {_machine()}, "
              f"in {time.monotonic() - started:.0f} s{' (--quick)' if args.quick else ''}.\n\n"
              "Reproduce with `make bench` (or `.venv/bin/python bench/run.py --quick`). Every "
              "figure runs against the embedded moto server, in-process or in fresh processes; "
              "moto's speed is not DynamoDB's, so ratios are the figures to compare, and call "
              "and unit counts are exact.\n")
    OUT.write_text(header + "\n" + "\n".join(sections), encoding="utf-8")
    print(f"\nwrote {OUT.relative_to(ROOT)}")
    if hard_failures:
        print("HARD BUDGET BROKEN: " + "; ".join(hard_failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
