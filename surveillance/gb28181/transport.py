"""The SIP transport: UDP and TCP on one host and port (RFC 3261 s.18), turning what arrives
into parsed messages for a handler, refusing what is malformed, oversized or too much, and
sending messages to a peer.

Everything that arrives is hostile until parsed: sizes are checked before parsing, a TCP
stream is framed by Content-Length with a cap, each source address has a token bucket
(past it a datagram is dropped, a TCP connection is read later), and trouble is logged at
most once a minute per address (limits.py).
TCP connections cost a socket each: which accepted ones may stay is tcp_room.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from surveillance.gb28181.limits import FloodLimiter, LogLimiter
from surveillance.gb28181.sip_message import (
    SipError,
    SipMessage,
    SipRequest,
    parse_message,
    response_to,
    to_bytes,
)
from surveillance.gb28181.tcp_framing import FramingLost, framed_messages
from surveillance.gb28181.tcp_room import Inbound, InboundConnections

log = logging.getLogger(__name__)

MAX_TCP_CONNECTIONS = 256
MAX_TCP_PER_ADDRESS = 8  # accepted connections from one address at once
TCP_FIRST_MESSAGE_S = 10.0  # an accepted connection must bring a valid message by then
TCP_IDLE_S = 300.0  # a connection silent this long is closed
STOP_GRACE_S = 1.0  # at stop, connections closed get this long to end their reads
TCP_CONNECT_TIMEOUT_S = 5.0
TCP_WRITE_TIMEOUT_S = 5.0
RESPONSE_RATE_FACTOR = 10  # responses may come this many times faster than requests
# A registered platform may send this many times the rate of a stranger: its catalog comes
# as hundreds of pages back to back (10,000 channels in pages of 20 is 500 MESSAGEs), and
# dropping them only makes it retransmit. The rate limit is for addresses nobody vouched for.
TRUSTED_RATE_FACTOR = 20
BIND_ATTEMPTS = 20  # port 0: tries to find a number free for both UDP and TCP
_KEEPALIVE = frozenset({b"\r\n", b"\r\n\r\n"})  # RFC 5626 s.3.5.1 pings


@dataclass(frozen=True)
class Peer:
    host: str
    port: int
    transport: str  # "udp" | "tcp"


Handler = Callable[[SipMessage, Peer], Awaitable[None]]


@dataclass
class TransportStats:
    """Counters: ``received`` messages handed to the handler, ``sent`` messages sent, and
    what was dropped by reason."""

    received: int = 0
    sent: int = 0
    dropped_malformed: int = 0
    dropped_oversized: int = 0
    dropped_flood: int = 0
    delayed_flood: int = 0  # TCP messages read later rather than dropped (backpressure)
    # TCP connections refused (per-address cap), closed to make room, or closed for not
    # bringing a valid message in time
    dropped_connections: int = 0


class SipTransport:
    """A UDP endpoint and a TCP server on the same host and port, and TCP connections out."""

    def __init__(
        self,
        host: str,
        port: int,
        handler: Handler,
        *,
        max_message_bytes: int,
        requests_per_s: float,
        max_tcp_connections: int = MAX_TCP_CONNECTIONS,
        max_tcp_per_address: int = MAX_TCP_PER_ADDRESS,
        tcp_first_message_s: float = TCP_FIRST_MESSAGE_S,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._handler = handler
        self._max_bytes = max_message_bytes
        self._max_tcp = max_tcp_connections
        self._requests = FloodLimiter(requests_per_s)
        # Responses answer what we sent (a burst of INVITEs gets a burst of 100s and 200s):
        # limited apart and more loosely, so our own traffic is not taken for a flood.
        self._responses = FloodLimiter(requests_per_s * RESPONSE_RATE_FACTOR)
        self._trusted_limiter = FloodLimiter(requests_per_s * TRUSTED_RATE_FACTOR)
        self._trusted: set[str] = set()
        self._logs = LogLimiter(log)
        self.stats = TransportStats()
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._port = 0
        self._connections: dict[tuple[str, int], asyncio.StreamWriter] = {}
        self._inbound = InboundConnections(max_tcp_per_address, tcp_first_message_s)
        self._connecting: dict[tuple[str, int], tuple[asyncio.Lock, int]] = {}  # lock, users
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        """Binds UDP, then TCP on the UDP port's number; with port 0 retries the pair until a
        number free for both is found."""
        loop = asyncio.get_running_loop()
        for _ in range(BIND_ATTEMPTS):
            udp, _protocol = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self._datagram), local_addr=(self._host, self._requested_port)
            )
            port = int(udp.get_extra_info("sockname")[1])
            try:
                self._server = await asyncio.start_server(
                    self._accepted, self._host, port, reuse_address=True
                )
            except OSError as error:
                udp.close()
                if self._requested_port or error.errno != errno.EADDRINUSE:
                    raise
                continue
            self._udp, self._port = udp, port
            return
        raise OSError(errno.EADDRINUSE, "no port free for both UDP and TCP")

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections.values()):
            writer.close()  # their reads end (EOF), the tasks with them
        tasks = list(self._tasks)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
            for task in pending:  # a handler still at work, a throttled read
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def send(self, message: SipMessage, peer: Peer) -> None:
        """Sends one message; over TCP on the peer's open connection, else a new one (whose
        replies are read like any other connection's). OSError when it cannot be sent."""
        data = to_bytes(message)
        if peer.transport == "udp":
            if self._udp is None:
                raise OSError(errno.ENOTCONN, "the SIP transport is not running")
            self._udp.sendto(data, (peer.host, peer.port))
        else:
            writer = await self._connection(peer)
            writer.write(data)
            await asyncio.wait_for(writer.drain(), TCP_WRITE_TIMEOUT_S)
        self.stats.sent += 1

    async def _connection(self, peer: Peer) -> asyncio.StreamWriter:
        """The open connection to ``peer``, else a new one; sends to one peer at the same
        time wait for the one connection rather than each opening its own."""
        key = (peer.host, peer.port)
        lock, users = self._connecting.get(key, (asyncio.Lock(), 0))
        self._connecting[key] = (lock, users + 1)
        try:
            async with lock:
                writer = self._connections.get(key)
                if writer is None or writer.is_closing():
                    writer = await self._connect(peer)
                return writer
        finally:
            lock, users = self._connecting[key]
            if users == 1:
                del self._connecting[key]  # bounded: only peers being connected to
            else:
                self._connecting[key] = (lock, users - 1)

    async def _connect(self, peer: Peer) -> asyncio.StreamWriter:
        if self._server is None:
            raise OSError(errno.ENOTCONN, "the SIP transport is not running")
        if len(self._connections) >= self._max_tcp and not self._make_room(peer.host):
            raise OSError(errno.EMFILE, "too many SIP TCP connections")
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(peer.host, peer.port), TCP_CONNECT_TIMEOUT_S
        )
        key = (peer.host, peer.port)  # as the caller names it, which send() looks up
        self._connections[key] = writer
        self._spawn(self._serve_connection(reader, writer, key))
        return writer

    # -- receiving --------------------------------------------------------------------------

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _datagram(self, data: bytes, address: Any) -> None:
        peer = Peer(str(address[0]), int(address[1]), "udp")
        if data in _KEEPALIVE:
            return
        if not self._allowed(data, peer):
            return
        if len(data) > self._max_bytes:
            self.stats.dropped_oversized += 1
            self._logs.warning(peer.host, "oversized", f"a datagram of {len(data)} bytes")
            # Parsing is bounded here too: a datagram is at most 64 KB.
            self._answer_refused(data, peer, 513, "Message Too Large", len(data))
            return
        self._deliver(data, peer)

    def trust(self, host: str, trusted: bool = True) -> None:
        """Let ``host`` (a platform that registered with the right password) send at
        TRUSTED_RATE_FACTOR times the rate; ``trusted=False`` takes that back."""
        if trusted:
            self._trusted.add(host)
        else:
            self._trusted.discard(host)

    def _limiter(self, data: bytes, host: str) -> FloodLimiter:
        if data.startswith(b"SIP/2.0 "):
            return self._responses
        return self._trusted_limiter if host in self._trusted else self._requests

    def _allowed(self, data: bytes, peer: Peer) -> bool:
        if self._limiter(data, peer.host).allow(peer.host):
            return True
        self.stats.dropped_flood += 1
        self._logs.warning(peer.host, "flood", "over the message rate limit; dropped")
        return False

    def _deliver(self, data: bytes, peer: Peer) -> bool:
        """Parses and hands on one message; False when it was malformed."""
        try:
            message = parse_message(data, self._max_bytes)
        except SipError as error:
            self.stats.dropped_malformed += 1
            self._logs.warning(peer.host, "malformed", str(error))
            self._answer(error.partial, peer, 400, f"Bad Request ({error})")
            return False
        if isinstance(message, SipRequest):
            _mark_received(message, peer)
        self.stats.received += 1
        self._spawn(self._handle(message, peer))
        return True

    def _answer_refused(self, data: bytes, peer: Peer, status: int, reason: str, size: int) -> None:
        try:
            message: SipMessage | None = parse_message(data, size)
        except SipError as error:
            message = error.partial
        self._answer(message if isinstance(message, SipRequest) else None, peer, status, reason)

    def _answer(self, request: SipRequest | None, peer: Peer, status: int, reason: str) -> None:
        """Refuses a request that could not be taken (never an ACK: RFC 3261 s.17.1.1.3)."""
        if request is None or request.method == "ACK":
            return
        reason = reason.replace("\r", " ").replace("\n", " ")[:160]
        self._spawn(self._send_quietly(response_to(request, status, reason), peer))

    async def _send_quietly(self, message: SipMessage, peer: Peer) -> None:
        try:
            await self.send(message, peer)
        except (OSError, TimeoutError, SipError) as error:
            self._logs.warning(peer.host, "send failed", type(error).__name__)

    async def _handle(self, message: SipMessage, peer: Peer) -> None:
        try:
            await self._handler(message, peer)
        except Exception:  # one bad message must not end the transport
            self._logs.warning(peer.host, "handler failed", "see the debug log")
            log.debug("SIP handler failed", exc_info=True)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        address = writer.get_extra_info("peername")
        key = (str(address[0]), int(address[1]))
        refusal = None
        if self._inbound.full_for(key[0]):
            refusal = f"over {self._inbound.max_per_address} connections from one address; refused"
        elif len(self._connections) >= self._max_tcp and not self._make_room(key[0]):
            refusal = "too many connections; refused"
        if refusal is not None:
            self.stats.dropped_connections += 1
            self._logs.warning(key[0], "tcp", refusal)
            writer.close()
            return
        inbound = self._inbound.add(key, writer)
        self._connections[key] = writer
        task = asyncio.current_task()
        if task is not None:  # stop() ends it with the others
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # Ended by stop(): returning normally, as asyncio's own done-callback of a connection
        # task (StreamReaderProtocol) calls task.exception(), which raises on a cancelled
        # task and so logged an ERROR traceback at every shutdown.
        with contextlib.suppress(asyncio.CancelledError):
            await self._serve_connection(reader, writer, key, inbound)

    def _make_room(self, newcomer: str) -> bool:
        """Closes an accepted connection so that a new one fits; False when there is none."""
        closing = self._inbound.to_close(newcomer)
        if closing is None:
            return False
        key, victim = closing
        self._forget(key, victim.writer)
        victim.writer.close()
        self.stats.dropped_connections += 1
        self._logs.warning(
            key[0], "tcp", "all connections taken: one of this address's closed for a newcomer"
        )
        return True

    def _forget(self, key: tuple[str, int], writer: asyncio.StreamWriter) -> None:
        if self._connections.get(key) is writer:
            del self._connections[key]
        self._inbound.forget(key, writer)

    async def _serve_connection(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        key: tuple[str, int],
        inbound: Inbound | None = None,
    ) -> None:
        """Reads one connection until it ends; its messages come from ``key``'s peer, so a
        reply sent to that peer goes back over this connection."""
        try:
            await self._read_stream(reader, Peer(key[0], key[1], "tcp"), inbound)
        except TimeoutError:
            if inbound is not None and not inbound.proven:
                self.stats.dropped_connections += 1
                self._logs.warning(key[0], "tcp", "no valid SIP message in time; closed")
        except (OSError, asyncio.IncompleteReadError):
            pass  # the peer went away: the connection ends either way
        finally:
            self._forget(key, writer)
            writer.close()

    async def _read_stream(
        self, reader: asyncio.StreamReader, peer: Peer, inbound: Inbound | None
    ) -> None:
        """Hands on each message of the connection until the peer closes, stays silent (see
        _silence_s), or breaks the framing."""
        silence_s = functools.partial(self._inbound.silence_s, inbound, TCP_IDLE_S)
        messages = framed_messages(reader, self._max_bytes, silence_s)
        try:
            async for data in messages:
                await self._throttle(data, peer)
                if self._deliver(data, peer) and inbound is not None:
                    inbound.brought_a_message()
        except FramingLost as lost:
            self._framing_lost(peer, lost.kind, lost.detail)

    async def _throttle(self, data: bytes, peer: Peer) -> None:
        """Over TCP a flood is slowed, not dropped: the connection is not read until the
        address has a token again, so TCP's flow control holds the sender back and nothing
        it sent in order (a catalog's pages) is lost."""
        wait_s = self._limiter(data, peer.host).reserve(peer.host)
        if wait_s > 0:
            self.stats.delayed_flood += 1
            self._logs.warning(peer.host, "flood", "over the message rate limit; TCP slowed")
            await asyncio.sleep(wait_s)

    def _framing_lost(self, peer: Peer, kind: str, detail: str) -> None:
        if kind == "oversized":
            self.stats.dropped_oversized += 1
        else:
            self.stats.dropped_malformed += 1
        self._logs.warning(peer.host, kind, f"{detail}; TCP connection closed")


def _mark_received(request: SipRequest, peer: Peer) -> None:
    """Writes where a request really came from into its top Via (RFC 3261 s.18.2.1
    ``received``, RFC 3581 s.4 ``rport``), which its responses copy: a device behind NAT
    learns the address it is seen at."""
    vias = request.headers.get_all("Via")
    if not vias:
        return
    top, comma, rest = vias[0].partition(",")
    sent_by, *params = (part.strip() for part in top.split(";"))
    host = sent_by.split()[-1] if sent_by.split() else ""
    host = host[1 : host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
    names = [p.split("=", 1)[0].lower() for p in params]
    kept = [
        f"rport={peer.port}" if name == "rport" else param  # asked for: the port it came from
        for name, param in zip(names, params, strict=True)
        if name != "received"
    ]
    if host != peer.host:
        kept.append(f"received={peer.host}")
    request.headers.set("Via", ";".join([sent_by, *kept]) + comma + rest)
    for value in vias[1:]:
        request.headers.add("Via", value)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, received: Callable[[bytes, Any], None]) -> None:
        self._received = received

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._received(data, addr)

    def error_received(self, exc: Exception) -> None:
        # An ICMP port unreachable for something we sent: the peer is gone; nothing to do.
        log.debug("SIP UDP error: %s", exc)
