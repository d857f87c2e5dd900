"""Routes that exist only in local mode (LOCAL_MODE=true): the outbox of sent mail.
`app.py` registers this blueprint only then, so nothing under /_local/ exists on AWS."""
import msgspec
from chalice import Blueprint

from chalicelib.config import settings
from chalicelib.web import ANYONE, Ctx, Router

bp = Blueprint(__name__)
api = Router(bp, local_only=True)


class OutboxQuery(msgspec.Struct):
    to: str | None = None


class Mail(msgspec.Struct):
    id: str
    sender: str
    to: list[str]
    subject: str
    body: str


class Outbox(msgspec.Struct):
    items: list[Mail]
    next_cursor: str | None = None


@api.route("/_local/outbox", "GET", role=ANYONE, tags=("local",), query=OutboxQuery,
           response=Outbox, summary="Mail sent through the embedded SES, newest first")
def outbox(ctx: Ctx) -> Outbox:
    # moto's SES keeps sent mail in the memory of this process (the embedded server).
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    sent = ses_backends[DEFAULT_ACCOUNT_ID][settings().region].sent_messages
    items = [Mail(id=m.id, sender=m.source, to=list(m.destinations.get("ToAddresses", [])),
                  subject=getattr(m, "subject", ""), body=getattr(m, "body", ""))
             for m in reversed(sent)]
    if ctx.query.to:
        wanted = ctx.query.to.strip().lower()
        items = [m for m in items if wanted in (t.lower() for t in m.to)]
    return Outbox(items=items)
