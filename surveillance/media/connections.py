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
