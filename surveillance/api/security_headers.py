"""The security headers on every answer, the ones FastAPI sends before any middleware runs
included.

FastAPI answers a body over its cap (413, ``AppBodyLimitMiddleware``) and Starlette an
unhandled error (500, ``ServerErrorMiddleware``) outside every app middleware, so an app
middleware would let those answers out plain. This wrapper sits around the whole stack and
adds any of the headers an answer lacks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# No inline script or style, nothing from elsewhere; media from blob: URLs (MSE) only.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

_HEADERS = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]
_CSP = b"content-security-policy"


def _with_sources(sources: Iterable[str]) -> list[tuple[bytes, bytes]]:
    """The headers with more origins in ``connect-src`` (other nodes of a cluster, whose
    fMP4 sockets the wall opens)."""
    extra = " ".join(sorted(sources))
    if not extra:
        return _HEADERS
    policy = CONTENT_SECURITY_POLICY.replace("connect-src 'self'", f"connect-src 'self' {extra}")
    return [(name, policy.encode() if name == _CSP else value) for name, value in _HEADERS]


class SecurityHeaders:
    def __init__(
        self, app: ASGIApp, connect_sources: Callable[[], Iterable[str]] | None = None
    ) -> None:
        self.app = app
        self.connect_sources = connect_sources

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        ours = _HEADERS if self.connect_sources is None else _with_sources(self.connect_sources())

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in ours if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
