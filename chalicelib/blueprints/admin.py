"""Administration of users."""
from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.accounts.schemas import AdminUserPatch, AdminUsersQuery, UserEnvelope, UserList
from chalicelib.web import ADMIN, Ctx, Router, given, lazy

if TYPE_CHECKING:  # the modules themselves load on first use (see web.lazy)
    from chalicelib.accounts import admin as users
    from chalicelib.accounts import profiles
else:
    profiles = lazy("chalicelib.accounts.profiles")
    users = lazy("chalicelib.accounts.admin")

bp = Blueprint(__name__)
api = Router(bp)
TAGS = ("admin",)


@api.route("/admin/users", "GET", role=ADMIN, tags=TAGS, query=AdminUsersQuery,
           response=UserList, errors=(400, 401, 403),
           summary="Users, newest first; or pending creator requests; or by email")
def list_users(ctx: Ctx) -> UserList:
    q = ctx.query
    return users.list_users(q.limit, q.cursor, q.creator_status, q.email)


@api.route("/admin/users/{user_id}", "PATCH", role=ADMIN, tags=TAGS, body=AdminUserPatch,
           response=UserEnvelope, errors=(400, 401, 403, 404, 409, 422),
           summary="Change a user's roles, status, or reject a creator request")
def patch_user(ctx: Ctx, user_id: str) -> UserEnvelope:
    b = ctx.body
    user = users.admin_update_user(ctx.user_id, user_id, roles=given(b.roles),
                                   status=given(b.status), creator_status=given(b.creator_status))
    return UserEnvelope(user=profiles.user_out(user))
