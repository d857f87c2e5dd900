"""Moderation of what users write: reports, the admin's queue, decisions, comment bans.

A report is counted once per user and target (its key); the target's case counts distinct
reporters and is in the admin's queue (keyed, oldest first) while open. The report that
brings a review or comment to AUTO_HIDE_AFTER reports hides it in the same transaction
(pending the admin's decision); a reported resource is queued but never hidden by reports
alone (a paid product taken down by a handful of accounts is an attack, not moderation).
Every decision and ban is written to the audit log in the transaction that makes it."""
from __future__ import annotations

from typing import Any, cast

from pynamodb.exceptions import TransactWriteError

from chalicelib import cursor, db
from chalicelib.catalog import audit
from chalicelib.catalog import public as catalog
from chalicelib.community import comments, notifications, reviews, store
from chalicelib.community.schemas import BanOut, CaseList, CaseOut, ReportOut, TargetType
from chalicelib.community.store import BanRecord, CaseRecord, ReportRecord
from chalicelib.errors import Conflict, NotFound

AUTO_HIDE_AFTER = 3
ATTEMPTS = 5
SYSTEM = "system"
_FAILED = "ConditionalCheckFailed"


class Target:
    """What a report or decision is about, and what showing or hiding it means."""

    def __init__(self, kind: str, resource_id: str, target_id: str | None) -> None:
        self.kind, self.resource_id = kind, resource_id
        self.target_id = target_id or resource_id
        self.key = f"{kind}:{resource_id}" if kind == "resource" else \
            f"{kind}:{resource_id}:{target_id}"
        self.record: Any = None

    def load(self) -> Target:
        """The review or comment (None for a resource, or when it is gone)."""
        if self.kind == "review":
            self.record = store.review(self.resource_id, self.target_id)
        elif self.kind == "comment":
            self.record = store.comment(self.resource_id, self.target_id)
            if self.record is not None and self.record.status == "deleted":
                self.record = None
        return self

    def exists(self) -> bool:
        if self.kind == "resource":
            [found] = db.batch_read(catalog.resources_read([self.resource_id]))
            offer = catalog.offers_in(found).get(self.resource_id)
            return offer is not None and offer.status == "published"
        return self.record is not None

    @property
    def visible(self) -> bool:
        return self.record is not None and self.record.status == "visible"

    @property
    def author(self) -> str | None:
        return self.record.user_id if self.record is not None else None

    def set_visible(self, visible: bool, extra: Any) -> bool:
        module = reviews if self.kind == "review" else comments
        return module.set_visible(self.record, visible, extra)


def _case_out(c: CaseRecord) -> CaseOut:
    return CaseOut(target_type=cast(TargetType, c.target_type), target_id=c.target_id,
                   resource_id=c.resource_id,
                   reports=int(c.reports), state="closed" if c.state == "closed" else "open",
                   auto_hidden=bool(c.auto_hidden), outcome=c.outcome,
                   last_reason=c.last_reason, first_at=c.first_at, last_at=c.last_at,
                   decided_at=c.decided_at, decided_by=c.decided_by)


def _open_case(tx: Any, case: CaseRecord | None, target: Target, reason: str, now: str,
               hide: bool) -> None:
    """The case counts one more reporter (it opens again if it was closed), under the
    version read."""
    if case is None:
        tx.save(CaseRecord(pk=ReportRecord.key(target.key), sk="SUMMARY", target=target.key,
                           target_type=target.kind, resource_id=target.resource_id,
                           target_id=target.target_id, reports=1, state="open",
                           auto_hidden=hide, last_reason=reason, first_at=now, last_at=now,
                           version=1, gsi1pk=store.OPEN_QUEUE, gsi1sk=f"{now}#{target.key}"),
                condition=CaseRecord.pk.does_not_exist())
        return
    actions = [CaseRecord.reports.add(1), CaseRecord.last_at.set(now),
               CaseRecord.last_reason.set(reason), CaseRecord.version.add(1)]
    if hide:
        actions.append(CaseRecord.auto_hidden.set(True))
    if case.state != "open":
        actions += [CaseRecord.state.set("open"), CaseRecord.gsi1pk.set(store.OPEN_QUEUE),
                    CaseRecord.gsi1sk.set(f"{now}#{target.key}")]
    tx.update(case, actions=actions, condition=CaseRecord.version == int(case.version))


def report(user_id: str, resource_id: str, kind: str, target_id: str | None, reason: str,
           note: str | None) -> ReportOut:
    """A user's report of a resource, review or comment. Reporting again counts nothing
    more. The report that reaches AUTO_HIDE_AFTER hides a review or comment."""
    target = Target(kind, resource_id, target_id).load()
    if not target.exists():
        raise NotFound("Nothing to report there.", code="target_not_found")
    for _ in range(ATTEMPTS):
        case = store.case(target.key)
        now = db.now_iso()
        count = int(case.reports) if case else 0
        hide = kind != "resource" and count + 1 >= AUTO_HIDE_AFTER and target.visible
        mine = ReportRecord(pk=ReportRecord.key(target.key), sk=f"BY#{user_id}",
                            user_id=user_id, reason=reason, note=note, at=now)

        def writes(tx: Any, case: CaseRecord | None = case, mine: ReportRecord = mine,
                   hide: bool = hide, now: str = now, count: int = count) -> None:
            tx.save(mine, condition=ReportRecord.sk.does_not_exist())
            _open_case(tx, case, target, reason, now, hide)
            if hide:
                tx.save(audit.entry(SYSTEM, "auto_hide", target.target_id,
                                    f"{count + 1} reports", {"resource_id": resource_id},
                                    target_type=kind))
                if target.author:
                    notifications.add(tx, target.author, "moderation",
                                      f"Your {kind} was hidden pending review",
                                      body="Several people reported it; an admin will decide.",
                                      link=f"/resources/{resource_id}", at=now)

        try:
            if hide:
                if not target.set_visible(False, writes):
                    target.load()
                    continue
            else:
                with db.transaction() as tx:
                    writes(tx)
        except TransactWriteError as exc:
            codes = db.cancellation_codes(exc)
            # the target's own writes come first: a review's update and its rating counters
            offset = (2 if kind == "review" else 1) if hide else 0
            if codes[offset:offset + 1] == [_FAILED]:
                return _report_out(target, store.case(target.key))  # reported already
            if codes[offset + 1:offset + 2] == [_FAILED]:
                continue  # another report counted meanwhile
            raise
        return _report_out(target, store.case(target.key))
    raise Conflict("Too many reports at once; try again.", code="concurrent_update")


def _report_out(target: Target, case: CaseRecord | None) -> ReportOut:
    target.load()
    return ReportOut(target_type=cast(TargetType, target.kind), target_id=target.target_id,
                     resource_id=target.resource_id, reports=int(case.reports) if case else 0,
                     hidden=target.kind != "resource" and not target.visible)


def queue(state: str, limit: int, cursor_text: str | None) -> CaseList:
    """The admin's queue: open cases oldest first, or closed ones newest first. One Query."""
    scope = f"modq:{state}"
    items, position = db.page(store.queue_page(state, limit, cursor.decode(cursor_text, scope)))
    return CaseList(items=[_case_out(c) for c in items],
                    next_cursor=cursor.encode(position, scope))


def _close(tx: Any, case: CaseRecord | None, target: Target, outcome: str, admin_id: str,
           now: str) -> None:
    queued = f"{now}#{target.key}"
    if case is None:
        tx.save(CaseRecord(pk=ReportRecord.key(target.key), sk="SUMMARY", target=target.key,
                           target_type=target.kind, resource_id=target.resource_id,
                           target_id=target.target_id, reports=0, first_at=now, last_at=now,
                           version=1, state="closed", outcome=outcome, decided_at=now,
                           decided_by=admin_id, gsi1pk=store.CLOSED_QUEUE, gsi1sk=queued),
                condition=CaseRecord.pk.does_not_exist())
        return
    tx.update(case, actions=[
        CaseRecord.state.set("closed"), CaseRecord.outcome.set(outcome),
        CaseRecord.decided_at.set(now), CaseRecord.decided_by.set(admin_id),
        CaseRecord.gsi1pk.set(store.CLOSED_QUEUE), CaseRecord.gsi1sk.set(queued),
        CaseRecord.version.add(1)], condition=CaseRecord.version == int(case.version))


_OUTCOMES = {"hide": "hidden", "unhide": "unhidden", "dismiss": "dismissed"}


def decide(admin_id: str, kind: str, resource_id: str, target_id: str | None, decision: str,
           reason: str) -> CaseOut:
    """An admin hides or shows a review or comment again, or dismisses its reports (an
    auto-hidden one is shown again); the case closes, the audit log and the author's
    notification in the same transaction. A resource is hidden (taken down) or put back
    through the catalog's moderation, and its case closed after."""
    for _ in range(ATTEMPTS):
        target = Target(kind, resource_id, target_id).load()
        if kind != "resource" and target.record is None:
            raise NotFound("Nothing to decide there.", code="target_not_found")
        case = store.case(target.key)
        now = db.now_iso()
        outcome = _OUTCOMES[decision]
        show = decision == "unhide" or (decision == "dismiss" and bool(case and case.auto_hidden))
        change = kind != "resource" and (
            (decision == "hide" and target.visible) or (show and not target.visible))

        def writes(tx: Any, case: CaseRecord | None = case, target: Target = target,
                   now: str = now, outcome: str = outcome, change: bool = change) -> None:
            _close(tx, case, target, outcome, admin_id, now)
            tx.save(audit.entry(admin_id, f"{decision}_{kind}", target.target_id, reason,
                                {"resource_id": resource_id}, target_type=kind))
            if change and target.author:
                done = "hidden" if decision == "hide" else "restored"
                notifications.add(tx, target.author, "moderation", f"Your {kind} was {done}",
                                  body=reason, link=f"/resources/{resource_id}", at=now)

        if kind == "resource":
            _resource_decision(admin_id, resource_id, decision, reason)
        try:
            if change:
                if not target.set_visible(decision != "hide", writes):
                    continue
            else:
                with db.transaction() as tx:
                    writes(tx)
        except TransactWriteError as exc:
            if _FAILED in db.cancellation_codes(exc):
                continue
            raise
        if change and target.author and decision == "hide":
            notifications.email(target.author, f"Your {kind} was hidden",
                                f"An admin hid your {kind} on resource {resource_id}: {reason}")
        closed = store.case(target.key)
        assert closed is not None
        return _case_out(closed)
    raise Conflict("The case changed meanwhile; try again.", code="concurrent_update")


def _resource_decision(admin_id: str, resource_id: str, decision: str, reason: str) -> None:
    from chalicelib.catalog import moderation
    from chalicelib.catalog.states import WrongState

    try:
        if decision == "hide":
            moderation.set_visibility(admin_id, resource_id, False, True, reason)
        elif decision == "unhide":
            moderation.set_visibility(admin_id, resource_id, True, True, reason)
    except WrongState:
        pass  # hidden (or shown) already: the case still closes


def ban(admin_id: str, user_id: str, reason: str) -> BanOut:
    """Ban a user from commenting (their reviews are unaffected); audited."""
    now = db.now_iso()
    with db.transaction() as tx:
        tx.save(BanRecord(pk=BanRecord.key(user_id), user_id=user_id, by=admin_id,
                          reason=reason, at=now))
        tx.save(audit.entry(admin_id, "ban_commenting", user_id, reason, target_type="user"))
    return BanOut(user_id=user_id, banned=True, reason=reason, at=now)


def unban(admin_id: str, user_id: str) -> BanOut:
    with db.transaction() as tx:
        tx.delete(BanRecord(pk=BanRecord.key(user_id), sk="COMMENTS"))
        tx.save(audit.entry(admin_id, "unban_commenting", user_id, None, target_type="user"))
    return BanOut(user_id=user_id, banned=False, reason=None, at=None)
