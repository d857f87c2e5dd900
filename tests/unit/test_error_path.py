"""One error path: services raise domain errors, the edge alone turns them into envelopes."""
from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import chalicelib
from chalicelib.errors import DomainError
from chalicelib.web import STATUS_BY_KIND

ROOT = Path(__file__).resolve().parents[2]


def _all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _all_subclasses(sub)
    return found


def test_every_domain_error_has_a_code_and_a_status():
    # Given every module of chalicelib imported, so each error class is defined
    for module in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
        importlib.import_module(module.name)
    # Then every domain error maps to a status at the edge and carries a stable code
    errors = _all_subclasses(DomainError)
    assert len(errors) > 20
    for error in errors:
        assert error.kind in STATUS_BY_KIND, error
        assert error.code and error.code.islower(), error


def test_no_route_builds_its_own_error_envelope():
    # Given the modules that hold routes
    modules = [ROOT / "app.py", *sorted((ROOT / "chalicelib" / "blueprints").glob("*.py"))]
    # Then none calls envelope() itself: errors reach the client only through the edge
    for path in modules:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and getattr(node.func, "id", getattr(node.func, "attr", None)) == "envelope"]
        assert not calls, f"{path.name} builds an envelope at line {calls[0].lineno}"
