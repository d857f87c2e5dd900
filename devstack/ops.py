"""Operator jobs, against the running local stack (`make run`) or, with STAGE set, a deployed
stage with the caller's AWS credentials.

    python -m devstack.ops reconcile [--ahead MINUTES]   # make reconcile
    python -m devstack.ops dlq list|redrive [QUEUE]      # make payments-dlq / -redrive
    python -m devstack.ops migrate [--dry-run]           # make migrate [DRY_RUN=1]
    python -m devstack.ops admin EMAIL                   # first admin (password asked)
    python -m devstack.ops seed-categories               # the starting category tree
    python -m devstack.ops sync-plans                    # plans (seeded if missing) to Stripe

`reconcile` runs what the 15-minute schedule runs; `--ahead` pretends the clock is that many
minutes later, so a local order can be reconciled without waiting 35 minutes. `dlq` lists a
dead-letter queue's messages or moves them back to their queue (default: payments); for
`upload_events`, whose function S3 invokes without a queue, it lists the events Lambda gave up
on and invokes the function again with each.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from devstack import stage
from devstack.stack import RUNTIME


def _environment() -> None:
    if os.environ.get("STAGE") and os.environ["STAGE"] != "local":
        stage.load(os.environ["STAGE"])
        return
    if not RUNTIME.exists():
        sys.exit("No local stack is running (start it with `make run`), and STAGE is not set.")
    info = json.loads(RUNTIME.read_text(encoding="utf-8"))
    stage.apply("local", {"AWS_ENDPOINT_URL": info["aws_endpoint_url"],
                          "STRIPE_API_BASE": info["stripe_api_base"]})


def reconcile(ahead_minutes: int) -> None:
    """Every derived view against its source of truth, repaired (chalicelib.reconcile)."""
    from chalicelib.reconcile import run

    report = run(now=time.time() + ahead_minutes * 60)
    print(json.dumps(report, ensure_ascii=False))
    print(f"{len(report['differences'])} differences found and repaired", file=sys.stderr)


def _summary(message: dict) -> str:
    """A Stripe event's id and type, or the start of any other body."""
    try:
        body = json.loads(message["Body"])
        return f"{body['id']} {body['type']}"
    except (ValueError, KeyError, TypeError):
        return message["Body"][:100]


def _summary_of_failure(message: dict) -> str:
    """An upload event Lambda gave up on (its destination record): the key and the error."""
    try:
        record = json.loads(message["Body"])
        keys = [r["s3"]["object"]["key"] for r in record["requestPayload"]["Records"]]
        error = record.get("responsePayload") or {}
        return f"{' '.join(keys)}  {error.get('errorType', '')}: {error.get('errorMessage', '')}"
    except (ValueError, KeyError, TypeError):
        return message["Body"][:100]


class _Reinvoke:
    """Where redriven upload events go: the function S3 invokes, asynchronously again (on a
    stage), or the local event pump's queue of invocations for the bucket (local stack)."""

    def __init__(self) -> None:
        from chalicelib import aws
        from chalicelib.config import settings

        cfg = settings()
        self.local = cfg.local_mode
        if self.local:
            from devstack.pump import s3_queue_name

            self.sqs = aws.sqs()
            self.url = self.sqs.get_queue_url(QueueName=s3_queue_name(cfg.uploads_bucket))[
                "QueueUrl"]
        else:
            import boto3

            self.lam = boto3.client("lambda", region_name=cfg.region)
            self.function = f"paidres-{cfg.stage}-upload_events:live"

    def __call__(self, body: str) -> None:
        payload = json.dumps(json.loads(body)["requestPayload"])
        if self.local:
            self.sqs.send_message(QueueUrl=self.url, MessageBody=payload)
        else:
            self.lam.invoke(FunctionName=self.function, InvocationType="Event",
                            Payload=payload.encode())


def dlq(action: str, queue: str) -> None:
    from chalicelib import aws
    from chalicelib.config import settings

    sqs = aws.sqs()
    if queue == "upload_events":
        # No queue in front of the function: its dead letters are Lambda's on-failure records.
        name = "upload_events"
        dead = sqs.get_queue_url(QueueName=settings().upload_events_dlq)["QueueUrl"]
        summary, send = _summary_of_failure, _Reinvoke() if action == "redrive" else None
    else:
        name = getattr(settings(), f"{queue}_queue")
        source = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        dead = sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"]
        summary, send = _summary, None
    moved = 0
    while True:
        got = sqs.receive_message(QueueUrl=dead, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                  VisibilityTimeout=0 if action == "list" else 30,
                                  AttributeNames=["All"], MessageAttributeNames=["All"])
        messages = got.get("Messages", [])
        if not messages:
            break
        for message in messages:
            if action == "list":
                attributes = message["Attributes"]
                sent = time.gmtime(int(attributes["SentTimestamp"]) / 1000)
                print(f"{message['MessageId']}  sent {time.strftime('%Y-%m-%d %H:%M:%S', sent)}"
                      f"  tries {attributes['ApproximateReceiveCount']}  {summary(message)}")
                continue
            if send is not None:
                send(message["Body"])
            else:
                sqs.send_message(QueueUrl=source, MessageBody=message["Body"],
                                 MessageAttributes=message.get("MessageAttributes", {}))
            sqs.delete_message(QueueUrl=dead, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
        if action == "list":
            break
    if action == "redrive":
        target = "the upload_events function" if queue == "upload_events" else name
        print(f"moved {moved} message(s) from {name}-dlq back to {target}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.ops")
    jobs = parser.add_subparsers(dest="job", required=True)
    rec = jobs.add_parser("reconcile")
    rec.add_argument("--ahead", type=int, default=0, metavar="MINUTES")
    dead = jobs.add_parser("dlq")
    dead.add_argument("action", choices=["list", "redrive"])
    dead.add_argument("queue", nargs="?", default="payments",
                      choices=["payments", "analytics", "upload_events"])
    mig = jobs.add_parser("migrate")
    mig.add_argument("--dry-run", action="store_true")
    first = jobs.add_parser("admin")
    first.add_argument("email")
    jobs.add_parser("seed-categories")
    jobs.add_parser("sync-plans")
    args = parser.parse_args(argv)
    _environment()
    if args.job == "reconcile":
        reconcile(args.ahead)
    elif args.job == "admin":
        import getpass

        from chalicelib.accounts import registration

        password = os.environ.get("ADMIN_PASSWORD") or getpass.getpass("Admin password: ")
        user = registration.ensure_admin(args.email, password, "Admin")
        print(f"{user.email} is an admin ({user.user_id})")
    elif args.job == "seed-categories":
        from chalicelib.catalog.seed import seed_categories

        seed_categories()
        print("categories seeded")
    elif args.job == "sync-plans":
        from chalicelib.memberships import plans

        made = plans.seed(with_stripe=True)
        print(f"plans synced to Stripe (seeded: {', '.join(made) or 'none'})")
    elif args.job == "migrate":
        from chalicelib import migrations

        print(json.dumps(migrations.run(dry_run=args.dry_run), indent=2))
    else:
        dlq(args.action, args.queue)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
