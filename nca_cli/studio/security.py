"""Who may talk to the studio: requests to an expected Host, from no foreign Origin, with the token.

The token is random and printed with the studio's URL, as Jupyter does; the page keeps it in a
cookie (HttpOnly, SameSite=Strict) and sends it with every request and the WebSocket. A page on
another site cannot read it, and the Host check stops a rebound DNS name from reaching the server
as if it were the same site.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import socket
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

DEFAULT_HOST = "127.0.0.1"
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
WILDCARDS = ("0.0.0.0", "::", "")
TOKEN_HEADER = "x-nca-token"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def cookie_name(token: str) -> str:
    """Cookies are shared by every port of a host: the name is the token's, so studios on other
    ports keep theirs."""
    return "nca-studio-" + hashlib.sha256(token.encode()).hexdigest()[:12]


def allowed_hosts(host: str, port: int) -> set[str]:
    """The Host headers that reach this studio: its own address, the loopback names when it is on
    one of them or on every interface, and the machine's names when it is on every interface."""
    shown = f"[{host}]" if ":" in host else host
    names = {shown}
    if shown in LOOPBACK or host in WILDCARDS:
        names |= set(LOOPBACK)
    if host in WILDCARDS:
        names |= {socket.gethostname(), socket.getfqdn()}
    return {f"{name}:{port}" for name in names if name}


class Guard:
    """ASGI middleware in front of the studio: a request (HTTP or WebSocket) with a foreign Host or
    Origin, or without the right token, is refused with 403 before the app sees it."""

    def __init__(self, app, token: str, hosts: set[str]):
        self.app, self.token, self.hosts = app, token, set(hosts)
        self.origins = {"http://" + h for h in self.hosts}
        self.cookie = cookie_name(token)

    def refusal(self, scope) -> str | None:
        """Why the request is refused, or None."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if headers.get("host") not in self.hosts:
            return "this studio does not answer to that host name"
        origin = headers.get("origin")
        if origin is not None and origin not in self.origins:
            return "requests from other sites are refused"
        if not any(hmac.compare_digest(given.encode(), self.token.encode()) for given in self._tokens(scope, headers)):
            return "open the studio with the URL it printed (the token is missing or wrong)"
        return None

    def _tokens(self, scope, headers: dict) -> list[str]:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = query.get("token", [])[:1]
        if TOKEN_HEADER in headers:
            given.append(headers[TOKEN_HEADER])
        if "cookie" in headers:
            cookies = SimpleCookie()
            try:
                cookies.load(headers["cookie"])
            except CookieError:  # a malformed cookie header is a request without the token
                cookies = SimpleCookie()
            if self.cookie in cookies:
                given.append(cookies[self.cookie].value)
        return given

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        problem = self.refusal(scope)
        if problem is None:
            return await self.app(scope, receive, send)
        body = f"Forbidden: {problem}\n".encode()
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 403, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await receive()  # the handshake's websocket.connect
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": 403, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008})
