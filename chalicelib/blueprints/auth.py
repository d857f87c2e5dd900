"""Registration, login, token refresh, logout and password reset."""
from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.accounts.schemas import (
    ForgotIn,
    LoginIn,
    RefreshIn,
    RegisterIn,
    ResetIn,
    TokenPair,
    UserEnvelope,
)
from chalicelib.web import ANYONE, USER, Ctx, Router, lazy

if TYPE_CHECKING:  # the modules themselves load on first use (see web.lazy)
    from chalicelib.accounts import authentication, profiles, recovery, registration
else:
    authentication = lazy("chalicelib.accounts.authentication")
    profiles = lazy("chalicelib.accounts.profiles")
    recovery = lazy("chalicelib.accounts.recovery")
    registration = lazy("chalicelib.accounts.registration")

bp = Blueprint(__name__)
api = Router(bp)
TAGS = ("auth",)


@api.route("/auth/register", "POST", role=ANYONE, tags=TAGS, body=RegisterIn, status=201,
           response=UserEnvelope, errors=(400, 409, 422), summary="Create an account")
def register(ctx: Ctx) -> UserEnvelope:
    b = ctx.body
    user = registration.register(b.email, b.password, b.display_name)
    return UserEnvelope(user=profiles.user_out(user))


@api.route("/auth/login", "POST", role=ANYONE, tags=TAGS, body=LoginIn, response=TokenPair,
           errors=(400, 401, 403, 429), summary="Log in with email and password")
def login(ctx: Ctx) -> TokenPair:
    return authentication.login(ctx.body.email, ctx.body.password)


@api.route("/auth/refresh", "POST", role=ANYONE, tags=TAGS, body=RefreshIn, response=TokenPair,
           errors=(400, 401), summary="Rotate a refresh token for a new token pair")
def refresh(ctx: Ctx) -> TokenPair:
    return authentication.refresh(ctx.body.refresh_token)


@api.route("/auth/logout", "POST", role=USER, tags=TAGS, body=RefreshIn, status=204,
           errors=(400, 401), summary="End the session of a refresh token")
def logout(ctx: Ctx) -> None:
    authentication.logout(ctx.user_id, ctx.body.refresh_token)


@api.route("/auth/password/forgot", "POST", role=ANYONE, tags=TAGS, body=ForgotIn, status=202,
           errors=(400,), summary="Mail a password-reset link (same answer for any email)")
def forgot(ctx: Ctx) -> dict:
    recovery.forgot_password(ctx.body.email)
    return {"message": "If an account exists for this email, a reset link is on its way."}


@api.route("/auth/password/reset", "POST", role=ANYONE, tags=TAGS, body=ResetIn, status=204,
           errors=(400, 401, 422),
           summary="Set a new password with a reset token; all sessions end")
def reset(ctx: Ctx) -> None:
    recovery.reset_password(ctx.body.token, ctx.body.new_password)
