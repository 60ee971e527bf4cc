"""Where this process's TCP connections go, read from /proc: to check where FFmpeg connected.

The pre-flight (:mod:`surveillance.media.preflight`) sees what the camera tells the node;
a camera could tell FFmpeg's own DESCRIBE something else (a 302 FFmpeg follows by itself).
FFmpeg keeps an RTSP session's control connection open for the whole session, so right
after opening, the sockets that appeared while it opened show where it really went.
Linux only: elsewhere :func:`socket_inodes` returns None and the check is skipped.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from pathlib import Path

_PROC_FD = Path("/proc/self/fd")
_PROC_TCP = (Path("/proc/self/net/tcp"), Path("/proc/self/net/tcp6"))
_ESTABLISHED = "01"

Peer = tuple[str, int]  # (address, port)


def socket_inodes() -> set[int] | None:
    """The inodes of every socket this process holds open, or None without /proc."""
    try:
        names = os.listdir(_PROC_FD)
    except OSError:
        return None
    inodes = set()
    for name in names:
        try:
            target = os.readlink(_PROC_FD / name)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def tcp_peers(inodes: set[int]) -> list[Peer]:
    """The remote ends of those of ``inodes`` that are established TCP connections."""
    peers = []
    for table in _PROC_TCP:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _ESTABLISHED and int(fields[9]) in inodes:
                peers.append(_peer(fields[2]))
    return peers


_LISTEN = "0A"


def outgoing_peers(inodes: set[int], own: set[int]) -> list[Peer]:
    """Like :func:`tcp_peers`, but only connections this process made: a connection
    accepted on a port it listens on (one of ``own``, every socket it holds: the HTTP
    server's clients, a test's fake camera) is someone else's connection to it."""
    rows = []
    for table in _PROC_TCP:
        try:
            rows += [line.split() for line in table.read_text().splitlines()[1:]]
        except OSError:
            continue
    rows = [fields for fields in rows if len(fields) > 9]
    listening = {
        fields[1].rsplit(":", 1)[1]
        for fields in rows
        if fields[3] == _LISTEN and int(fields[9]) in own
    }
    return [
        _peer(fields[2])
        for fields in rows
        if fields[3] == _ESTABLISHED
        and int(fields[9]) in inodes
        and fields[1].rsplit(":", 1)[1] not in listening
    ]


def _peer(hex_address: str) -> Peer:
    """``0100007F:1F90`` (IPv4) or 32 hex digits (IPv6), each 32-bit word in host order."""
    address_hex, port_hex = hex_address.split(":")
    raw = bytes.fromhex(address_hex)
    # The kernel prints each 32-bit word as a native integer: swap them back on little-endian.
    words = [raw[i : i + 4][::-1] for i in range(0, len(raw), 4)]
    packed = b"".join(words) if socket.htonl(1) != 1 else raw
    address = ipaddress.ip_address(packed)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address), int(port_hex, 16)


def addresses_of(host: str, port: int) -> set[Peer]:
    """Every address ``host`` resolves to, as peers on ``port``."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return set()
    found = set()
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        found.add((str(address), port))
    return found


class ConnectionWatch:
    """The remote ends of the TCP connections that appear while FFmpeg opens a stream,
    sampled from a thread every ``interval_s`` until :meth:`stop`.

    After a failed open FFmpeg's connections are closed already; only a sample taken while
    they lived shows where it went (a camera's 302 to another host that then asked for the
    credentials). A connection shorter than one interval can slip between two samples.
    """

    def __init__(self, before: set[int] | None, interval_s: float = 0.01) -> None:
        self._before = before
        self._interval_s = interval_s
        self._seen: set[Peer] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ConnectionWatch:
        if self._before is not None:
            self._thread = threading.Thread(target=self._run, name="connection-watch", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> set[Peer]:
        """Every peer seen, the last sample's included."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._sample()
        return set(self._seen)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def _sample(self) -> None:
        now = socket_inodes()
        if now is not None and self._before is not None:
            self._seen.update(outgoing_peers(now - self._before, now))
