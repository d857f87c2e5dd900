"""`make restore-drill` backs up every table, restores it, and finds the copies identical."""
from __future__ import annotations

import importlib.util

from tests.support import ROOT


def test_every_table_restores_identical_from_its_backup():
    spec = importlib.util.spec_from_file_location("restore_drill",
                                                  ROOT / "infra" / "restore_drill.py")
    drill = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(drill)
    lines: list[str] = []
    assert drill.drill(out=lines.append)
    assert len(lines) == 8 and all(line.endswith("identical") for line in lines)
    orders = next(line for line in lines if "-orders:" in line)
    assert not orders.split(": ")[1].startswith("0 items")
