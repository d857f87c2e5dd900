"""The lock files: every requirement range in requirements*.txt is pinned by its lock with a
version the range allows and hashes to check; the dev lock runs what the functions deploy;
and the virtualenv running these tests is exactly its lock (Makefile installs it that way)."""
from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra"))
from doctor import LOCKS, requirement_lines  # noqa: E402  (infra/ is not a package)

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)\s*\\?$")


def ranges(name: str) -> list[Requirement]:
    """The requirements of a requirements file, following `-r` includes."""
    return [Requirement(line) for line in requirement_lines(name)]


def lock(name: str) -> dict[str, tuple[str, int]]:
    """{name: (version, number of hashes)} of a lock file."""
    pins: dict[str, tuple[str, int]] = {}
    current = None
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match[1])
            pins[current] = (match[2], 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


@pytest.mark.parametrize("source", sorted(LOCKS))
def test_every_range_is_pinned_by_its_lock_within_the_range(source):
    pins = lock(LOCKS[source])
    for requirement in ranges(source):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} of {source} is not in {LOCKS[source]}: make lock"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), \
            f"{LOCKS[source]} pins {name}=={version}, outside {requirement}: make lock"


@pytest.mark.parametrize("name", sorted(LOCKS.values()))
def test_every_pin_has_hashes(name):
    pins = lock(name)
    assert pins
    assert not [pin for pin, (_, hashes) in pins.items() if hashes == 0]


def test_the_dev_lock_runs_the_versions_the_functions_deploy():
    function, dev = lock("requirements.lock"), lock("requirements-dev.lock")
    differ = {name: (version, dev.get(name, ("missing",))[0])
              for name, (version, _) in function.items() if dev.get(name, ("",))[0] != version}
    assert not differ


def test_this_virtualenv_is_exactly_the_dev_lock():
    if sys.prefix == sys.base_prefix:
        pytest.fail("the tests run in .venv, which make test builds from requirements-dev.lock")
    installed = {canonicalize_name(d.metadata["Name"]): d.version
                 for d in metadata.distributions()}
    pinned = {name: version for name, (version, _) in lock("requirements-dev.lock").items()}
    assert installed == pinned
