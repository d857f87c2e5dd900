"""`make doctor`: what this machine has for `make run` and `make test`, in plain words.

Runs on whatever `python3` the machine has (nothing from the project's virtualenvs is needed,
so it works before the first install) and changes nothing. Exits non-zero only when `make run`
or `make test` cannot work as things are: no Python 3.11, a lock file that no longer pins its
requirements, too little disk. The rest (a busy port, no browser yet) is said, not failed.

    python3 infra/doctor.py
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WANTED_PYTHON = (3, 11)
LOCKS = {"requirements.txt": "requirements.lock", "requirements-dev.txt": "requirements-dev.lock",
         "requirements-checkov.txt": "requirements-checkov.lock",
         "requirements-localstack.txt": "requirements-localstack.lock"}
VENVS = {".venv": ("requirements.lock", "requirements-dev.lock"),
         ".venv-checkov": ("requirements-checkov.lock",),
         ".venv-localstack": ("requirements-localstack.lock",)}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)\s*\\?$", re.MULTILINE)
MIN_FREE_GB = 3  # the two virtualenvs, pip's cache and a packaged zip, with room to spare
API_PORT = int(os.environ.get("API_PORT") or 8000)

problems: list[str] = []


def say(status: str, what: str, words: str) -> None:
    print(f"{status:<6}{what:<18}{words}")
    if status == "FAIL":
        problems.append(what)


def version_of(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = (done.stdout or done.stderr).strip().splitlines()
    return out[0] if done.returncode == 0 and out else None


def check_python() -> str | None:
    chosen = os.environ.get("PYTHON") or shutil.which("python3.11") or shutil.which("python3")
    if not chosen:
        say("FAIL", "python", "no python3.11 (nor python3) on PATH: install Python 3.11")
        return None
    found = version_of([chosen, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
    if not found:
        say("FAIL", "python", f"{chosen} does not run")
        return None
    if tuple(int(x) for x in found.split(".")[:2]) != WANTED_PYTHON:
        say("FAIL", "python", f"{chosen} is Python {found}; 3.11 is needed (the Lambda runtime and "
            "the lock files are 3.11): install python3.11 or run make PYTHON=/path/to/python3.11")
        return None
    say("ok", "python", f"{chosen} is Python {found}, the functions' runtime version")
    return chosen


def _specifier_class():
    try:
        from packaging.requirements import Requirement
    except ImportError:
        try:
            from pip._vendor.packaging.requirements import Requirement
        except ImportError:
            return None
    return Requirement


def requirement_lines(name: str, root: Path = ROOT) -> list[str]:
    """The requirement lines of a requirements file, following `-r` includes."""
    lines = []
    for line in (root / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            lines += requirement_lines(line[3:].strip(), root)
        elif line:
            lines.append(line)
    return lines


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def check_locks() -> None:
    requirement = _specifier_class()
    for source, lock in LOCKS.items():
        if not (ROOT / lock).exists():
            say("FAIL", "locks", f"{lock} is missing: run make lock")
            continue
        pins = {_canonical(n): v for n, v in PIN.findall((ROOT / lock).read_text("utf-8"))}
        stale = []
        for line in requirement_lines(source):
            if requirement is None:
                name, spec = re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0], None
            else:
                parsed = requirement(line)
                name, spec = parsed.name, parsed.specifier
            version = pins.get(_canonical(name))
            if version is None or (spec is not None and not spec.contains(version, True)):
                stale.append(f"{line} (locked: {version or 'nothing'})")
        if stale:
            say("FAIL", "locks", f"{lock} does not satisfy {source}: {'; '.join(stale)}. "
                "Run make lock and commit the locks")
        else:
            say("ok", "locks", f"{lock} pins every requirement of {source}, with hashes")


def check_venvs() -> None:
    for venv, locks in VENVS.items():
        stamp = ROOT / venv / ".installed"
        if not stamp.exists():
            say("note", venv, "not built yet: the first make run / make test builds it from "
                f"{', '.join(locks)} (about a minute)")
            continue
        newer = [lock for lock in locks if (ROOT / lock).stat().st_mtime > stamp.stat().st_mtime]
        if newer:
            say("note", venv, f"{', '.join(newer)} changed since it was built: the next make "
                "run / make test rebuilds it")
            continue
        try:
            listed = subprocess.run(  # noqa: S603
                [str(ROOT / venv / "bin" / "python"), "-m", "pip",
                 "--disable-pip-version-check", "list", "--format=freeze"],
                capture_output=True, text=True, timeout=60, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            say("note", venv, "is there but its Python does not run: make clean, then make test")
            continue
        installed = {_canonical(n): v for n, v in PIN.findall(listed)}
        pinned = {_canonical(n): v for n, v in PIN.findall((ROOT / locks[-1]).read_text("utf-8"))}
        # `python -m venv` brings pip and setuptools of its own where a lock leaves them out.
        extra = sorted(set(installed) - set(pinned) - {"pip", "setuptools"})
        differ = sorted(n for n in pinned if installed.get(n) != pinned[n])
        if extra or differ:
            say("note", venv, f"differs from {locks[-1]} (extra: {extra or 'none'}; other "
                f"versions: {differ or 'none'}): make clean, then make test, rebuilds it")
        else:
            say("ok", venv, f"holds exactly {locks[-1]} ({len(pinned)} packages)")


def check_tools() -> None:
    node = version_of(["node", "--version"])
    npm = version_of(["npm", "--version"])
    if node and npm:
        say("ok", "node", f"node {node}, npm {npm} (for the web front end in web/)")
    else:
        say("note", "node", "node or npm is missing: the web front end (web/) will need Node 20 "
            "and npm; Debian: apt-get install nodejs npm")
    chromium = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if chromium:
        say("ok", "chromium", f"{version_of([chromium, '--version']) or chromium} (browser tests)")
    else:
        say("note", "chromium", "not installed: browser tests will need Debian's chromium "
            "(apt-get install chromium); nothing today needs it")


def check_ports() -> None:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", API_PORT))
        except OSError:
            say("note", "port", f"127.0.0.1:{API_PORT} is in use by another program: make run "
                "needs it (or set API_PORT); the tests choose free ports themselves")
            return
    say("ok", "port", f"127.0.0.1:{API_PORT} is free for make run; the tests choose free ports")


def check_disk() -> None:
    free_gb = shutil.disk_usage(ROOT).free / 1e9
    if free_gb < MIN_FREE_GB:
        say("FAIL", "disk", f"{free_gb:.1f} GB free where the checkout is; the virtualenvs and "
            f"pip's cache need about {MIN_FREE_GB} GB")
    else:
        say("ok", "disk", f"{free_gb:.0f} GB free")


def main() -> int:
    print(f"make doctor: {ROOT}")
    if check_python():
        check_venvs()
    check_locks()
    check_tools()
    check_ports()
    check_disk()
    if problems:
        print(f"\n{len(problems)} problem(s) stop make run / make test: {', '.join(problems)}")
        return 1
    print("\nNothing stops make run / make test.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
