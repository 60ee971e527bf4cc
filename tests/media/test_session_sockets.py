"""Ending a hung session from outside (media/connections.py SessionSockets) on real TCP
connections over loopback: a quiet one is shut down, one carrying data is not, and a
socket found by a stale inode is never touched."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from surveillance.media.connections import SessionSockets


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
