"""The moderation audit log: who did what to which resource, when and why."""
from __future__ import annotations

import uuid

from chalicelib import cursor, db
from chalicelib.catalog.schemas import AuditEntry, AuditList
from chalicelib.catalog.store import AuditRecord


def entry(actor_id: str, action: str, target_id: str, reason: str | None = None,
          details: dict | None = None, target_type: str = "resource") -> AuditRecord:
    """A new audit record, to be saved inside the transaction of the action it records."""
    at = db.now_iso()
    entry_id = uuid.uuid4().hex
    sort = f"{at}#{entry_id}"
    return AuditRecord(sk=sort, entry_id=entry_id, at=at, actor_id=actor_id, action=action,
                       target_type=target_type, target_id=target_id, reason=reason,
                       details=details or {}, gsi1pk=f"AUDIT#{target_id}", gsi1sk=sort)


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
    if resource_id:
        results = AuditRecord.by_target.query(f"AUDIT#{resource_id}", scan_index_forward=False,
                                              limit=limit, last_evaluated_key=start)
    else:
        results = AuditRecord.query("AUDIT", scan_index_forward=False, limit=limit,
                                    last_evaluated_key=start)
    items = [_out(r) for r in results]
    return AuditList(items=items, next_cursor=cursor.encode(results.last_evaluated_key, scope))
