"""`make restore-drill` backs up every table, restores it, and finds the copies identical."""
from __future__ import annotations

import importlib.util

from devstack.provision import load_template
from tests.support import ROOT


def test_every_table_restores_identical_from_its_backup():
    spec = importlib.util.spec_from_file_location("restore_drill",
                                                  ROOT / "infra" / "restore_drill.py")
    drill = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(drill)
    lines: list[str] = []
    assert drill.drill(out=lines.append)
    tables = [r for r in load_template()["Resources"].values()
              if r["Type"] == "AWS::DynamoDB::Table"]
    assert len(lines) == len(tables) and all(line.endswith("identical") for line in lines)
    orders = next(line for line in lines if "-orders:" in line)
    assert not orders.split(": ")[1].startswith("0 items")
