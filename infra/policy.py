"""Writes the least-privilege IAM policy of every deployed stage (.chalice/policy-STAGE.json)
from the resource names of infra/resources.yaml. Chalice's automatic policy cannot see the
calls PynamoDB makes, so it is off (`autogen_policy: false`) and these files are the policy.

    python infra/policy.py          # rewrite them; a test fails when they are out of date
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devstack.provision import physical_names  # noqa: E402

STAGES = ("dev", "staging", "prod")
TABLES = ("UsersTable", "AuthTable", "StatsTable", "CatalogTable", "ListingsTable",
          "SearchTable", "CouponsTable", "MembershipsTable", "PointsTable", "OrdersTable",
          "IdempotencyTable", "RecommendationsTable", "CommunityTable",
          "ReferralsTable")
QUEUES = ("AnalyticsQueue", "PaymentsQueue")
# Lambda sends an upload event it gave up on here, with the function's role (the on-failure
# destination of infra/app-merge.yaml); ops redrive reads it with the operator's credentials.
DESTINATIONS = ("UploadEventsDeadLetterQueue",)


def policy(stage: str) -> dict:
    names = physical_names(stage)
    tables = [f"arn:aws:dynamodb:*:*:table/{names[t]}" for t in TABLES]
    queues = [f"arn:aws:sqs:*:*:{names[q]}" for q in QUEUES]
    bucket = names["UploadsBucket"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Tables", "Effect": "Allow",
             "Action": ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query",
                        "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                        "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem",
                        "dynamodb:DescribeTable"],
             "Resource": tables + [f"{t}/index/*" for t in tables]},
            {"Sid": "Queues", "Effect": "Allow",
             "Action": ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage",
                        "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                        "sqs:GetQueueAttributes"],
             "Resource": queues},
            {"Sid": "FailureDestinations", "Effect": "Allow", "Action": ["sqs:SendMessage"],
             "Resource": [f"arn:aws:sqs:*:*:{names[q]}" for q in DESTINATIONS]},
            {"Sid": "Uploads", "Effect": "Allow",
             "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject",
                        "s3:DeleteObject", "s3:DeleteObjectVersion",
                        "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
             "Resource": [f"arn:aws:s3:::{bucket}/creators/*"]},
            {"Sid": "Secrets", "Effect": "Allow", "Action": ["ssm:GetParameter"],
             "Resource": [f"arn:aws:ssm:*:*:parameter/paidres/{stage}/secrets"]},
            {"Sid": "SecretsKey", "Effect": "Allow", "Action": ["kms:Decrypt"],
             "Resource": ["arn:aws:kms:*:*:key/*"],
             "Condition": {"StringLike": {"kms:ViaService": "ssm.*.amazonaws.com"}}},
            # The stage's data key (queues are encrypted with it), named by its alias.
            {"Sid": "DataKey", "Effect": "Allow",
             "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
             "Resource": ["arn:aws:kms:*:*:key/*"],
             "Condition": {"ForAnyValue:StringEquals": {
                 "kms:ResourceAliases": f"alias/paidres-{stage}-data"}}},
            {"Sid": "Mail", "Effect": "Allow", "Action": ["ses:SendEmail"],
             "Resource": [f"arn:aws:ses:*:*:identity/{names['MailIdentity']}"]},
            {"Sid": "Logs", "Effect": "Allow",
             "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": [f"arn:aws:logs:*:*:log-group:/aws/lambda/paidres-{stage}-*"]},
        ],
    }


def path(stage: str) -> Path:
    return ROOT / ".chalice" / f"policy-{stage}.json"


def render(stage: str) -> str:
    return json.dumps(policy(stage), indent=2) + "\n"


if __name__ == "__main__":
    for name in STAGES:
        path(name).write_text(render(name), encoding="utf-8")
        print(f"wrote {path(name).relative_to(ROOT)}")
