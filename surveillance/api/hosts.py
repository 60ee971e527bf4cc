"""The Host check: a request must name this service by one of ``server.allowed_hosts``.

The origin check (``guards.cross_site``) compares a browser's ``Origin`` with this service's
own origin, which it builds from the request's ``Host``; so does every absolute URL the
service makes. A Host chosen by the client would let a page on a rebinding DNS name
(``evil.example`` resolving to this node) pass as same-origin. So the Host is checked here,
before any route or guard sees the request.

A request with more than one Host header, or a Host whose port is not a number from 1 to
65535 (``localhost:99999``, ``localhost:80x``), is refused too: RFC 9112 3.2 says to answer
400 to either, and two Hosts let a proxy and this service each read a different one.

A refused request gets 400, as Django and Starlette answer a Host they do not serve:
the request is wrong as sent. 421 (Misdirected Request) tells a client to retry on another
connection (RFC 9110 15.5.20), which is for a connection reused across names, not this.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from surveillance.config.models import ServerConfig

WS_POLICY_VIOLATION = 1008


def allowed_hosts(server: ServerConfig) -> frozenset[str]:
    """The configured names, and the address the service listens on when it is one."""
    return server.host_names()


def host_name(header: str) -> str:
    """The name in a Host header, without its port: ``[::1]:8080`` is ``::1``; empty when
    the port is there but not a valid one (no allowed host is empty)."""
    header = header.strip().lower()
    if header.startswith("["):
        name, _, rest = header[1:].partition("]")
        if rest and not rest.startswith(":"):
            return ""
        port = rest[1:] if rest else None
    else:
        name, colon, port_text = header.partition(":")
        port = port_text if colon else None
    if port is not None and not _valid_port(port):
        return ""
    return name


def _valid_port(port: str) -> bool:
    return port.isascii() and port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535


class HostCheck:
    """ASGI middleware: answers 400 (HTTP) or closes with 1008 (WebSocket) when the Host
    header is missing, repeated, has a bad port or names a host not allowed."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str]) -> None:
        self.app = app
        self.hosts = frozenset(hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        hosts = Headers(scope=scope).getlist("host")
        if len(hosts) == 1 and host_name(hosts[0]) in self.hosts:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})
            return
        refusal = JSONResponse({"detail": "this service is not served under that host name"}, 400)
        await refusal(scope, receive, send)
