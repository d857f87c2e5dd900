"""Versioned data migrations: ordered, idempotent, resumable, recorded in the stats table,
with a dry run and a progress bar.

Each migration is a module `mNNNN_name.py` with `DESCRIPTION`, `estimate() -> int`,
`page(position, size) -> (items, next position or None)` and `apply(item)`. The runner
records each one under MIGRATION#<name> with its position after every page, so an
interrupted run resumes where it stopped, and a finished one is never run again.

    python -m devstack.ops migrate [--dry-run]     # make migrate [DRY_RUN=1]
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from types import ModuleType

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib import db

PAGE = 100


class MigrationState(Model):
    """MIGRATION#<name> / STATE in the stats table."""

    Meta = db.table_meta("stats_table")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="STATE")
    status = UnicodeAttribute()  # running, done
    position = JSONAttribute(null=True)
    processed = NumberAttribute(default=0)
    started_at = UnicodeAttribute()
    finished_at = UnicodeAttribute(null=True)


def migrations() -> list[tuple[str, ModuleType]]:
    """Every migration module, in version order."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name[:1] == "m"
                   and m.name[1:5].isdigit())
    return [(name, importlib.import_module(f"{__name__}.{name}")) for name in names]


def _state(name: str) -> MigrationState | None:
    try:
        return MigrationState.get(f"MIGRATION#{name}", "STATE", consistent_read=True)
    except MigrationState.DoesNotExist:
        return None


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = min(width, int(width * done / total)) if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def run(dry_run: bool = False, max_pages: int | None = None, page_size: int = PAGE,
        out: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> dict:
    """Run every migration not yet done; returns {name: outcome}. `max_pages` stops early
    (what an interruption would do), leaving the position recorded for the next run."""
    outcomes: dict[str, str] = {}
    pages = 0
    for name, module in migrations():
        state = _state(name)
        if state is not None and state.status == "done":
            outcomes[name] = "already done"
            continue
        total = module.estimate()
        position = state.position if state else None
        processed = int(state.processed) if state else 0
        out(f"{name}: {module.DESCRIPTION}{' (dry run)' if dry_run else ''}")
        if state is None and not dry_run:
            state = MigrationState(pk=f"MIGRATION#{name}", status="running",
                                   started_at=db.now_iso())
            state.save(condition=MigrationState.pk.does_not_exist())
        while True:
            if max_pages is not None and pages >= max_pages:
                outcomes[name] = f"stopped after {processed}"
                return outcomes
            items, position = module.page(position, page_size)
            pages += 1
            for item in items:
                if not dry_run:
                    module.apply(item)
                processed += 1
            if not dry_run:
                assert state is not None  # saved above when missing, unless a dry run
                state.update(actions=[MigrationState.position.set(position),
                                      MigrationState.processed.set(processed)])
            out(f"  {_bar(processed, max(total, processed))}")
            if position is None:
                break
        if not dry_run:
            assert state is not None
            state.update(actions=[MigrationState.status.set("done"),
                                  MigrationState.finished_at.set(db.now_iso())])
        outcomes[name] = f"{'would process' if dry_run else 'processed'} {processed}"
    return outcomes
