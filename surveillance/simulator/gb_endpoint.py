"""The simulated GB platform's SIP endpoint: one UDP socket or one TCP connection to the
upper platform, client transactions with UDP retransmission, and answers to retransmitted
requests (RFC 3261 s.17, s.18).

Requests the upper platform sends come back over the same socket / connection: over UDP to
the address this platform registered from, over TCP on the connection it opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any

from surveillance.simulator import gb_sip
from surveillance.simulator.gb_sip import Message

log = logging.getLogger(__name__)

T1_S, T2_S = 0.5, 4.0  # RFC 3261 s.17.1.1.1 timers
SERVER_CACHE_S = 32.0  # how long a response answers a retransmitted request (64*T1)
SERVER_CACHE_MAX = 2000
MAX_TCP_BUFFER = 1 << 20
Address = tuple[str, int]
Reply = Callable[[Message], None]
RequestHandler = Callable[[Message, Reply], Coroutine[Any, Any, None]]


class SipEndpoint(asyncio.DatagramProtocol):
    def __init__(self, *, host: str, transport: str, server: Address, on_request: RequestHandler):
        self.host = host
        self.transport_name = transport.upper()  # "UDP" / "TCP" in Via
        self.server = server
        self._on_request = on_request
        self._udp: asyncio.DatagramTransport | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[tuple[str, int, str], asyncio.Future[Message]] = {}
        self._provisional: set[tuple[str, int, str]] = set()
        self._answered: OrderedDict[tuple[str, ...], tuple[float, Message | None]] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self.local_port = 0
        self.dropped = 0

    async def open(self, local_port: int = 0) -> None:
        loop = asyncio.get_running_loop()
        if self.transport_name == "UDP":
            transport, _ = await loop.create_datagram_endpoint(
                lambda: self, local_addr=(self.host, local_port)
            )
            self._udp = transport
            self.local_port = transport.get_extra_info("sockname")[1]
        else:
            reader, writer = await asyncio.open_connection(
                *self.server, local_addr=(self.host, local_port)
            )
            self._writer = writer
            self.local_port = writer.get_extra_info("sockname")[1]
            self._reader_task = loop.create_task(self._read_tcp(reader))

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for task in [*self._tasks, *([self._reader_task] if self._reader_task else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("endpoint closed"))

    @property
    def closed(self) -> bool:
        """Over TCP: no connection (the upper platform closed it, or it could not be made)."""
        if self.transport_name != "TCP":
            return False
        return self._reader_task is None or self._reader_task.done()

    def via(self) -> str:
        return (
            f"SIP/2.0/{self.transport_name} {self.host}:{self.local_port};rport;"
            f"branch={gb_sip.new_branch()}"
        )

    def send(self, message: Message, address: Address | None = None) -> None:
        data = message.to_bytes()
        if self._udp is not None:
            self._udp.sendto(data, address or self.server)
        elif self._writer is not None:
            self._writer.write(data)

    async def request(self, message: Message, timeout_s: float = 10.0) -> Message:
        """Send a request, retransmitting over UDP, and wait for its final response."""
        number, method = message.cseq()
        key = (message.header("call-id") or "", number, method)
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        deadline = time.monotonic() + timeout_s
        interval = T1_S
        try:
            while True:
                if key not in self._provisional or self._udp is None:
                    self.send(message)
                wait = min(interval, deadline - time.monotonic())
                if wait <= 0:
                    raise TimeoutError(f"no answer to {method} within {timeout_s:g} s")
                done, _ = await asyncio.wait({future}, timeout=wait)
                if done:
                    return future.result()
                if self._udp is None:
                    interval = deadline - time.monotonic()  # TCP is reliable: no retransmits
                else:
                    interval = min(interval * 2, T2_S)
        finally:
            self._pending.pop(key, None)
            self._provisional.discard(key)

    # -- incoming ---------------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self._received(data, (addr[0], addr[1]))

    async def _read_tcp(self, reader: asyncio.StreamReader) -> None:
        buffer = b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                log.info("GB sim: the upper platform closed the SIP connection")
                return
            buffer += chunk
            while (length := gb_sip.frame_length(buffer.lstrip(b"\r\n"))) is not None:
                buffer = buffer.lstrip(b"\r\n")
                self._received(buffer[:length], self.server)
                buffer = buffer[length:]
            if len(buffer) > MAX_TCP_BUFFER:
                buffer = b""
                self.dropped += 1

    def _received(self, data: bytes, source: Address) -> None:
        if not data.strip():
            return  # a keep-alive CRLF (RFC 5626 s.3.5.1)
        try:
            message = gb_sip.parse(data)
        except (gb_sip.SipParseError, ValueError) as exc:
            self.dropped += 1
            log.debug("GB sim: dropped a malformed message: %s", exc)
            return
        if message.method is None:
            self._response(message)
        else:
            self._request(message, source)

    def _response(self, message: Message) -> None:
        number, method = message.cseq()
        key = (message.header("call-id") or "", number, method)
        future = self._pending.get(key)
        if future is None or future.done():
            return
        if message.status < 200:
            self._provisional.add(key)
        else:
            future.set_result(message)

    def _request(self, message: Message, source: Address) -> None:
        number, method = message.cseq()
        via = message.header("via") or ""
        key = (
            message.header("call-id") or "",
            str(number),
            method,
            gb_sip.param(via, "branch") or "",
        )
        now = time.monotonic()
        while self._answered and next(iter(self._answered.values()))[0] < now - SERVER_CACHE_S:
            self._answered.popitem(last=False)
        if method != "ACK" and key in self._answered:
            cached = self._answered[key][1]
            if cached is not None:  # else still being answered (or deliberately not)
                self.send(cached, source)
            return
        if method != "ACK":
            self._answered[key] = (now, None)
            if len(self._answered) > SERVER_CACHE_MAX:
                self._answered.popitem(last=False)

        def reply(response: Message) -> None:
            if response.status >= 200 and key in self._answered:
                self._answered[key] = (self._answered[key][0], response)
            self.send(response, source)

        task = asyncio.get_running_loop().create_task(self._on_request(message, reply))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
