"""Single-use tickets for fragmented MP4 over a WebSocket on another node (cluster mode).

A wall page served by node A plays a camera node B holds. Its plan request goes to A, which
forwards it to B; B answers with a ``ws://B/api/live/mse?...&ticket=...`` URL. The browser
has no session cookie for B's origin (and a WebSocket cannot carry a header), so the
ticket stands for the credential that asked for the plan:

- minted by B only (the owner, in memory), for one user, one camera, one stream;
- good for TICKET_TTL_S and for one connection: taken out of the store by any attempt to
  use it, a refused one included (bad origin, another camera), so one seen anywhere is spent;
- compared in constant time (``hmac.compare_digest``), never in an error, never logged:
  it travels in the socket's query string, which uvicorn writes in its log lines, and the
  redactor takes any ``ticket=`` value out of every line (surveillance/redact.py, logs.py).

Behind the ticket is the credential the forwarded plan carried (a session cookie or an API
token), kept in memory on B for the ticket's life: the viewer it opens is re-checked with
that credential as any other live view is, so signing out ends it. The WebSocket's guard
(``api/ticket_guard.py``) takes tickets and checks the page's origin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

TICKET_TTL_S = 30.0
MAX_TICKETS = 10_000  # minted and not used yet; beyond it the oldest go


@dataclass(frozen=True)
class Credential:
    """The secret a request authenticated with: ("bearer" | "session", value)."""

    kind: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class _Ticket:
    digest: bytes
    user_id: int
    camera: str
    stream: str
    credential: Credential = field(repr=False)
    expires_at: float


class MseTickets:
    """The tickets this node minted and nobody used yet. Thread-safe (the WebSocket's
    guard runs in a worker thread)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tickets: dict[bytes, _Ticket] = {}

    def mint(self, user_id: int, camera: str, stream: str, credential: Credential) -> str:
        ticket = secrets.token_urlsafe(32)
        digest = _digest(ticket)
        now = self._clock()
        with self._lock:
            self._drop_expired(now)
            while len(self._tickets) >= MAX_TICKETS:
                self._tickets.pop(next(iter(self._tickets)))
            self._tickets[digest] = _Ticket(
                digest, user_id, camera, stream, credential, now + TICKET_TTL_S
            )
        return ticket

    def take(self, ticket: str, camera: str, stream: str) -> tuple[int, Credential] | None:
        """(user id, credential) of a good ticket for this camera and stream, which is
        used up; None for any other (unknown, expired, used, another camera)."""
        digest = _digest(ticket)
        with self._lock:
            found = self._tickets.pop(digest, None)
        if found is None or not hmac.compare_digest(found.digest, digest):
            return None
        if found.expires_at <= self._clock():
            return None
        if found.camera != camera or found.stream != stream:
            return None
        return found.user_id, found.credential

    def __len__(self) -> int:
        return len(self._tickets)

    def _drop_expired(self, now: float) -> None:
        # Minted in time order with one life each: the oldest (first) expire first.
        while self._tickets:
            oldest = next(iter(self._tickets.values()))
            if oldest.expires_at > now:
                return
            del self._tickets[oldest.digest]


def _digest(ticket: str) -> bytes:
    # Kept by its hash: the store holds nothing a memory dump could replay as a ticket.
    return hashlib.sha256(ticket.encode(errors="replace")).digest()
