"""Creates the stateful resources of `infra/resources.yaml` on the configured endpoint (the
embedded moto server, or moto in-process in tests). The template is the only list of tables,
queues and buckets: nothing here names one.

    python -m devstack.provision   # against AWS_ENDPOINT_URL, for the STAGE in the env
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from chalicelib import aws

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "infra" / "resources.yaml"
ACCOUNT_ID = "123456789012"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation short tags (!Ref, !Sub, ...) into their
    long form ({"Ref": ...}, {"Fn::Sub": ...})."""


def _tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict:
    # _CfnLoader is SafeLoader plus constructors that only build dicts.
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506


# What `!Ref AWS::NoValue` resolves to: the property holding it is left out.
NO_VALUE = object()


class Resolver:
    """Evaluates the intrinsic functions the stateful template uses."""

    def __init__(self, template: dict, params: dict[str, str], region: str) -> None:
        self.template = template
        self.values = {name: str(spec.get("Default", "")) for name, spec in
                       template.get("Parameters", {}).items()}
        self.values.update(params)
        self.values.update({"AWS::Region": region, "AWS::AccountId": ACCOUNT_ID,
                            "AWS::Partition": "aws", "AWS::StackName": "local"})
        self.refs: dict[str, str] = {}
        self.attrs: dict[tuple[str, str], str] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref" and arg == "AWS::NoValue":
                return NO_VALUE
            if key == "Ref":
                value = self.values[arg] if arg in self.values else self.refs[arg]
                declared = self.template.get("Parameters", {}).get(arg, {})
                if declared.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                    return [v.strip() for v in value.split(",")]
                return value
            if key == "Fn::GetAtt":
                return self.attrs[(arg[0], arg[1])]
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))
                for name, val in {**self.values, **self.refs, **extra}.items():
                    text = text.replace("${" + name + "}", str(val))
                return text
            if key == "Fn::Join":
                return arg[0].join(str(self(v)) for v in arg[1])
            if key == "Fn::If":
                name, then, otherwise = arg
                return self(then if self.condition(name) else otherwise)
        resolved = {k: self(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def condition(self, name: str) -> bool:
        """A condition of the template's Conditions (Fn::Equals, Fn::Not, Condition)."""
        return bool(self._truth(self.template["Conditions"][name]))

    def _truth(self, value: Any) -> bool:
        (key, arg), = value.items()
        if key == "Fn::Equals":
            return str(self(arg[0])) == str(self(arg[1]))
        if key == "Fn::Not":
            return not self._truth(arg[0])
        if key == "Condition":
            return self.condition(arg)
        raise ValueError(f"condition function {key} is not supported locally")


def physical_names(stage: str, template: dict | None = None,
                   region: str = "us-east-1") -> dict[str, str]:
    """Logical id → physical name of every named resource, for `stage`, without creating
    anything (used to check .chalice/config.json against the template)."""
    template = template or load_template()
    resolve = Resolver(template, {"Stage": stage}, region)
    names = {}
    for logical, res in template["Resources"].items():
        props = res.get("Properties", {})
        for field in ("TableName", "BucketName", "QueueName", "EmailIdentity"):
            if field in props:
                names[logical] = resolve(props[field])
    return names


def _table(props: dict) -> str:
    ddb = aws.dynamodb()
    kwargs: dict[str, Any] = {k: props[k] for k in (
        "TableName", "AttributeDefinitions", "KeySchema", "BillingMode") if k in props}
    for indexes in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(indexes):
            kwargs[indexes] = props[indexes]
    if "DeletionProtectionEnabled" in props:
        kwargs["DeletionProtectionEnabled"] = props["DeletionProtectionEnabled"]
    if props.get("SSESpecification", {}).get("SSEEnabled"):
        kwargs["SSESpecification"] = {"Enabled": True}
    ddb.create_table(**kwargs)
    name = props["TableName"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    pitr = props.get("PointInTimeRecoverySpecification")
    if pitr:
        ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification=pitr)
    return name


def _bucket(props: dict, region: str) -> str:
    s3 = aws.s3()
    name = props["BucketName"]
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props[
            "PublicAccessBlockConfiguration"])
    if "BucketEncryption" in props:
        rules = [{"ApplyServerSideEncryptionByDefault": r["ServerSideEncryptionByDefault"]}
                 for r in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]]
        s3.put_bucket_encryption(Bucket=name,
                                 ServerSideEncryptionConfiguration={"Rules": rules})
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props[
            "VersioningConfiguration"])
    if "CorsConfiguration" in props:
        # CloudFormation's names differ from the S3 API's for two fields.
        renamed = {"ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds"}
        rules = [{renamed.get(k, k): v for k, v in rule.items()}
                 for rule in props["CorsConfiguration"]["CorsRules"]]
        s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": rules})
    if "LifecycleConfiguration" in props:
        rules = []
        for rule in props["LifecycleConfiguration"]["Rules"]:
            out: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"],
                                   "Filter": {"Prefix": rule.get("Prefix", "")}}
            if "AbortIncompleteMultipartUpload" in rule:
                out["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
            if "ExpirationInDays" in rule:
                out["Expiration"] = {"Days": rule["ExpirationInDays"]}
            rules.append(out)
        s3.put_bucket_lifecycle_configuration(Bucket=name,
                                              LifecycleConfiguration={"Rules": rules})
    if "NotificationConfiguration" in props:
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration=_notifications(props[
                "NotificationConfiguration"]))
    return name


def _notifications(config: dict) -> dict:
    """CloudFormation's notification shape in the S3 API's words. Lambda targets are left to
    the event pump (devstack/pump.py), which invokes their handlers in process: moto knows
    no such function."""
    queues = []
    for entry in config.get("QueueConfigurations", []):
        out: dict[str, Any] = {"QueueArn": entry["Queue"], "Events": [entry["Event"]]}
        rules = entry.get("Filter", {}).get("S3Key", {}).get("Rules")
        if rules:
            out["Filter"] = {"Key": {"FilterRules": rules}}
        queues.append(out)
    return {"QueueConfigurations": queues}


def _queue(props: dict) -> tuple[str, str]:
    sqs = aws.sqs()
    attributes = {}
    for field in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds",
                  "ReceiveMessageWaitTimeSeconds", "SqsManagedSseEnabled"):
        if field in props:
            attributes[field] = str(props[field]).lower() if isinstance(props[field], bool) \
                else str(props[field])
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    url = sqs.create_queue(QueueName=props["QueueName"], Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    return url, arn


def _depends_on(value: Any) -> set[str]:
    if isinstance(value, list):
        return set().union(*(_depends_on(v) for v in value)) if value else set()
    if isinstance(value, dict):
        found: set[str] = set()
        for key, arg in value.items():
            if key == "Fn::GetAtt":
                found.add(arg[0])
            elif key == "Ref" and isinstance(arg, str):
                found.add(arg)
            else:
                found |= _depends_on(arg)
        return found
    return set()


# Resources the local stack deliberately does not create. The bucket policy denies plain
# HTTP, and the embedded moto server is plain HTTP on loopback (moto applies bucket policies
# without knowing the transport). Backup plans have nothing to back up in memory. The data
# key: moto's tables and queues are encrypted by nothing anyway.
LOCAL_SKIPS = {"AWS::KMS::Key", "AWS::KMS::Alias", "AWS::S3::BucketPolicy",
               "AWS::Backup::BackupVault", "AWS::Backup::BackupPlan",
               "AWS::Backup::BackupSelection", "AWS::IAM::Role"}


def _explicit(resource: dict) -> set[str]:
    depends = resource.get("DependsOn", [])
    return {depends} if isinstance(depends, str) else set(depends)


def provision(stage: str, region: str, template: dict | None = None) -> dict[str, str]:
    """Create every resource of the template for `stage`; returns logical id → name or URL."""
    template = template or load_template()
    resources = template["Resources"]
    resolve = Resolver(template, {"Stage": stage}, region)
    done: dict[str, str] = {}
    pending = dict(resources)
    while pending:
        ready = [name for name, res in pending.items()
                 if (_depends_on(res.get("Properties", {})) | _explicit(res)) & set(resources)
                 <= set(done)]
        if not ready:
            raise ValueError(f"circular references among {sorted(pending)}")
        for logical in ready:
            res = pending.pop(logical)
            kind = res["Type"]
            if kind in LOCAL_SKIPS:
                # No local counterpart: see LOCAL_SKIPS.
                done[logical] = resolve.refs[logical] = logical
                continue
            props = resolve(res.get("Properties", {}))
            if kind == "AWS::DynamoDB::Table":
                done[logical] = resolve.refs[logical] = _table(props)
                resolve.attrs[(logical, "Arn")] = (
                    f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{props['TableName']}")
            elif kind == "AWS::S3::Bucket":
                done[logical] = resolve.refs[logical] = _bucket(props, region)
                resolve.attrs[(logical, "Arn")] = f"arn:aws:s3:::{props['BucketName']}"
            elif kind == "AWS::SQS::Queue":
                url, arn = _queue(props)
                done[logical] = resolve.refs[logical] = url
                resolve.attrs[(logical, "Arn")] = arn
                resolve.attrs[(logical, "QueueName")] = props["QueueName"]
            elif kind == "AWS::SQS::QueuePolicy":
                for url in props["Queues"]:
                    aws.sqs().set_queue_attributes(QueueUrl=url, Attributes={
                        "Policy": json.dumps(props["PolicyDocument"])})
                done[logical] = resolve.refs[logical] = logical
            elif kind == "AWS::SES::EmailIdentity":
                aws.ses().verify_email_identity(EmailAddress=props["EmailIdentity"])
                done[logical] = resolve.refs[logical] = props["EmailIdentity"]
            else:
                raise ValueError(f"{logical}: resource type {kind} has no local counterpart; "
                                 "keep only stateful resources in infra/resources.yaml")
    return done


if __name__ == "__main__":
    from chalicelib.config import settings

    cfg = settings()
    for logical, name in provision(cfg.stage, cfg.region).items():
        print(f"{logical}: {name}")
