"""Shared fixtures. The `local` stage's environment is applied before anything imports the
app, and moto is imported before any boto3 client exists."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devstack import stage  # noqa: E402

# Two webhook secrets: the current one and one being rolled out of use.
WEBHOOK_SECRETS = ("whsec_test_current", "whsec_test_previous")
stage.apply("local", {"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                      "POWERTOOLS_METRICS_NAMESPACE": "PaidresTest",
                      "STRIPE_WEBHOOK_SECRET": ",".join(WEBHOOK_SECRETS)})
os.environ.pop("AWS_ENDPOINT_URL", None)

import moto  # noqa: E402,F401  (before any boto3 client)
import pytest  # noqa: E402

from chalicelib.accounts import keys  # noqa: E402
from tests.support import install_scan_guard, scans_from_app_code  # noqa: E402

# One key set for the whole run: the in-process cache of secrets lives across tests.
SECRETS = keys.new_secrets_document()
install_scan_guard()


@pytest.fixture
def aws():
    """A fresh in-process moto with every resource of infra/resources.yaml and the secrets."""
    from moto import mock_aws

    from chalicelib import vault
    from chalicelib.config import settings
    from devstack.provision import provision

    with mock_aws():
        cfg = settings()
        resources = provision(cfg.stage, cfg.region)
        keys.install(SECRETS)
        yield resources
    vault.forget()
    keys.forget_published()


@pytest.fixture(autouse=True)
def no_scan_in_app_code():
    """Fails the test when application code called DynamoDB Scan during it."""
    scans_from_app_code().clear()
    yield
    found = list(scans_from_app_code())
    scans_from_app_code().clear()
    assert not found, "application code called Scan:\n" + "\n".join(found)
