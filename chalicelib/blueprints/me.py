"""The signed-in user's own account."""
from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.accounts.schemas import MePatch, PasswordChangeIn, TokenPair, UserEnvelope
from chalicelib.web import USER, Ctx, Router, given, json_response, lazy

if TYPE_CHECKING:  # the modules themselves load on first use (see web.lazy)
    from chalicelib.accounts import profiles, recovery
else:
    profiles = lazy("chalicelib.accounts.profiles")
    recovery = lazy("chalicelib.accounts.recovery")

bp = Blueprint(__name__)
api = Router(bp)
TAGS = ("me",)


@api.route("/me", "GET", role=USER, tags=TAGS, response=UserEnvelope, errors=(401,),
           summary="Your profile")
def get_me(ctx: Ctx) -> UserEnvelope:
    return UserEnvelope(user=profiles.user_out(profiles.get_user(ctx.user_id)))


@api.route("/me", "PATCH", role=USER, tags=TAGS, body=MePatch, response=UserEnvelope,
           errors=(400, 401, 409), summary="Change your profile")
def patch_me(ctx: Ctx) -> UserEnvelope:
    user = profiles.update_profile(ctx.user_id, given(ctx.body.display_name))
    return UserEnvelope(user=profiles.user_out(user))


@api.route("/me/password", "POST", role=USER, tags=TAGS, body=PasswordChangeIn,
           response=TokenPair, errors=(400, 401, 403, 422),
           summary="Change your password; other sessions end, a new pair is returned")
def change_password(ctx: Ctx) -> TokenPair:
    b = ctx.body
    return recovery.change_password(ctx.user_id, b.current_password, b.new_password)


@api.route("/me/creator", "POST", role=USER, tags=TAGS, response=UserEnvelope, errors=(401,),
           also=(202,),
           summary="Ask for the creator role (200 granted, 202 pending review)")
def become_creator(ctx: Ctx):
    user, granted = profiles.request_creator(ctx.user_id)
    return json_response(UserEnvelope(user=profiles.user_out(user)), 200 if granted else 202)
