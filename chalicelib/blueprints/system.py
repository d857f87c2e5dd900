"""Health and the public keys of the access-token signer."""
import msgspec
from chalice import Blueprint, Response

from chalicelib.config import VERSION
from chalicelib.web import ANYONE, Ctx, Router

bp = Blueprint(__name__)
api = Router(bp)


class Health(msgspec.Struct):
    status: str
    version: str


@api.route("/health", "GET", role=ANYONE, summary="Liveness", tags=("system",), response=Health)
def health(ctx: Ctx) -> Health:
    return Health(status="ok", version=VERSION)


@api.route("/.well-known/jwks.json", "GET", role=ANYONE, tags=("auth",),
           summary="Public keys of the access-token signer, by kid", response="Jwks")
def jwks(ctx: Ctx) -> Response:
    from chalicelib.accounts.keys import verifying_keys

    return Response(body=msgspec.json.encode(verifying_keys().jwks).decode(), status_code=200,
                    headers={"Content-Type": "application/json",
                             "Cache-Control": "public, max-age=300"})
