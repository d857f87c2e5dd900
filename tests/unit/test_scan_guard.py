"""The guard that fails any test in which application code calls DynamoDB Scan."""
from __future__ import annotations

from tests.support import ROOT, scans_from_app_code


def test_a_scan_issued_from_application_code_is_caught(aws):
    from chalicelib import aws as factories
    from chalicelib.config import settings

    probe = compile("factories.dynamodb().scan(TableName=table)",
                    str(ROOT / "chalicelib" / "scan_probe.py"), "exec")
    exec(probe, {"factories": factories, "table": settings().users_table})
    caught = list(scans_from_app_code())
    scans_from_app_code().clear()  # the guard worked; let this test pass
    assert caught and "scan_probe.py" in caught[0]


def test_a_scan_from_test_code_is_allowed(aws):
    import boto3

    from chalicelib.config import settings

    boto3.client("dynamodb").scan(TableName=settings().users_table)
    assert scans_from_app_code() == []
