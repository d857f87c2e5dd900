"""docs/openapi.yaml against the running local stack, property-based (schemathesis): every
operation gets schema-valid requests, sent over HTTP with real tokens of the role it needs.
Fails on any 5xx, any response (status, headers, body) the document does not describe, and
any schema-valid request refused as invalid (400 or 413): the document states every
constraint the code checks. Refusals that depend on stored state (404 an unknown id, 409 a
wrong state, 422 a business rule over stored data, 403 a wrong secret) are the answers the
document gives for them. Derandomized with a fixed budget, so CI runs the same cases."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, seed, settings

from tests.e2e.conftest import api_session, running_stack
from tests.e2e.flows import PASSWORD, new_creator, token_for

pytestmark = pytest.mark.e2e

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
# About 300 cases in all; CONTRACT_EXAMPLES=100 CONTRACT_SEED=7 explores further by hand,
# CONTRACT_COVERAGE=1 adds schemathesis' boundary-value phase.
EXAMPLES_PER_OPERATION = int(os.environ.get("CONTRACT_EXAMPLES", "6"))
SEED = os.environ.get("CONTRACT_SEED")
COVERAGE = os.environ.get("CONTRACT_COVERAGE") == "1"

# Schema-valid data the code may refuse for reasons of stored state: ids that do not exist,
# wrong states, business rules over stored data, wrong secrets, throttling.
ACCEPTED = ["2xx", "401", "403", "404", "409", "422", "429"]

CONFIG = schemathesis.Config.from_dict({
    "generation": {"mode": "positive", "deterministic": True,
                   "max-examples": EXAMPLES_PER_OPERATION},
    "phases": {"examples": {"enabled": False}, "coverage": {"enabled": COVERAGE},
               "stateful": {"enabled": False}, "fuzzing": {"enabled": True}},
    "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}},
})

schema = schemathesis.openapi.from_path(OPENAPI, config=CONFIG)


@schema.hook
def map_query(context, query):
    """No made-up `cursor`: the document states a cursor's form, but only one the listing
    issued carries a valid MAC (the MAC is the tamper-proofing; a forged one is 400
    invalid_cursor by design, tests/unit/test_passwords_and_cursors.py)."""
    if query:
        query.pop("cursor", None)
    return query

# The few operations random valid data cannot sensibly reach, each covered elsewhere:
EXCLUDED = {
    # Only Stripe's signature over the raw body makes a request valid, and no schema can say
    # that; tests/unit/test_webhook_signature.py and the purchase e2e tests send signed ones.
    ("POST", "/webhooks/stripe"),
}


@pytest.fixture(scope="module")
def contract_stack(tmp_path_factory):
    """A stack of its own: the run registers users and creates categories and drafts. Its
    runtime file is its own too, so .local/stack.json stays the main stack's."""
    runtime = tmp_path_factory.mktemp("contract") / "stack.json"
    with running_stack({"LOCAL_STACK_FILE": str(runtime)}) as running:
        yield running


@pytest.fixture(scope="module")
def tokens(contract_stack) -> dict[str, str]:
    """A real access token per role the document names (`x-required-role`)."""
    with api_session(contract_stack.base_url) as api:
        email = f"contract-{uuid.uuid4().hex[:10]}@paidres.example.com"
        assert api.post("/auth/register", json={"email": email, "password": PASSWORD,
                                                "display_name": "Buyer"}).status_code == 201
        return {
            "user": token_for(api, email)["access_token"],
            "creator": new_creator(api),
            "admin": token_for(api, contract_stack.admin_email,
                               contract_stack.admin_password)["access_token"],
        }


@schema.exclude(method="POST", path="/webhooks/stripe").parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=SEED is None, deadline=None,
          suppress_health_check=list(HealthCheck), database=None)
@seed(int(SEED or 0))
def test_every_operation_answers_as_the_document_says(case, contract_stack, tokens):
    role = case.operation.definition.raw.get("x-required-role", "anyone")
    headers = {"Authorization": f"Bearer {tokens[role]}"} if role in tokens else {}
    case.call_and_validate(base_url=contract_stack.base_url, headers=headers, timeout=20)
