"""``/api/live/mse``'s guard: a session or token as every route, or a single-use ticket
(``services/mse_tickets.py``) from the page of a live node of the cluster."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import HTTPConnection

from surveillance.api.forward import node_origins
from surveillance.api.guards import SESSION_COOKIE, Guard, authenticate, own_origin
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.services.mse_tickets import Credential, MseTickets

TICKET_PARAM = "ticket"


def credential_of(connection: HTTPConnection) -> Credential | None:
    """The credential ``guards.authenticate`` reads, in its order: bearer token, cookie."""
    scheme, _, value = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return Credential("bearer", value.strip())
    session = connection.cookies.get(SESSION_COOKIE)
    return Credential("session", session) if session else None


def principal_of(connection: HTTPConnection, credential: Credential) -> Principal | None:
    """Who ``credential`` is now (None: signed out, revoked, disabled)."""
    auth = connection.app.state.node.auth
    if credential.kind == "bearer":
        principal: Principal | None = auth.token_principal(credential.secret)
    else:
        principal = auth.session_principal(credential.secret)
    return principal


def ticket_origin_allowed(connection: HTTPConnection, origin: str) -> bool:
    origin = origin.lower()
    return origin in node_origins(connection) | {own_origin(connection)}


class MseGuard(Guard):
    """``/api/live/mse``'s rule: the usual sign-in, or a ticket from a live node's page.

    With a ticket the cookie's CSRF and origin checks do not apply (the ticket is the
    token, single use); the Origin must be this node's or a live cluster node's."""

    def __init__(self) -> None:
        super().__init__((Permission.LIVE_VIEW,))

    def __call__(self, connection: HTTPConnection) -> Principal | None:
        ticket = connection.query_params.get(TICKET_PARAM)
        if ticket is None:
            connection.state.recheck = None
            return super().__call__(connection)
        is_websocket = connection.scope["type"] == "websocket"
        tickets: MseTickets = connection.app.state.node.mse_tickets
        camera = connection.query_params.get("camera", "")
        stream = connection.query_params.get("stream", "main")
        # Taken (spent) before anything is checked: a ticket refused for its origin, its
        # camera or anything else is used up too, so one seen anywhere (a proxy's log, a
        # shoulder) cannot be replayed from elsewhere within its life.
        taken = tickets.take(ticket, camera, stream)
        origin = connection.headers.get("origin")
        if origin is None or not ticket_origin_allowed(connection, origin):
            self._deny(is_websocket, 403, "a ticket is taken from a cluster node's page only")
        if taken is None:
            self._deny(is_websocket, 403, "ticket unknown, used or expired")
        user_id, credential = taken
        principal = principal_of(connection, credential)
        if principal is None or principal.user.id != user_id:
            self._deny(is_websocket, 403, "the sign-in behind the ticket has ended")
        if not principal.can(Permission.LIVE_VIEW):
            self._deny(is_websocket, 403, "your role may not do this (needs live.view)")
        connection.state.principal = principal
        connection.state.recheck = lambda: principal_of(connection, credential)
        return principal


def recheck_of(connection: HTTPConnection) -> Callable[[], Principal | None]:
    """How a live view opened on ``connection`` looks its credential up again."""
    recheck: Callable[[], Principal | None] | None = getattr(connection.state, "recheck", None)
    return recheck if recheck is not None else (lambda: authenticate(connection))
