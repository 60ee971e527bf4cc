"""Access control for every route: who is asking (session cookie or API token), whether
their role (and their token) allows the route, CSRF and origin checks. What they may see
of cameras, cases and the wall is the access service's to decide (``services/access.py``).

Each route declares its rule with ``requires(Permission...)`` or ``public()``; ``create_app``
refuses to build an app with a route that declares neither, so a route added later is
denied until someone decides who may use it.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any, NoReturn
from urllib.parse import urlencode

import fastapi.routing
from fastapi import Depends, FastAPI, HTTPException, WebSocketException
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute, Mount

from surveillance.api.deps import auditor, node_of
from surveillance.auth.audit import AuditAction
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.services.access import route_refusal

SESSION_COOKIE = "surveillance_session"
CSRF_COOKIE = "surveillance_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WS_POLICY_VIOLATION = 1008
# Mounted apps that are public by design: the pages' scripts and styles, no data.
PUBLIC_MOUNTS = frozenset({"/static"})


def _bearer(connection: HTTPConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def authenticate(connection: HTTPConnection) -> Principal | None:
    """The principal a request carries: an API token first, else the session cookie."""
    auth = node_of(connection).auth
    token = _bearer(connection)
    if token is not None:
        return auth.token_principal(token)
    session = connection.cookies.get(SESSION_COOKIE)
    if session:
        return auth.session_principal(session)
    return None


def own_origin(connection: HTTPConnection) -> str:
    """This service's origin as a browser names it (a WebSocket's origin is its page's)."""
    scheme = {"ws": "http", "wss": "https"}.get(connection.url.scheme, connection.url.scheme)
    return f"{scheme}://{connection.url.netloc}"


def cross_site(connection: HTTPConnection) -> bool:
    """Whether the browser says this request comes from another site's page."""
    origin = connection.headers.get("origin")
    if origin is not None and origin != own_origin(connection):
        return True
    return connection.headers.get("sec-fetch-site") == "cross-site"


class Guard:
    """The access rule of one route; FastAPI calls it before the route (in a worker thread,
    since it reads the database). It returns the principal, so a route may take it."""

    def __init__(
        self,
        permissions: Iterable[Permission],
        *,
        public: bool = False,
        open_to_limited_tokens: bool = False,
    ) -> None:
        self.permissions = frozenset(permissions)
        self.public = public
        self.open_to_limited_tokens = open_to_limited_tokens

    def __call__(self, connection: HTTPConnection) -> Principal | None:
        is_websocket = connection.scope["type"] == "websocket"
        if self.public:
            return None
        principal = authenticate(connection)
        if principal is None:
            self._deny(is_websocket, 401, "sign in required")
        if principal.session_hash is not None:
            refusal = self._csrf_refusal(connection, principal, is_websocket)
            if refusal is not None:
                self._refuse(connection, principal, is_websocket, refusal, reason=refusal)
        rule = route_refusal(
            principal, self.permissions, open_to_limited_tokens=self.open_to_limited_tokens
        )
        if rule is not None:
            detail, missing = rule
            self._refuse(connection, principal, is_websocket, detail, missing=missing)
        # For the error handlers, which answer after the route and must not look it up again.
        connection.state.principal = principal
        return principal

    def _refuse(
        self,
        connection: HTTPConnection,
        principal: Principal,
        is_websocket: bool,
        detail: str,
        **why: Any,
    ) -> NoReturn:
        """403, recorded in the audit log: a signed-in user was turned away."""
        path = connection.url.path
        auditor(connection)(
            principal.name, AuditAction.ACCESS_DENIED, outcome="denied", path=path, **why
        )
        self._deny(is_websocket, 403, detail)

    @staticmethod
    def _csrf_refusal(
        connection: HTTPConnection, principal: Principal, is_websocket: bool
    ) -> str | None:
        """Why a cookie-authenticated request is refused as forged, or None."""
        # SameSite=Strict already keeps the cookie off other sites' requests; the origin
        # check and the token are the second and third locks on the same door.
        if cross_site(connection):
            return "cross-site request refused"
        method = "GET" if is_websocket else connection.scope["method"]
        if method in SAFE_METHODS:
            return None
        sent = connection.headers.get(CSRF_HEADER, "")
        expected = principal.csrf_token or ""
        if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
            return "CSRF token missing or wrong"
        return None

    @staticmethod
    def _deny(is_websocket: bool, status: int, detail: str) -> NoReturn:
        if is_websocket:
            raise WebSocketException(WS_POLICY_VIOLATION, detail)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        raise HTTPException(status, detail, headers=headers)


class PageGuard(Guard):
    """A page's rule: like an API route's, but a visitor who is not signed in is sent to the
    sign-in page, which brings them back afterwards."""

    def __call__(self, connection: HTTPConnection) -> Principal | None:
        try:
            return super().__call__(connection)
        except HTTPException as exc:
            if exc.status_code != 401:
                raise
            target = connection.url.path
            if connection.url.query:
                target += f"?{connection.url.query}"
            location = f"/login?{urlencode({'next': target})}"
            raise HTTPException(303, "sign in required", headers={"Location": location}) from None


def page_requires(*permissions: Permission) -> Any:
    return Depends(PageGuard(permissions))


def requires(*permissions: Permission, open_to_limited_tokens: bool = False) -> Any:
    """``Depends`` on a guard: the route needs a signed-in user with these permissions.

    A route that names none is still refused to an API token limited to some permissions,
    unless it says ``open_to_limited_tokens`` (see ``services/access.py``)."""
    return Depends(Guard(permissions, open_to_limited_tokens=open_to_limited_tokens))


def public() -> Any:
    """``Depends`` on a guard that lets everyone in (health, sign-in)."""
    return Depends(Guard((), public=True))


def route_guard(route: APIRoute | APIWebSocketRoute) -> Guard | None:
    """The guard a route declared, found in its dependency tree."""
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        if isinstance(dependant.call, Guard):
            return dependant.call
        pending.extend(dependant.dependencies)
    return None


def served_routes(app: FastAPI) -> list[tuple[str, BaseRoute]]:
    """(path, route) for every route the app serves. Newer FastAPI keeps each included
    router as one node of ``app.routes`` and offers ``iter_route_contexts`` to walk them;
    older versions copied the routes into ``app.routes`` themselves."""
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    if walk is None:
        return [(str(getattr(route, "path", "")), route) for route in app.routes]
    return [(str(context.path), context.original_route) for context in walk(app.routes)]


def ensure_every_route_guarded(app: FastAPI) -> None:
    unguarded = []
    for path, route in served_routes(app):
        if isinstance(route, APIRoute | APIWebSocketRoute):
            if route_guard(route) is None:
                unguarded.append(path)
        elif not (isinstance(route, Mount) and path in PUBLIC_MOUNTS):
            unguarded.append(path or repr(route))
    if unguarded:
        raise RuntimeError(f"routes without an access rule: {', '.join(sorted(unguarded))}")
