"""Route modules reach services through `web.lazy`, typed by an import only type checkers run."""
from __future__ import annotations

import ast
import json
import subprocess
import sys

from tests.support import ROOT


def _lazy_bindings(tree: ast.Module) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(name, module) bound by `name = lazy("module")` anywhere, and the same pairs as seen
    by type checkers: the `if TYPE_CHECKING:` imports whose `else:` holds those calls."""
    lazy_calls = [(node.targets[0].id, node.value.args[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                  and getattr(node.value.func, "id", None) == "lazy"]
    typed = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"):
            continue
        if not any(isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
                   and getattr(n.value.func, "id", None) == "lazy" for n in node.orelse):
            continue
        for imp in node.body:
            assert isinstance(imp, ast.ImportFrom), ast.unparse(imp)
            typed += [(a.asname or a.name, f"{imp.module}.{a.name}") for a in imp.names]
    return lazy_calls, typed


def test_every_lazy_service_is_typed_as_the_module_it_loads():
    # Given every module of the app that binds a service with lazy()
    checked = 0
    for path in sorted((ROOT / "chalicelib").rglob("*.py")):
        if path.name == "web.py":
            continue
        lazy_calls, typed = _lazy_bindings(ast.parse(path.read_text(encoding="utf-8")))
        # Then what mypy and editors see under TYPE_CHECKING is exactly what runs
        assert sorted(lazy_calls) == sorted(typed), path.relative_to(ROOT)
        checked += len(lazy_calls)
    assert checked >= 15


def test_a_pairing_that_drifted_is_caught():
    # Given a route module whose typed import and lazy() name different modules
    source = (
        "if TYPE_CHECKING:\n"
        "    from chalicelib.accounts import profiles\n"
        "else:\n"
        "    profiles = lazy('chalicelib.accounts.recovery')\n"
    )
    # When both bindings are read, then they differ
    lazy_calls, typed = _lazy_bindings(ast.parse(source))
    assert lazy_calls == [("profiles", "chalicelib.accounts.recovery")]
    assert typed == [("profiles", "chalicelib.accounts.profiles")]


PROBE = """
import json, sys
from chalicelib.web import lazy
service = lazy("chalicelib.accounts.recovery")
before = "chalicelib.accounts.recovery" in sys.modules
reset = service.reset_password
from chalicelib.accounts import recovery
print(json.dumps({"before": before, "after": "chalicelib.accounts.recovery" in sys.modules,
                  "same": reset is recovery.reset_password, "name": service.__name__}))
"""


def test_a_lazy_module_is_imported_by_its_first_attribute_access_not_before():
    # Given a fresh process, when a lazy service is bound then one of its functions is read
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # Then the module loads only at that access, and the proxy hands out its real functions
    assert seen == {"before": False, "after": True, "same": True,
                    "name": "chalicelib.accounts.recovery"}
