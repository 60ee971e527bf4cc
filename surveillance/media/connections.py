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
    return {inode for name in names if (inode := _socket_inode(name)) is not None}


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


def established(inodes: set[int], own: set[int]) -> tuple[dict[int, Peer], set[int]]:
    """The peers of those of ``inodes`` that are connections this process made, by inode,
    and which of ``inodes`` are established connections at all. A connection accepted on a
    port it listens on (one of ``own``, every socket it holds: the HTTP server's clients, a
    test's fake camera) is someone else's connection to it, not an outgoing one."""
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
    connected = [f for f in rows if f[3] == _ESTABLISHED and int(f[9]) in inodes]
    outgoing = {
        int(f[9]): _peer(f[2]) for f in connected if f[1].rsplit(":", 1)[1] not in listening
    }
    return outgoing, {int(f[9]) for f in connected}


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

    Every open is watched, so a sample must cost next to nothing: it lists the descriptor
    numbers, reads the link of only those opened since the watch began, and reads the
    kernel's TCP table only while one of those sockets has not yet been seen connected.
    (Scanning every descriptor and the whole table at each sample cost about 12 ms with 600
    sockets: more than a core per camera opening at a 10 ms interval.) A descriptor number
    that was open when the watch began and is reused by FFmpeg meanwhile is not seen.
    """

    def __init__(self, before: set[int] | None, interval_s: float = 0.01) -> None:
        self._before = before
        # Only descriptors that still resolve: the listing itself holds one open (its
        # directory's), which is closed by now and may be the very number FFmpeg gets next.
        self._fds_before = (
            {name for name in _fd_names() if _resolves(name)} if before is not None else set()
        )
        self._interval_s = interval_s
        self._seen: dict[int, Peer] = {}
        self._settled: set[int] = set()  # new sockets already seen connected: read no more
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
        return set(self._seen.values())

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def _sample(self) -> None:
        before = self._before
        if before is None:
            return
        new = set()
        for name in _fd_names():
            if name not in self._fds_before:
                inode = _socket_inode(name)
                if inode is not None and inode not in before:
                    new.add(inode)
        if new - self._settled:
            outgoing, connected = established(new, before | new)
            self._seen.update(outgoing)
            self._settled |= connected


def _fd_names() -> list[str]:
    try:
        return os.listdir(_PROC_FD)
    except OSError:
        return []


def _resolves(fd_name: str) -> bool:
    try:
        os.readlink(_PROC_FD / fd_name)
    except OSError:
        return False
    return True


def _socket_inode(fd_name: str) -> int | None:
    try:
        target = os.readlink(_PROC_FD / fd_name)
    except OSError:
        return None  # closed meanwhile
    return int(target[8:-1]) if target.startswith("socket:[") else None
