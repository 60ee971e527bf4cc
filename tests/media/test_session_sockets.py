"""Ending a hung session from outside (media/connections.py SessionSockets) on real TCP
connections over loopback: a quiet one is shut down, one carrying data is not, and a
socket found by a stale inode is never touched."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from surveillance.media.connections import SessionSockets
from tests.waits import wait_until


@contextmanager
def connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A (client, server) TCP pair over loopback."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    with client, server:
        yield client, server


def inode(sock: socket.socket) -> int:
    return os.fstat(sock.fileno()).st_ino


def test_a_quiet_connection_is_shut_down_and_its_reader_sees_the_end() -> None:
    with connection() as (client, server):
        server.sendall(b"RTCP" * 10)
        sockets = SessionSockets({inode(client)})
        baseline = sockets.received()
        assert baseline[inode(client)] == 40
        assert client.recv(100) == b"RTCP" * 10
        server.sendall(b"x" * 50)  # a keep-alive answer: next to nothing
        assert sockets.shut_down_quiet(baseline, max_bytes=1000) == 1
        client.settimeout(2)
        data = b""
        while chunk := client.recv(100):
            data += chunk
        assert len(data) <= 50  # then the end, as FFmpeg's blocked read would see it
        assert client.fileno() >= 0  # our descriptor is still ours to close


def test_a_connection_carrying_video_is_never_shut_down() -> None:
    with connection() as (client, server):
        sockets = SessionSockets({inode(client)})
        baseline = sockets.received()
        server.sendall(b"v" * 200_000)
        client.settimeout(2)
        received = 0
        while received < 200_000:
            received += len(client.recv(65536))
        assert sockets.shut_down_quiet(baseline, max_bytes=1000) == 0
        server.sendall(b"still open")
        assert client.recv(100) == b"still open"


def test_a_closed_socket_is_not_found_and_nothing_else_is_touched() -> None:
    with connection() as (client, _server):
        gone = inode(client)
        client.close()
        with connection() as (other, other_server):
            sockets = SessionSockets({gone})
            assert sockets.received() == {}
            assert sockets.shut_down_quiet({gone: 0}, max_bytes=10**9) == 0
            other_server.sendall(b"alive")
            assert other.recv(100) == b"alive"


def test_a_stop_shuts_down_its_own_sockets_and_a_shared_one_only_once_quiet() -> None:
    """shut_down (a stopped worker): its sockets whatever they carry; one another session
    claimed too (the two opened at the same moment) only once nothing arrives on it."""
    with connection() as (own, own_server), connection() as (shared, shared_server):
        own_server.sendall(b"v" * 1000)  # video arriving: still the stopped worker's
        shared_server.sendall(b"v" * 1000)  # just now: maybe the other camera's video
        sockets = SessionSockets({inode(own), inode(shared)})
        others = {inode(shared)}
        assert sockets.shut_down(others, quiet_ms=60_000) == 1
        own.settimeout(2)
        while own.recv(65536):
            pass  # the end, after what had arrived
        shared_server.sendall(b"still open")
        shared.settimeout(2)
        assert shared.recv(2000).endswith(b"still open")
        # Once quiet (no data for quiet_ms), it is shut down too.
        alone = SessionSockets(others)  # (the stopped worker's own is shut down already)
        wait_until(lambda: alone.shut_down(others, quiet_ms=200) == 1, 10, "a quiet shutdown")
        while shared.recv(65536):
            pass
