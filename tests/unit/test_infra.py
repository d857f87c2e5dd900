"""infra/resources.yaml against itself, AWS good practice, cfn-lint, and the names that
.chalice/config.json gives each stage."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from devstack.provision import TEMPLATE, load_template, physical_names

ROOT = Path(__file__).resolve().parents[2]
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
STAGES = sorted(CONFIG["stages"])
TEMPLATE_DATA = load_template()
RESOURCES = TEMPLATE_DATA["Resources"]

# Environment variable of the app → logical id of the resource it names.
NAMED_BY_ENV = {
    "USERS_TABLE": "UsersTable",
    "AUTH_TABLE": "AuthTable",
    "STATS_TABLE": "StatsTable",
    "CATALOG_TABLE": "CatalogTable",
    "LISTINGS_TABLE": "ListingsTable",
    "SEARCH_TABLE": "SearchTable",
    "COUPONS_TABLE": "CouponsTable",
    "MEMBERSHIPS_TABLE": "MembershipsTable",
    "POINTS_TABLE": "PointsTable",
    "RECOMMENDATIONS_TABLE": "RecommendationsTable",
    "COMMUNITY_TABLE": "CommunityTable",
    "REFERRALS_TABLE": "ReferralsTable",
    "ORDERS_TABLE": "OrdersTable",
    "IDEMPOTENCY_TABLE": "IdempotencyTable",
    "UPLOADS_BUCKET": "UploadsBucket",
    "ANALYTICS_QUEUE": "AnalyticsQueue",
    "UPLOAD_EVENTS_DLQ": "UploadEventsDeadLetterQueue",
    "PAYMENTS_QUEUE": "PaymentsQueue",
}


def of_type(kind: str) -> dict[str, dict]:
    return {name: res for name, res in RESOURCES.items() if res["Type"] == kind}


def stage_env(stage: str) -> dict[str, str]:
    return {**CONFIG.get("environment_variables", {}),
            **CONFIG["stages"][stage].get("environment_variables", {})}


def redrive_target(queue: dict) -> str | None:
    """Logical id of the queue a RedrivePolicy sends to (`!GetAtt X.Arn`), if any."""
    target = queue.get("Properties", {}).get("RedrivePolicy", {}).get("deadLetterTargetArn")
    if isinstance(target, dict) and "Fn::GetAtt" in target:
        logical, attribute = target["Fn::GetAtt"]
        return logical if attribute == "Arn" else None
    return None


# ---------------------------------------------------------------- config.json ↔ template

@pytest.mark.parametrize("stage", STAGES)
def test_stage_config_names_the_resources_the_template_creates_for_that_stage(stage):
    env = stage_env(stage)
    names = physical_names(stage)
    wrong = {var: (env.get(var), names.get(logical)) for var, logical in NAMED_BY_ENV.items()
             if env.get(var) != names.get(logical)}
    assert not wrong, f"{stage}: env var → (config.json, template): {wrong}"
    assert env["STAGE"] == stage


@pytest.mark.parametrize("stage", STAGES)
def test_stage_mail_from_is_the_template_mail_identity(stage):
    default = TEMPLATE_DATA["Parameters"]["MailFrom"]["Default"]
    assert stage_env(stage)["MAIL_FROM"] == default
    assert physical_names(stage)["MailIdentity"] == default


def test_every_configured_stage_is_an_allowed_template_stage():
    allowed = TEMPLATE_DATA["Parameters"]["Stage"]["AllowedValues"]
    assert set(STAGES) <= set(allowed), set(STAGES) - set(allowed)


# ---------------------------------------------------------------- queues

def failure_destinations() -> set[str]:
    """Logical ids of the queues an asynchronously invoked function of the app stack sends
    the events it gave up on (AWS::Lambda::EventInvokeConfig in infra/app-merge.yaml)."""
    merge = load_template(ROOT / "infra" / "app-merge.yaml")
    by_name = {name: logical for logical, name in physical_names("dev").items()}
    found = set()
    for res in merge["Resources"].values():
        if res.get("Type") != "AWS::Lambda::EventInvokeConfig":
            continue
        arn = res["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]["Fn::Sub"]
        found.add(by_name[arn.rsplit(":", 1)[-1].replace("${AppName}-${Stage}", "paidres-dev")])
    return found


def test_every_work_queue_redrives_to_a_dead_letter_queue_of_the_template():
    queues = of_type("AWS::SQS::Queue")
    dead_letter = {redrive_target(q) for q in queues.values()} - {None}
    # An on-failure destination is a dead-letter queue too, of a function rather than a queue.
    assert failure_destinations() == {"UploadEventsDeadLetterQueue"}
    dead_letter |= failure_destinations()
    work = sorted(set(queues) - dead_letter)
    assert work, "no work queue in the template"
    wrong = []
    for name in work:
        policy = queues[name].get("Properties", {}).get("RedrivePolicy")
        target = redrive_target(queues[name])
        if not policy:
            wrong.append(f"{name}: no RedrivePolicy")
        elif target not in queues:
            wrong.append(f"{name}: dead-letter target {target!r} is not a queue of the template")
        elif int(policy.get("maxReceiveCount", 0)) < 3:
            wrong.append(f"{name}: maxReceiveCount {policy.get('maxReceiveCount')} < 3")
    assert not wrong, "\n".join(wrong)


def test_dead_letter_queues_keep_messages_at_least_as_long_as_their_sources():
    queues = of_type("AWS::SQS::Queue")
    default = 345600  # SQS default retention: 4 days
    for name, queue in queues.items():
        target = redrive_target(queue)
        if target:
            kept = queues[target]["Properties"].get("MessageRetentionPeriod", default)
            assert kept >= queue["Properties"].get("MessageRetentionPeriod", default), name


def test_every_consumed_queue_has_visibility_six_times_its_consumers_timeout():
    """Read from the app itself: every @app.on_sqs_message, its queue, its function's timeout
    (per stage, per function or global, as Chalice resolves it)."""
    from chalice.app import SQSEventConfig

    from app import app

    sources = [s for s in app.event_sources if isinstance(s, SQSEventConfig)]
    assert len(sources) >= 2
    logical_by_name = {physical_names("local")[k]: k for k in RESOURCES
                       if RESOURCES[k]["Type"] == "AWS::SQS::Queue"}
    for source in sources:
        for stage, stage_config in CONFIG["stages"].items():
            function = {**CONFIG.get("lambda_functions", {}).get(source.name, {}),
                        **stage_config.get("lambda_functions", {}).get(source.name, {})}
            timeout = function.get("lambda_timeout", stage_config.get(
                "lambda_timeout", CONFIG.get("lambda_timeout", 60)))
            queue = RESOURCES[logical_by_name[source.queue]]["Properties"]
            assert queue.get("VisibilityTimeout", 30) >= 6 * timeout, (source.name, stage)


def test_every_queue_is_encrypted():
    for name, queue in of_type("AWS::SQS::Queue").items():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, name


# ---------------------------------------------------------------- tables and bucket

def test_every_table_is_on_demand_recoverable_encrypted_and_protected():
    tables = of_type("AWS::DynamoDB::Table")
    assert set(tables) >= {"UsersTable", "AuthTable", "StatsTable"}
    wrong = []
    for name, table in tables.items():
        props = table["Properties"]
        if props.get("BillingMode") != "PAY_PER_REQUEST":
            wrong.append(f"{name}: BillingMode {props.get('BillingMode')!r}")
        if props.get("PointInTimeRecoverySpecification", {}).get(
                "PointInTimeRecoveryEnabled") is not True:
            wrong.append(f"{name}: point-in-time recovery off")
        if props.get("SSESpecification", {}).get("SSEEnabled") is not True:
            wrong.append(f"{name}: SSE off")
        if props.get("DeletionProtectionEnabled") is not True:
            wrong.append(f"{name}: deletion protection off")
        if table.get("DeletionPolicy") != "Retain" or \
                table.get("UpdateReplacePolicy") != "Retain":
            wrong.append(f"{name}: not retained on stack delete/replace")
    assert not wrong, "\n".join(wrong)


def test_every_table_defines_exactly_the_attributes_its_keys_use():
    for name, table in of_type("AWS::DynamoDB::Table").items():
        props = table["Properties"]
        defined = {a["AttributeName"] for a in props["AttributeDefinitions"]}
        keyed = {k["AttributeName"] for k in props["KeySchema"]}
        for index in props.get("GlobalSecondaryIndexes", []) + \
                props.get("LocalSecondaryIndexes", []):
            keyed |= {k["AttributeName"] for k in index["KeySchema"]}
        assert defined == keyed, f"{name}: defined {sorted(defined)}, keyed {sorted(keyed)}"


def test_every_index_the_code_queries_is_in_the_template():
    from pynamodb.indexes import Index

    from chalicelib.accounts.store import UserRecord
    from chalicelib.catalog.store import AuditRecord, ListingCard, ResourceRecord

    for model, logical in ((UserRecord, "UsersTable"), (ResourceRecord, "CatalogTable"),
                           (AuditRecord, "CatalogTable"), (ListingCard, "ListingsTable")):
        props = RESOURCES[logical]["Properties"]
        def keys(schema: list[dict]) -> list[dict]:
            return sorted(schema, key=lambda k: k["KeyType"])

        indexes = {i["IndexName"]: (keys(i["KeySchema"]), i["Projection"])
                   for i in props.get("GlobalSecondaryIndexes", []) +
                   props.get("LocalSecondaryIndexes", [])}
        used = [v for v in vars(model).values() if isinstance(v, Index)]
        assert used, model
        for index in used:
            schema = index._get_schema()
            assert indexes.get(schema["index_name"]) == (keys(schema["key_schema"]),
                                                         schema["projection"]), schema


def test_uploads_bucket_blocks_public_access_and_is_encrypted():
    for name, bucket in of_type("AWS::S3::Bucket").items():
        props = bucket["Properties"]
        block = props.get("PublicAccessBlockConfiguration", {})
        assert all(block.get(flag) is True for flag in (
            "BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls",
            "RestrictPublicBuckets")), f"{name}: {block}"
        assert props.get("BucketEncryption"), name
        assert bucket.get("DeletionPolicy") == "Retain", name


# ---------------------------------------------------------------- cfn-lint

def test_cfn_lint_reports_no_errors():
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(TEMPLATE, config=ManualArgs(regions=["us-east-1"]))
    for match in matches:
        if not match.rule.id.startswith("E"):
            print(f"cfn-lint {match.rule.id} line {match.linenumber}: {match.message}")
    errors = [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches
              if m.rule.id.startswith("E")]
    assert not errors, "cfn-lint errors in infra/resources.yaml:\n" + "\n".join(errors)


# ---------------------------------------------------------------- deployment hardening

def test_tables_queues_and_backups_are_encrypted_with_the_stages_own_kms_key():
    key = {"Ref": "DataKey"}
    for name, table in of_type("AWS::DynamoDB::Table").items():
        assert table["Properties"]["SSESpecification"] == {
            "SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": key}, name
    for name, queue in of_type("AWS::SQS::Queue").items():
        assert queue["Properties"]["KmsMasterKeyId"] == key, name
    (vault,) = of_type("AWS::Backup::BackupVault").values()
    assert vault["Properties"]["EncryptionKeyArn"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    (data_key,) = of_type("AWS::KMS::Key").values()
    assert data_key["Properties"]["EnableKeyRotation"] is True


def test_the_bucket_requires_tls_and_its_own_encryption():
    (policy,) = of_type("AWS::S3::BucketPolicy").values()
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    tls = statements["DenyInsecureTransport"]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}}
    assert statements["DenyOtherEncryption"]["Effect"] == "Deny"


def test_the_bucket_allows_browser_uploads_from_the_storefront_and_exposes_etags():
    (bucket,) = of_type("AWS::S3::Bucket").values()
    (rule,) = bucket["Properties"]["CorsConfiguration"]["CorsRules"]
    assert {"POST", "PUT"} <= set(rule["AllowedMethods"])
    assert rule["AllowedOrigins"] == {"Ref": "StorefrontOrigins"}
    assert "ETag" in rule["ExposedHeaders"]
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any("AbortIncompleteMultipartUpload" in r for r in rules)


def test_daily_backups_cover_every_table_but_the_idempotency_records():
    (selection,) = of_type("AWS::Backup::BackupSelection").values()
    covered = {r["Fn::GetAtt"][0] for r in selection["Properties"]["BackupSelection"][
        "Resources"]}
    tables = set(of_type("AWS::DynamoDB::Table"))
    assert covered == tables - {"IdempotencyTable"}


def test_each_stage_policy_is_generated_from_the_template_and_grants_no_wildcard_actions():
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("policy", ROOT / "infra" / "policy.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    for stage in generator.STAGES:
        assert config["stages"][stage]["autogen_policy"] is False
        file = ROOT / ".chalice" / config["stages"][stage]["iam_policy_file"]
        assert file.read_text() == generator.render(stage), "run python infra/policy.py"
        for statement in json.loads(file.read_text())["Statement"]:
            assert all("*" not in action for action in statement["Action"]), statement
            mail = physical_names(stage)["MailIdentity"]
            for resource in statement["Resource"]:
                # Every resource is the stage's own, but the sender identity stages share.
                assert stage in resource or resource.endswith(mail) \
                    or "Condition" in statement, (stage, resource)
