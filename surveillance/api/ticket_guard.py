"""``/api/live/mse``'s guard: a session or token as every route, or a single-use ticket
(``services/mse_tickets.py``) from a page of the cluster (``ticket_origin_allowed``)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from surveillance.api.forward import node_origins
from surveillance.api.guards import SESSION_COOKIE, Guard, authenticate, own_origin
from surveillance.api.hosts import allowed_hosts
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
    """Whether a page of ``origin`` may use a ticket here: this node's own origin, a live
    node's (its ``cluster.url``), or any http(s) origin, on any port, whose host is one of
    this node's ``server.allowed_hosts``: the names the operator lets browsers reach the
    service by (``localhost`` beside ``127.0.0.1``, a load balancer's name, whose port and
    scheme are its own).

    Widening the origins is safe because the ticket, not the origin, is the credential: it is
    minted only for a plan that a signed-in user asked for through a node (authenticated and
    CSRF-checked there), bound to that user, one camera and one stream, good for one
    connection and TICKET_TTL_S, spent by any attempt (a refused one too), and never logged.
    The origin check only keeps a ticket that leaked to a foreign site's page from being
    used by that page; any non-browser client sets Origin freely anyway. A page on a name
    the operator configured for the service is one of ours."""
    origin = origin.lower()
    if origin in node_origins(connection) | {own_origin(connection)}:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or parts.username or parts.path not in ("", "/"):
        return False
    try:
        parts.port  # noqa: B018  (raises ValueError on a port that is not one)
    except ValueError:
        return False
    server = connection.app.state.node.config.server
    return parts.hostname is not None and parts.hostname in allowed_hosts(server)


class MseGuard(Guard):
    """``/api/live/mse``'s rule: the usual sign-in, or a ticket from a live node's page.

    With a ticket the cookie's CSRF and origin checks do not apply (the ticket is the
    token, single use); the Origin must be one ``ticket_origin_allowed`` accepts."""

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
