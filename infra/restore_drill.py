"""`make restore-drill`: prove the tables can be brought back. On an embedded moto, create
the stack's tables from infra/resources.yaml, fill them with the demo data and a purchase,
take an on-demand backup of each table, restore it into a new table, and compare the two
item by item. Exits non-zero on any difference.

The same steps against a deployed stage are in docs/deploy.md ("Restoring a table").
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _items(client, table: str) -> list[dict]:
    # A whole-table read is what a drill is for; no request path does this.
    items, start = [], None
    while True:
        kwargs = {"TableName": table, "ConsistentRead": True}
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = client.scan(**kwargs)
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return sorted(items, key=lambda i: repr(sorted(i.items())))


def _purchase() -> None:
    """A free purchase by the demo buyer, so the orders table has an order, lines and an
    entitlement to restore."""
    from chalicelib.accounts import admin
    from chalicelib.catalog.store import ListingCard
    from chalicelib.payments import checkout

    buyer = admin.list_users(1, None, None, "buyer@paidres.local").items[0]
    free = next(c for c in ListingCard.query("all") if int(c.price_amount) == 0)
    checkout.checkout(buyer.id, buyer.email, [free.sk], None, None, 0)


def drill(out=print) -> bool:
    from devstack import stage

    stage.apply("local", {"STRIPE_WEBHOOK_SECRET": "whsec_drill"})
    from moto import mock_aws

    with mock_aws():
        from chalicelib import aws
        from chalicelib.accounts import keys
        from chalicelib.config import settings
        from devstack.provision import load_template, physical_names, provision
        from devstack.stack import seed_admin, seed_demo

        cfg = settings()
        provision(cfg.stage, cfg.region)
        keys.install(keys.new_secrets_document())
        _, admin_id = seed_admin()
        seed_demo(admin_id)
        _purchase()
        ddb = aws.dynamodb()
        names = physical_names(cfg.stage)
        tables = [names[logical] for logical, res in load_template()["Resources"].items()
                  if res["Type"] == "AWS::DynamoDB::Table"]
        healthy = True
        for table in tables:
            backup = ddb.create_backup(TableName=table, BackupName=f"{table}-drill")
            arn = backup["BackupDetails"]["BackupArn"]
            target = f"{table}-drill"
            ddb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)
            ddb.get_waiter("table_exists").wait(TableName=target)
            original, restored = _items(ddb, table), _items(ddb, target)
            same = original == restored
            healthy &= same
            out(f"{table}: {len(original)} items backed up, {len(restored)} restored, "
                f"{'identical' if same else 'DIFFERENT'}")
        return healthy


if __name__ == "__main__":
    sys.exit(0 if drill() else 1)
