"""The moderation audit log: who did what to which resource, when and why."""
from __future__ import annotations

import uuid

from chalicelib import cursor, db
from chalicelib.catalog import store
from chalicelib.catalog.schemas import AuditEntry, AuditList
from chalicelib.catalog.store import AuditRecord


def entry(actor_id: str, action: str, target_id: str, reason: str | None = None,
          details: dict | None = None, target_type: str = "resource") -> AuditRecord:
    """A new audit record, to be saved inside the transaction of the action it records."""
    return store.new_audit_entry(uuid.uuid4().hex, db.now_iso(), target_id, actor_id=actor_id,
                                 action=action, target_type=target_type, reason=reason,
                                 details=details or {})


def _out(record: AuditRecord) -> AuditEntry:
    details = record.details.as_dict() if hasattr(record.details, "as_dict") else dict(
        record.details or {})
    return AuditEntry(id=record.entry_id, at=record.at, actor_id=record.actor_id,
                      action=record.action, target_type=record.target_type,
                      target_id=record.target_id, reason=record.reason, details=details)


def listing(resource_id: str | None, limit: int, cursor_text: str | None) -> AuditList:
    """Newest first; all entries, or one resource's history. One Query."""
    scope = f"audit:{resource_id or '*'}"
    start = cursor.decode(cursor_text, scope)
    results = store.audit_entries(resource_id, limit, start)
    items = [_out(r) for r in results]
    return AuditList(items=items, next_cursor=cursor.encode(results.last_evaluated_key, scope))
