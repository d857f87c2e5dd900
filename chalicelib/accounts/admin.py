"""Administration of users: the listing (by email, pending creator requests, everyone) and
changes of roles, status and creator requests."""
from __future__ import annotations

from typing import Any

from chalicelib import cursor
from chalicelib.accounts import profiles, store
from chalicelib.accounts.schemas import UserList
from chalicelib.accounts.store import UserRecord
from chalicelib.errors import Refused
from chalicelib.observability import logger


def list_users(limit: int, cursor_text: str | None, creator_status: str | None,
               email: str | None) -> UserList:
    """Admin listing: by exact email, pending creator requests (oldest first), or all users
    newest first. One Query (or two GetItems for an email)."""
    if email:
        user = store.user_by_email(profiles.normalise_email(email))
        return UserList(items=[profiles.user_out(user)] if user else [], next_cursor=None)
    scope = f"admin-users:{creator_status or 'all'}"
    start = cursor.decode(cursor_text, scope)
    items, position = store.users_page(creator_status == "pending", limit, start)
    return UserList(items=[profiles.user_out(u) for u in items],
                    next_cursor=cursor.encode(position, scope))


def admin_update_user(admin_id: str, user_id: str, roles: list[str] | None,
                      status: str | None, creator_status: str | None) -> UserRecord:
    """Change a user's roles, status or creator request. An admin cannot demote or disable
    themself (the platform must keep an admin). Removing a role or disabling ends sessions."""
    if user_id == admin_id and ((roles is not None and "admin" not in roles)
                                or status == "disabled"):
        raise Refused("You cannot remove your own admin role or disable yourself.",
                      code="self_lockout")

    def actions_for(user: UserRecord) -> list[Any]:
        actions: list[Any] = []
        end_sessions = False
        if roles is not None:
            wanted = set(roles) | {"buyer"}
            if wanted != set(user.roles):
                end_sessions = bool(set(user.roles) - wanted)
                actions.append(UserRecord.roles.set(wanted))
                if "creator" in wanted:
                    actions += [UserRecord.creator_status.set("approved"),
                                UserRecord.gsi2pk.remove(), UserRecord.gsi2sk.remove()]
                elif "creator" in user.roles:
                    actions.append(UserRecord.creator_status.set("none"))
        if creator_status == "rejected" and user.creator_status == "pending" and (
                roles is None or "creator" not in roles):
            actions += [UserRecord.creator_status.set("rejected"),
                        UserRecord.gsi2pk.remove(), UserRecord.gsi2sk.remove()]
        if status is not None and status != user.status:
            actions.append(UserRecord.status.set(status))
            end_sessions = end_sessions or status == "disabled"
        if end_sessions:
            actions.append(UserRecord.session_epoch.add(1))
        return actions

    profiles.change(user_id, actions_for)
    logger.info("admin changed user", extra={"admin_id": admin_id, "user_id": user_id,
                                             "roles": roles, "status": status})
    return profiles.get_user(user_id)
