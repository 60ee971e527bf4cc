"""The RTP ports GB/T 28181 streams are received on: ``rtp_port_min..rtp_port_max``.

Each stream of a platform's video takes one port for as long as it plays: a bound UDP socket
(``udp``) or a listening TCP socket the platform connects to (``tcp-passive``). Only even
ports are handed out (RFC 3550 s.11: RTP on an even port, its RTCP on the odd one above), so
a platform that also sends RTCP never hits another stream's port. A port another program
holds is skipped, not an error; the next search starts after the last port taken, so a port
just given back is not reused at once (a late packet of the old stream would land in the new).
The first search starts at a random port: a restarted node does not hand out the ports of
the last run first, where a platform may still be sending that run's streams.

Each stream takes 2 ports of the range (its even RTP port and the odd one above): size the
range as 2 x the streams that may play at once. When none is left the pool says so loudly
(a WARNING, at most once a minute, naming the range and how many streams hold it).
"""

from __future__ import annotations

import errno
import logging
import secrets
import socket
import threading
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

TCP_BACKLOG = 2  # one platform connection per stream; a second one waits and is ignored
EXHAUSTED_LOG_EVERY_S = 60.0


@dataclass(frozen=True)
class RtpPortUse:
    """The pool at a glance, for ``gb status`` and ``/api/gb/platforms``: ``total`` streams
    the range holds (2 ports each), ``used`` by streams now, ``free`` for more, ``refused``
    streams that found no free port since the start."""

    range: str  # "30000..30498": its first and last RTP (even) port
    total: int
    used: int
    free: int
    refused: int


def too_small_for(streams: int, total: int, what: str, port_range: str) -> str | None:
    """Why a range that holds ``total`` streams is too small for ``streams`` that play all
    the time (``what`` names them), or None: said at start, before the ports run out."""
    if streams <= total:
        return None
    return (
        f"{what} record {streams} channels continuously, but the RTP ports {port_range} "
        f"hold {total} streams (2 ports each): {streams - total} recordings and every live "
        f"view beyond them will be refused; widen gb28181.rtp_port_min..rtp_port_max to at "
        f"least {2 * streams} ports"
    )


class NoFreePort(Exception):
    """Every port of the range is taken (by streams, or by other programs)."""


class RtpPortPool:
    """Thread-safe: worker threads take ports, their feeds' close gives them back."""

    def __init__(self, host: str, first: int, last: int) -> None:
        self._host = host
        start = first + (first % 2)  # the first even port of the range
        self._ports = list(range(start, last + 1, 2))
        self._taken: set[int] = set()
        # Index into _ports where the next search starts.
        self._next = secrets.randbelow(len(self._ports)) if self._ports else 0
        self._lock = threading.Lock()
        self._exhausted_logged_at = float("-inf")
        self.exhausted = 0  # times a stream found no free port

    @property
    def size(self) -> int:
        return len(self._ports)

    @property
    def in_use(self) -> int:
        with self._lock:
            return len(self._taken)

    def use(self) -> RtpPortUse:
        """Ports other programs hold count as free (they are skipped when met)."""
        with self._lock:
            used = len(self._taken)
            return RtpPortUse(self.range_text, len(self._ports), used, len(self._ports) - used,
                              self.exhausted)  # fmt: skip

    @property
    def range_text(self) -> str:
        return f"{self._ports[0]}..{self._ports[-1]}" if self._ports else "-"

    def take(self, *, tcp: bool) -> tuple[int, socket.socket]:
        """A free port with its socket bound (and listening, for TCP). Raises NoFreePort."""
        with self._lock:
            for step in range(len(self._ports)):
                index = (self._next + step) % len(self._ports)
                port = self._ports[index]
                if port in self._taken:
                    continue
                sock = self._bind(port, tcp=tcp)
                if sock is None:
                    continue
                self._taken.add(port)
                self._next = (index + 1) % len(self._ports)
                return port, sock
            self.exhausted += 1
            playing = len(self._taken)
            now = time.monotonic()
            loud = now - self._exhausted_logged_at >= EXHAUSTED_LOG_EVERY_S
            if loud:
                self._exhausted_logged_at = now
        message = f"no free RTP port in {self.range_text} ({playing} streams play)"
        if loud:
            log.warning(
                "gb28181: %s: every port of gb28181.rtp_port_min..rtp_port_max is taken; "
                "each stream takes 2 ports: widen the range for more streams (further "
                "refusals counted, not logged, for a minute)", message,
            )  # fmt: skip
        raise NoFreePort(message)

    def give_back(self, port: int) -> None:
        with self._lock:
            self._taken.discard(port)

    def _bind(self, port: int, *, tcp: bool) -> socket.socket | None:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
        sock = socket.socket(family, kind)
        try:
            if tcp:
                # A port whose last connection is in TIME_WAIT can be listened on again.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, port))
            if tcp:
                sock.listen(TCP_BACKLOG)
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return None  # another program's port: try the next one
            # The address itself is wrong (not this host's): no port of the range will do.
            raise NoFreePort(f"RTP ports cannot be bound on {self._host}: {exc.strerror}") from exc
        return sock
