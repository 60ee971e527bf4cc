"""The SIP transport over real loopback sockets: UDP and TCP on one port, TCP framing, and
hostile input (malformed, oversized, floods) refused while others are still served."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from surveillance.gb28181.sip_message import (
    SipMessage,
    SipRequest,
    SipResponse,
    parse_message,
    response_to,
    to_bytes,
)
from surveillance.gb28181.transport import Peer, SipTransport

MAX_BYTES = 65000
WAIT_S = 10.0  # generous: CI is a loaded 2-core machine


def message_bytes(n: int = 1, body: bytes = b"", method: str = "MESSAGE") -> bytes:
    return (
        f"{method} sip:34020000002000000001@3402000000 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bK-{n}\r\n"
        "From: <sip:34020000001320000001@3402000000>;tag=f1\r\n"
        "To: <sip:34020000002000000001@3402000000>\r\n"
        f"Call-ID: call-{n}\r\nCSeq: {n} {method}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class Server:
    """A transport whose handler records what came and answers requests with 200."""

    def __init__(self, requests_per_s: float = 1000.0, **limits: Any) -> None:
        self.got: list[tuple[SipMessage, Peer]] = []
        self.arrived = asyncio.Event()
        self.transport = SipTransport(
            "127.0.0.1", 0, self.handle, max_message_bytes=MAX_BYTES,
            requests_per_s=requests_per_s, **limits,
        )  # fmt: skip

    async def handle(self, message: SipMessage, peer: Peer) -> None:
        self.got.append((message, peer))
        self.arrived.set()
        if isinstance(message, SipRequest) and message.headers.get("Subject") == "explode":
            raise RuntimeError("a handler bug")
        if isinstance(message, SipRequest):
            await self.transport.send(response_to(message, 200, to_tag="t"), peer)

    async def wait_for(self, count: int) -> None:
        async def enough() -> None:
            while len(self.got) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(enough(), WAIT_S)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    server = Server()
    await server.transport.start()
    yield server
    await server.transport.stop()


def udp_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


async def udp_reply(sock: socket.socket) -> SipMessage:
    data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 70000), WAIT_S)
    return parse_message(data, 70000)


async def test_udp_and_tcp_share_the_port_and_get_answers(server: Server) -> None:
    port = server.transport.port
    assert port > 0
    sock = udp_socket()
    sock.sendto(message_bytes(1, b"<Keepalive/>"), ("127.0.0.1", port))
    reply = await udp_reply(sock)
    assert isinstance(reply, SipResponse) and reply.status == 200
    assert reply.headers.get("Call-ID") == "call-1"
    # RFC 3581: the port it came from; its sent-by host is right, so no received=.
    via = reply.headers.get("Via") or ""
    assert via == f"SIP/2.0/UDP 127.0.0.1:5060;rport={sock.getsockname()[1]};branch=z9hG4bK-1"
    behind_nat = message_bytes(11).replace(
        b"Via: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bK-11\r\n",
        b"Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK-11;received=stale\r\n"
        b"Via: SIP/2.0/TCP [fe80::1]:5070;branch=z9hG4bK-older\r\n",
    )
    sock.sendto(behind_nat, ("127.0.0.1", port))
    reply = await udp_reply(sock)
    assert reply.headers.get_all("Via") == [
        f"SIP/2.0/UDP 192.168.1.64:5060;rport={sock.getsockname()[1]};branch=z9hG4bK-11;"
        "received=127.0.0.1",
        "SIP/2.0/TCP [fe80::1]:5070;branch=z9hG4bK-older",
    ]
    message, peer = server.got[0]
    assert peer == Peer("127.0.0.1", sock.getsockname()[1], "udp")
    assert isinstance(message, SipRequest) and message.body == b"<Keepalive/>"

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    # Split: one message a byte at a time (so the end of its headers comes in pieces too),
    # keepalive CRLFs in front.
    whole = b"\r\n\r\n" + message_bytes(2, b"<a>split</a>")
    for start in range(len(whole)):
        writer.write(whole[start : start + 1])
        await writer.drain()
        await asyncio.sleep(0)  # lets the server read this byte alone, as a segment
    # Coalesced: two messages (and the start of a third) in one write.
    third = message_bytes(5, b"<c/>")
    writer.write(message_bytes(3, b"<b/>") + message_bytes(4) + third[:30])
    await writer.drain()
    await server.wait_for(5)
    writer.write(third[30:])
    await writer.drain()
    await server.wait_for(6)
    assert [m.headers.get("Call-ID") for m, _ in server.got[2:]] == [
        f"call-{n}" for n in range(2, 6)
    ]
    assert {p.transport for _, p in server.got[2:]} == {"tcp"}
    assert [m.body for m, _ in server.got[2:]] == [b"<a>split</a>", b"<b/>", b"", b"<c/>"]
    # The answers come back over the same connection, framed.
    for n in range(2, 6):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
        assert head.startswith(b"SIP/2.0 200 OK") and f"call-{n}".encode() in head
    assert server.transport.stats.received == 6 and server.transport.stats.sent == 6
    writer.close()
    sock.close()


async def test_hostile_datagrams_are_refused_and_the_server_keeps_serving(server: Server) -> None:
    port = server.transport.port
    sock = udp_socket()
    headers_10000 = message_bytes(9).replace(b"Content-Length: 0\r\n", b"X: 1\r\n" * 10_000)
    bad_with_400 = [
        message_bytes(1).replace(b"Call-ID: call-1\r\n", b""),
        message_bytes(1).replace(b"Content-Length: 0", b"Content-Length: -5"),
        message_bytes(1).replace(b"Content-Length: 0", b"Content-Length: 99999999999999"),
        message_bytes(1, b"body").replace(b"Content-Length: 4", b"Content-Length: 400"),
        message_bytes(1).replace(b"CSeq: 1 MESSAGE", b"CSeq: one MESSAGE"),
        message_bytes(1).replace(b"From: <", b"From: \x00<"),
        message_bytes(1).replace(b"From: <sip", b"From: <\xff\xfe"),
        headers_10000,
        message_bytes(1)[:-10],  # truncated inside the headers
    ]
    assert len(headers_10000) < MAX_BYTES
    for data in bad_with_400:
        sock.sendto(data, ("127.0.0.1", port))
        # Not parsed: a 400 copies what the request had, which may lack a required header.
        raw = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 70000), WAIT_S)
        first_line = raw.split(b"\r\n", 1)[0]
        assert first_line.startswith(b"SIP/2.0 400 Bad Request ("), data[:200]
        assert len(first_line) <= 180 and b"\x00" not in raw and b"X: 1" not in raw
    dropped_silently = [
        b"\x00" * 100,
        bytes(range(256)) * 10,
        b"GARBAGE\r\n\r\n",
        b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n",  # a broken response: nothing to answer
        message_bytes(1, method="ACK").replace(b"Call-ID: call-1\r\n", b""),  # never answer ACK
    ]
    for data in dropped_silently:
        sock.sendto(data, ("127.0.0.1", port))
    oversized = message_bytes(7, b"x" * (MAX_BYTES + 10))
    sock.sendto(oversized, ("127.0.0.1", port))
    reply = await udp_reply(sock)  # nothing came for the silent ones: this is the 513
    assert isinstance(reply, SipResponse) and reply.status == 513
    assert reply.headers.get("Call-ID") == "call-7"
    sock.sendto(message_bytes(8), ("127.0.0.1", port))
    reply = await udp_reply(sock)
    assert isinstance(reply, SipResponse) and (reply.status, reply.headers.get("Call-ID")) == (
        200,
        "call-8",
    )
    stats = server.transport.stats
    assert stats.dropped_malformed == len(bad_with_400) + len(dropped_silently)
    assert stats.dropped_oversized == 1 and stats.received == 1 and stats.dropped_flood == 0
    sock.close()


async def test_tcp_framing_errors_close_the_connection(server: Server) -> None:
    port = server.transport.port
    cases = [
        message_bytes(1).replace(b"Content-Length: 0\r\n", b""),  # required over TCP
        message_bytes(1).replace(b"Content-Length: 0", b"Content-Length: -1"),
        message_bytes(1).replace(b"Content-Length: 0", f"Content-Length: {10**9}".encode()),
        b"X" * (MAX_BYTES + 100),  # no end of headers within the limit
    ]
    for data in cases:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(data)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), WAIT_S) == b""  # closed by the server
        writer.close()
    stats = server.transport.stats
    assert (stats.dropped_malformed, stats.dropped_oversized) == (2, 2)
    # Bad headers inside good framing: 400, and the connection goes on.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(message_bytes(2).replace(b"CSeq: 2 MESSAGE", b"CSeq: 2 INVITE") + message_bytes(3))
    await writer.drain()
    first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
    second = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
    assert first.startswith(b"SIP/2.0 400 Bad Request (CSeq method")
    assert second.startswith(b"SIP/2.0 200 OK") and b"call-3" in second
    writer.close()


async def test_a_flood_from_one_address_is_dropped_while_another_is_served() -> None:
    server = Server(requests_per_s=20.0)  # bursts of 40
    await server.transport.start()
    try:
        port = server.transport.port
        flooder, other = udp_socket("127.0.0.1"), udp_socket("127.0.0.2")
        for n in range(300):
            flooder.sendto(message_bytes(1000 + n), ("127.0.0.1", port))
            if n % 10 == 9:
                await asyncio.sleep(0.001)  # lets the loop read before the socket buffer fills
        # The other address's message queues behind the flood on the same socket: when its
        # answer comes, the flood has been seen through.
        other.sendto(message_bytes(1), ("127.0.0.1", port))
        reply = await udp_reply(other)
        assert isinstance(reply, SipResponse) and reply.status == 200
        assert reply.headers.get("Call-ID") == "call-1"
        stats = server.transport.stats
        # 300 in well under the seconds 200 more would take at 20 a second.
        assert stats.dropped_flood >= 100
        assert 40 <= stats.received <= 200
        assert any(p.host == "127.0.0.2" for _, p in server.got)
        # Responses have a bucket of their own, ten times larger: 100 pass at once.
        before, got_before = stats.received, len(server.got)
        for n in range(100):
            response = b"SIP/2.0 200 OK\r\n" + message_bytes(n).split(b"\r\n", 1)[1]
            flooder.sendto(response, ("127.0.0.1", port))
            if n % 10 == 9:
                await asyncio.sleep(0.001)
        await server.wait_for(got_before + 100)
        assert stats.received == before + 100
        assert isinstance(server.got[-1][0], SipResponse)
        # A registered platform's address is trusted with twenty times the rate: a burst
        # of catalog pages that a stranger would lose in part all comes through.
        server.transport.trust("127.0.0.1")
        await asyncio.sleep(2.5)  # the flooder's bucket fills again
        before, dropped_before, got_before = stats.received, stats.dropped_flood, len(server.got)
        for n in range(300):
            flooder.sendto(message_bytes(2000 + n), ("127.0.0.1", port))
            if n % 10 == 9:
                await asyncio.sleep(0.001)
        await server.wait_for(got_before + 300)
        assert stats.received == before + 300 and stats.dropped_flood == dropped_before
        flooder.close()
        other.close()
    finally:
        await server.transport.stop()


async def test_handler_failures_and_sending_over_a_new_tcp_connection(server: Server) -> None:
    # The server's transport connects out to a TCP listener (a tiny peer) and reads its reply.
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def peer_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        await received.put(head)
        request = parse_message(head, MAX_BYTES)
        assert isinstance(request, SipRequest)
        writer.write(to_bytes(response_to(request, 200)))
        await writer.drain()
        await reader.read()  # keep it open until the server closes

    listener = await asyncio.start_server(peer_side, "127.0.0.1", 0)
    peer_port = listener.sockets[0].getsockname()[1]
    request = parse_message(message_bytes(42), MAX_BYTES)
    # Named as a caller may name it: the reply is from that peer, found by that name.
    await server.transport.send(request, Peer("localhost", peer_port, "tcp"))
    assert b"call-42" in await asyncio.wait_for(received.get(), WAIT_S)
    await server.wait_for(1)  # the peer's 200 came back on the connection we opened
    reply, via = server.got[0]
    assert isinstance(reply, SipResponse) and via == Peer("localhost", peer_port, "tcp")

    sock = udp_socket()
    exploding = message_bytes(2).replace(b"Content-Length", b"Subject: explode\r\nContent-Length")
    sock.sendto(exploding, ("127.0.0.1", server.transport.port))
    sock.sendto(message_bytes(3), ("127.0.0.1", server.transport.port))
    reply = await udp_reply(sock)
    assert reply.headers.get("Call-ID") == "call-3"  # the handler's failure ended nothing
    sock.close()
    await server.transport.stop()
    listener.close()
    await listener.wait_closed()
    with pytest.raises(OSError):
        await server.transport.send(request, Peer("127.0.0.1", 9, "udp"))


async def test_a_tcp_flood_is_slowed_not_dropped() -> None:
    server = Server(requests_per_s=100.0)  # bursts of 200: the last 100 wait about a second
    await server.transport.start()
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", server.transport.port)
        writer.write(b"".join(message_bytes(n, b"<page/>") for n in range(300)))
        await writer.drain()
        await server.wait_for(300)
        assert [m.headers.get("Call-ID") for m, _ in server.got] == [
            f"call-{n}" for n in range(300)
        ]
        stats = server.transport.stats
        assert stats.dropped_flood == 0 and stats.delayed_flood >= 1
        writer.close()
    finally:
        await server.transport.stop()


async def test_concurrent_sends_to_one_peer_share_one_new_connection(server: Server) -> None:
    connections = 0
    got = bytearray()
    all_there = asyncio.Event()

    async def peer_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while chunk := await reader.read(65536):
            got.extend(chunk)
            if got.count(b"MESSAGE sip:") >= 5:
                all_there.set()

    listener = await asyncio.start_server(peer_side, "127.0.0.1", 0)
    to_peer = Peer("127.0.0.1", listener.sockets[0].getsockname()[1], "tcp")
    requests = [parse_message(message_bytes(n), MAX_BYTES) for n in range(5)]
    await asyncio.gather(*(server.transport.send(r, to_peer) for r in requests))
    await asyncio.wait_for(all_there.wait(), WAIT_S)
    assert connections == 1 and server.transport.stats.sent == 5
    await server.transport.stop()
    listener.close()
    await listener.wait_closed()


async def read_reply(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)


async def test_one_address_cannot_hold_the_tcp_connections_against_others() -> None:
    """Per-address cap, room made for a newcomer when all are taken, and connections that
    bring no valid message closed at their deadline (a trickle of bytes does not save one),
    while a platform that speaks keeps its connection."""
    server = Server(max_tcp_connections=8, max_tcp_per_address=4, tcp_first_message_s=1.0)
    await server.transport.start()
    port, stats = server.transport.port, server.transport.stats
    hoarded = []
    try:
        for host, count in (("127.0.0.2", 6), ("127.0.0.3", 4)):
            for _ in range(count):
                hoarded.append(
                    await asyncio.open_connection("127.0.0.1", port, local_addr=(host, 0))
                )

        for refused_reader, _ in hoarded[4:6]:  # the 5th and 6th from 127.0.0.2
            assert await asyncio.wait_for(refused_reader.read(), WAIT_S) == b""
        assert stats.dropped_connections == 2
        hoarded[-1][1].write(b"REGISTER sip:x SIP/2.0\r\n")  # a trickle, never complete

        # All 8 taken by idle strangers: a platform still gets in and is answered.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(message_bytes(1, method="REGISTER"))
        assert (await read_reply(reader)).startswith(b"SIP/2.0 200 OK")
        assert stats.dropped_connections == 3  # one stranger's connection made room

        # Past the first-message deadline every stranger's connection is closed; the
        # platform's is still there.
        for stranger_reader, _ in hoarded:
            with contextlib.suppress(ConnectionResetError):
                await asyncio.wait_for(stranger_reader.read(), WAIT_S)
        assert stats.dropped_connections == 10
        writer.write(message_bytes(2))
        assert b"call-2" in await read_reply(reader)
        writer.close()
    finally:
        for _, stranger_writer in hoarded:
            stranger_writer.close()
        await server.transport.stop()


async def test_stop_with_tcp_peers_connected_logs_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = Server()
    await server.transport.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.transport.port)
    writer.write(message_bytes(1))
    await read_reply(reader)
    silent = await asyncio.open_connection("127.0.0.1", server.transport.port)
    await asyncio.sleep(0.1)  # both connections accepted and being read
    with caplog.at_level(logging.WARNING):
        await server.transport.stop()
        await asyncio.sleep(0.2)  # asyncio's done-callbacks of the connection tasks run
    assert await asyncio.wait_for(reader.read(), WAIT_S) == b""  # closed by the server
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    writer.close()
    silent[1].close()
