"""`make package`: `chalice package` with the merge template, then the zip without the
libraries the Lambda Python runtime already provides (boto3, botocore and their helpers):
they are most of its size and are loaded from the runtime either way.

    python infra/package.py STAGE OUT_DIR
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Provided by the AWS Lambda Python 3.11 runtime.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3",
                    "six.py")


def provided(name: str) -> bool:
    top = name.split("/", 1)[0]
    base = top.split("-", 1)[0] if top.endswith(".dist-info") else top
    return base in RUNTIME_PROVIDED or base.replace("python_", "") in RUNTIME_PROVIDED


def strip(zip_path: Path) -> tuple[int, int]:
    """Rewrite the zip without runtime-provided libraries; returns (bytes before, after)."""
    before = zip_path.stat().st_size
    slim = zip_path.with_suffix(".slim.zip")
    with zipfile.ZipFile(zip_path) as source, zipfile.ZipFile(
            slim, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for info in source.infolist():
            if not provided(info.filename):
                target.writestr(info, source.read(info.filename))
    shutil.move(slim, zip_path)
    return before, zip_path.stat().st_size


def package(stage: str, out: Path) -> Path:
    if out.exists():
        shutil.rmtree(out)
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    # Chalice imports the app with the caller's environment under the stage's: a local
    # shell's LOCAL_MODE would ship the /_local routes, and its endpoint nothing good.
    for local_only in ("LOCAL_MODE", "AWS_ENDPOINT_URL", "STRIPE_API_BASE"):
        env.pop(local_only, None)
    chalice = Path(sys.executable).with_name("chalice")
    subprocess.run([str(chalice), "package", "--stage", stage, "--merge-template",  # noqa: S603
                    "infra/app-merge.yaml", str(out)], cwd=ROOT, env=env, check=True)
    before, after = strip(out / "deployment.zip")
    print(f"deployment.zip: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB without the "
          "libraries the Lambda runtime provides")
    return out


if __name__ == "__main__":
    package(sys.argv[1] if len(sys.argv) > 1 else "dev",
            Path(sys.argv[2] if len(sys.argv) > 2 else "build/dev"))
