"""`make doctor` says in plain words what stops make run / make test, and only that fails it."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra"))
from doctor import LOCKS  # noqa: E402  (infra/ is not a package)

FILES = ("infra/doctor.py", *LOCKS, *LOCKS.values())


def doctor(root: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(root / "infra" / "doctor.py")],
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, **env})


def checkout_copy(tmp_path: Path) -> Path:
    for name in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path


def test_this_checkout_has_nothing_that_stops_make_test():
    done = doctor(ROOT)
    assert done.returncode == 0, done.stdout
    assert "Python 3.11" in done.stdout
    assert "requirements.lock pins every requirement of requirements.txt" in done.stdout
    assert "Nothing stops make run / make test." in done.stdout


def test_a_range_the_lock_does_not_satisfy_fails_and_says_make_lock(tmp_path):
    root = checkout_copy(tmp_path)
    (root / "requirements.txt").write_text("msgspec>=99\n", encoding="utf-8")
    done = doctor(root)
    assert done.returncode == 1
    assert "requirements.lock does not satisfy requirements.txt: msgspec>=99 (locked: 0." \
        in done.stdout
    assert "Run make lock" in done.stdout


def test_a_python_other_than_3_11_fails_with_what_to_do(tmp_path):
    root = checkout_copy(tmp_path)
    fake = tmp_path / "python3.12"
    fake.write_text("#!/bin/sh\necho 3.12.1\n", encoding="utf-8")
    fake.chmod(0o755)
    done = doctor(root, PYTHON=str(fake))
    assert done.returncode == 1
    assert f"{fake} is Python 3.12.1; 3.11 is needed" in done.stdout
    assert "make PYTHON=/path/to/python3.11" in done.stdout
