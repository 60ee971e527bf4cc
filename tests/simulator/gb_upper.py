"""A tiny GB/T 28181 upper platform for testing the simulated lower platform on its own.

Written in the tests with raw SIP text, sharing nothing with the simulator's SIP code (nor
with surveillance.gb28181, tested against the simulator elsewhere): it challenges REGISTER
with an RFC 2617 digest and checks the answer, answers MESSAGEs 200 and keeps their bodies,
and sends MESSAGE queries, INVITE / ACK / BYE and collects the RTP that follows.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import re
import secrets
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

REALM = "3402000000"
SERVER_ID = "34020000002000000001"


UNTIL_S = 20.0  # generous: CI is a loaded 2-core machine


async def until(condition: Callable[[], object], what: str, within_s: float = UNTIL_S) -> None:
    """Return once ``condition()`` holds; AssertionError naming ``what`` after ``within_s``."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        if condition():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {within_s:g} s")
        await asyncio.sleep(0.02)


@dataclass
class Sip:
    start: str
    headers: dict[str, str]
    body: bytes
    source: tuple[str, int]


def parse(data: bytes, source: tuple[str, int]) -> Sip:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return Sip(lines[0], headers, body[: int(headers.get("content-length", "0"))], source)


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


@dataclass
class Upper(asyncio.DatagramProtocol):
    password: str
    qop: bool = True
    registers: list[Sip] = field(default_factory=list)
    messages: list[Sip] = field(default_factory=list)
    requests: list[Sip] = field(default_factory=list)
    registered_expires: int | None = None
    auth_failures: int = 0
    _responses: dict[str, asyncio.Future[Sip]] = field(default_factory=dict)
    _udp: asyncio.DatagramTransport | None = None
    _tcp: asyncio.StreamWriter | None = None
    _server: asyncio.Server | None = None
    port: int = 0
    nonce: str = field(default_factory=lambda: secrets.token_hex(8))

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # UDP and TCP on one port number: the free UDP port may be taken for TCP by another
        # test at the same moment, so the pair is tried again on another port.
        for _ in range(20):
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: self, local_addr=("127.0.0.1", 0)
            )
            self.port = self._udp.get_extra_info("sockname")[1]
            try:
                self._server = await asyncio.start_server(self._tcp_client, "127.0.0.1", self.port)
                return
            except OSError as exc:
                self._udp.close()
                if exc.errno != errno.EADDRINUSE:
                    raise
        raise OSError(errno.EADDRINUSE, "no port free for both UDP and TCP")

    def close(self) -> None:
        if self._udp:
            self._udp.close()
        if self._server:
            self._server.close()
        if self._tcp:
            self._tcp.close()

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tcp = writer
        peer = writer.get_extra_info("peername")
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            body = await reader.readexactly(int(length.group(1)) if length else 0)
            self._handle(parse(head + body, peer))

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._handle(parse(data, addr))

    def send(self, text: str, body: bytes, to: tuple[str, int]) -> None:
        data = text.replace("\n", "\r\n").encode() + body
        if self._tcp is not None:
            self._tcp.write(data)
        else:
            assert self._udp is not None
            self._udp.sendto(data, to)

    def _reply(self, request: Sip, status: str, extra: str = "", body: bytes = b"") -> None:
        h = request.headers
        to = h["to"] if ";tag=" in h["to"] else h["to"] + ";tag=up1"
        text = (
            f"SIP/2.0 {status}\nVia: {h['via']}\nFrom: {h['from']}\nTo: {to}\n"
            f"Call-ID: {h['call-id']}\nCSeq: {h['cseq']}\n{extra}Content-Length: {len(body)}\n\n"
        )
        self.send(text, body, request.source)

    def _handle(self, message: Sip) -> None:
        if message.start.startswith("SIP/2.0"):
            key = f"{message.headers['call-id']} {message.headers['cseq']}"
            future = self._responses.get(key)
            if future and not future.done() and int(message.start.split()[1]) >= 200:
                future.set_result(message)
            return
        self.requests.append(message)
        method = message.start.split()[0]
        if method == "REGISTER":
            self._register(message)
        elif method == "MESSAGE":
            self.messages.append(message)
            self._reply(message, "200 OK")
        else:
            self._reply(message, "200 OK")

    def _register(self, message: Sip) -> None:
        self.registers.append(message)
        auth = message.headers.get("authorization")
        challenge = (
            f'WWW-Authenticate: Digest realm="{REALM}", nonce="{self.nonce}", algorithm=MD5'
            + (', qop="auth"' if self.qop else "")
            + "\n"
        )
        if auth is None:
            self._reply(message, "401 Unauthorized", challenge)
            return
        f = dict(re.findall(r'(\w+)="?([^",]+)"?', auth))
        ha1 = md5(f"{f['username']}:{REALM}:{self.password}")
        ha2 = md5(f"REGISTER:{f['uri']}")
        if self.qop:
            want = md5(f"{ha1}:{self.nonce}:{f['nc']}:{f['cnonce']}:auth:{ha2}")
        else:
            want = md5(f"{ha1}:{self.nonce}:{ha2}")
        if f.get("response") != want or f.get("nonce") != self.nonce:
            self.auth_failures += 1
            self._reply(message, "401 Unauthorized", challenge)
            return
        expires = int(message.headers.get("expires", "3600"))
        self.registered_expires = expires
        self._reply(message, "200 OK", f"Expires: {expires}\n")

    async def request(
        self, method: str, to: tuple[str, int], user: str, body: bytes, ctype: str,
        call_id: str | None = None, cseq: int = 1, timeout_s: float = 10.0,
    ) -> Sip:  # fmt: skip
        call_id = call_id or secrets.token_hex(6)
        text = (
            f"{method} sip:{user}@{REALM} SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch=z9hG4bK{secrets.token_hex(5)}\n"
            f"From: <sip:{SERVER_ID}@{REALM}>;tag=up0\nTo: <sip:{user}@{REALM}>\n"
            f"Call-ID: {call_id}\nCSeq: {cseq} {method}\nMax-Forwards: 70\n"
            f"Contact: <sip:{SERVER_ID}@127.0.0.1:{self.port}>\n"
            + (f"Content-Type: {ctype}\n" if body else "")
            + f"Content-Length: {len(body)}\n\n"
        )
        if method == "ACK":
            self.send(text, body, to)
            return Sip("", {}, b"", to)
        future: asyncio.Future[Sip] = asyncio.get_running_loop().create_future()
        self._responses[f"{call_id} {cseq} {method}"] = future
        self.send(text, body, to)
        return await asyncio.wait_for(future, timeout_s)


def offer(port: int, ssrc: str, transport: str) -> bytes:
    """An INVITE's SDP (GB/T 28181-2016 Annex F): udp, tcp-passive (we listen), tcp-active."""
    proto = "RTP/AVP" if transport == "udp" else "TCP/RTP/AVP"
    lines = [
        "v=0", f"o={SERVER_ID} 0 0 IN IP4 127.0.0.1", "s=Play", "c=IN IP4 127.0.0.1", "t=0 0",
        f"m=video {port} {proto} 96", "a=recvonly", "a=rtpmap:96 PS/90000",
    ]  # fmt: skip
    if transport != "udp":
        lines += [f"a=setup:{transport.removeprefix('tcp-')}", "a=connection:new"]
    lines.append(f"y={ssrc}")
    return ("\r\n".join(lines) + "\r\n").encode()


def read_rtp(sock: socket.socket, tcp: bool, count: int, timeout_s: float) -> list[bytes]:
    """``count`` RTP packets from a UDP socket or an RFC 4571 framed TCP connection."""
    sock.settimeout(timeout_s)
    packets: list[bytes] = []
    buffer = b""
    while len(packets) < count:
        if not tcp:
            packets.append(sock.recv(65536))
            continue
        while len(buffer) >= 2 and len(buffer) >= 2 + struct.unpack(">H", buffer[:2])[0]:
            size = struct.unpack(">H", buffer[:2])[0]
            packets.append(buffer[2 : 2 + size])
            buffer = buffer[2 + size :]
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("the platform closed the media connection")
        buffer += chunk
    return packets[:count]
