"""`make smoke URL=...`: a quick check that a deployed stage (or the local stack) answers.

    python -m devstack.smoke https://abc123.execute-api.us-east-1.amazonaws.com/api
    python -m devstack.smoke http://127.0.0.1:8000
    python -m devstack.smoke        # the running `make run` stack (.local/stack.json)

Steps, in order, each printed with its time: health, the public catalog, the token signer's
public keys, then an auth round trip with a throwaway account (register, log in, /me,
refresh, log out, and the logged-out refresh token refused). The first failure stops the run
with exit status 1. The account is smoke+<random>@<SMOKE_EMAIL_DOMAIN, default example.com>:
nothing is mailed on registration, and there is no route to delete an account, so smoke
accounts stay (admins find them with `GET /admin/users?email=smoke+`).

Only the standard library (urllib), so it runs anywhere the repository is checked out.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

DEFAULT_TIMEOUT_SECONDS = 30.0  # a cold Lambda start plus the password hash
LOCAL_RUNTIME = Path(__file__).resolve().parents[1] / ".local" / "stack.json"
USER_AGENT = "paidres-smoke/1"


class SmokeFailure(Exception):
    """A step's answer was not what a healthy stage answers."""


@dataclass
class Reply:
    status: int
    body: Any
    text: str


class Client:
    """JSON over HTTP against one base URL; never raises on an HTTP error status."""

    def __init__(self, base_url: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def call(self, method: str, path: str, body: dict | None = None,
             token: str | None = None) -> Reply:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # The scheme is checked in __init__: http(s) only, never file: or a custom one.
        request = urllib.request.Request(self.base_url + path, data=data,  # noqa: S310
                                         headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                status, raw = answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SmokeFailure(f"{method} {path}: no answer ({reason})") from None
        text = raw.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        return Reply(status=status, body=parsed, text=text)


def expect(reply: Reply, status: int, what: str) -> Any:
    """The reply's JSON body when its status is `status`; SmokeFailure otherwise."""
    if reply.status != status:
        raise SmokeFailure(f"{what}: expected HTTP {status}, got {reply.status}: "
                           f"{reply.text[:300]}")
    return reply.body


def _field(body: Any, key: str, what: str) -> Any:
    if not isinstance(body, dict) or key not in body:
        raise SmokeFailure(f"{what}: no {key!r} in the answer: {str(body)[:300]}")
    return body[key]


@dataclass
class Session:
    """What the auth steps hand on to each other."""
    email: str
    password: str
    access_token: str = ""
    refresh_token: str = ""


def throwaway_account(domain: str | None = None) -> Session:
    domain = domain or os.environ.get("SMOKE_EMAIL_DOMAIN") or "example.com"
    return Session(email=f"smoke+{secrets.token_hex(6)}@{domain}",
                   password=f"Smoke-{secrets.token_urlsafe(18)}")


def health(client: Client, _: Session) -> str:
    body = expect(client.call("GET", "/health"), 200, "GET /health")
    if _field(body, "status", "GET /health") != "ok":
        raise SmokeFailure(f"GET /health: status is {body['status']!r}, not 'ok'")
    return f"version {body.get('version', '?')}"


def catalog(client: Client, _: Session) -> str:
    body = expect(client.call("GET", "/resources?limit=5"), 200, "GET /resources")
    items = _field(body, "items", "GET /resources")
    if not isinstance(items, list):
        raise SmokeFailure(f"GET /resources: items is not a list: {str(items)[:300]}")
    return f"{len(items)} item(s)"


def jwks(client: Client, _: Session) -> str:
    body = expect(client.call("GET", "/.well-known/jwks.json"), 200,
                  "GET /.well-known/jwks.json")
    keys = _field(body, "keys", "GET /.well-known/jwks.json")
    if not isinstance(keys, list) or not keys:
        raise SmokeFailure("GET /.well-known/jwks.json: no signing keys published")
    return f"{len(keys)} key(s)"


def register(client: Client, s: Session) -> str:
    body = expect(client.call("POST", "/auth/register", {
        "email": s.email, "password": s.password, "display_name": "Smoke test"}),
        201, "POST /auth/register")
    _field(_field(body, "user", "POST /auth/register"), "id", "POST /auth/register")
    return s.email


def _take_tokens(body: Any, s: Session, what: str) -> None:
    s.access_token = _field(body, "access_token", what)
    s.refresh_token = _field(body, "refresh_token", what)


def login(client: Client, s: Session) -> str:
    body = expect(client.call("POST", "/auth/login", {"email": s.email, "password": s.password}),
                  200, "POST /auth/login")
    _take_tokens(body, s, "POST /auth/login")
    return "token pair"


def me(client: Client, s: Session) -> str:
    body = expect(client.call("GET", "/me", token=s.access_token), 200, "GET /me")
    email = _field(_field(body, "user", "GET /me"), "email", "GET /me")
    if email != s.email:
        raise SmokeFailure(f"GET /me: answered for {email!r}, not {s.email!r}")
    return "the new account"


def refresh(client: Client, s: Session) -> str:
    old = s.refresh_token
    body = expect(client.call("POST", "/auth/refresh", {"refresh_token": old}), 200,
                  "POST /auth/refresh")
    _take_tokens(body, s, "POST /auth/refresh")
    if s.refresh_token == old:
        raise SmokeFailure("POST /auth/refresh: the refresh token was not rotated")
    return "rotated"


def logout(client: Client, s: Session) -> str:
    expect(client.call("POST", "/auth/logout", {"refresh_token": s.refresh_token},
                       token=s.access_token), 204, "POST /auth/logout")
    return "session ended"


def logged_out(client: Client, s: Session) -> str:
    expect(client.call("POST", "/auth/refresh", {"refresh_token": s.refresh_token}), 401,
           "POST /auth/refresh after logout")
    return "refresh refused"


STEPS: list[tuple[str, Callable[[Client, Session], str]]] = [
    ("health", health), ("catalog", catalog), ("jwks", jwks), ("register", register),
    ("login", login), ("me", me), ("refresh", refresh), ("logout", logout),
    ("logged out", logged_out)]


def run(base_url: str, out: TextIO = sys.stdout, timeout: float = DEFAULT_TIMEOUT_SECONDS,
        email_domain: str | None = None) -> bool:
    """Every step in order, one line each; False at the first failure."""
    client = Client(base_url, timeout)
    session = throwaway_account(email_domain)
    print(f"smoke: {client.base_url}", file=out)
    started = time.monotonic()
    for name, step in STEPS:
        begun = time.monotonic()
        try:
            detail = step(client, session)
        except SmokeFailure as exc:
            elapsed = (time.monotonic() - begun) * 1000
            print(f"FAIL {name:<11} {elapsed:7.0f} ms  {exc}", file=out)
            return False
        elapsed = (time.monotonic() - begun) * 1000
        print(f"ok   {name:<11} {elapsed:7.0f} ms  {detail}", file=out)
    print(f"smoke: all {len(STEPS)} steps passed in {time.monotonic() - started:.1f} s",
          file=out)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.smoke",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?",
                        help="the stage's base URL, e.g. https://.../api (default: the "
                             "running local stack)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS,
                        help="seconds per request (default %(default)s)")
    args = parser.parse_args(argv)
    url = args.url
    if not url:
        if not LOCAL_RUNTIME.exists():
            parser.error("give the stage's URL (make smoke URL=https://.../api), or start "
                         "the local stack with `make run`")
        url = json.loads(LOCAL_RUNTIME.read_text(encoding="utf-8"))["api_url"]
    try:
        return 0 if run(url, timeout=args.timeout) else 1
    except ValueError as exc:
        parser.error(str(exc))
    return 2


if __name__ == "__main__":
    sys.exit(main())
