"""Where this process's TCP connections go, read from /proc: to check where FFmpeg connected.

The pre-flight (:mod:`surveillance.media.preflight`) sees what the camera tells the node;
a camera could tell FFmpeg's own DESCRIBE something else (a 302 FFmpeg follows by itself).
FFmpeg keeps an RTSP session's control connection open for the whole session, so right
after opening, the sockets that appeared while it opened show where it really went. The
same sockets let the node end a session whose camera hangs (:class:`SessionSockets`).
Linux only: elsewhere :func:`socket_inodes` returns None and the check is skipped.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
import struct
import threading
from collections.abc import Callable
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

    def __init__(
        self,
        before: set[int] | None,
        interval_s: float = 0.01,
        after_sample: Callable[[], object] | None = None,
    ) -> None:
        """``after_sample``: called after each sample (a worker asked to stop shuts down
        what its opening connected meanwhile)."""
        self._before = before
        self._after_sample = after_sample
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
            if self._after_sample is not None:
                self._after_sample()

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


# -- ending a hung session from outside ---------------------------------------------------
# struct tcp_info (linux/tcp.h): tcpi_bytes_received is the u64 at byte 128 (Linux 4.1+).
_TCP_INFO_LEN = 136
_BYTES_RECEIVED = struct.Struct("=Q")
_BYTES_RECEIVED_AT = 128
_LAST_DATA_RECV_AT = 52  # tcpi_last_data_recv, u32 (Linux 2.6+)


class SessionSockets:
    """The TCP connections one FFmpeg session opened to its camera, found by inode, so the
    node can end the session when the camera hangs with the connection open.

    Why from outside: FFmpeg's socket time-out ends a read only when *nothing* arrives; a
    hung platform that still sends RTCP reports or answers keep-alives keeps the read alive
    for ever, and closing the container from another thread while FFmpeg reads it is a
    use-after-free. Shutting the connection down (``shutdown(SHUT_RDWR)``) is safe from any
    thread: FFmpeg's blocked read returns end-of-stream, and its own close frees the socket.

    Which sockets: those that appeared while this session opened and reach the camera's
    host and port. Another camera of the same platform opening at the same instant can
    leave its socket in that set too, so only sockets that received next to nothing while
    the stream was silent are shut down: a connection carrying video is never touched. Each
    socket is handled through a duplicate of its descriptor whose inode is checked first,
    so a descriptor number closed and reused meanwhile is never hit.
    """

    def __init__(self, inodes: set[int]) -> None:
        self.inodes = frozenset(inodes)

    def __bool__(self) -> bool:
        return bool(self.inodes)

    def received(self, index: SocketIndex | None = None) -> dict[int, int]:
        """Bytes each socket received so far, by inode (sockets gone meanwhile left out)."""
        found = {}
        for inode, sock in _borrowed(self.inodes, index or SocketIndex()):
            with sock:
                count = _bytes_received(sock)
            if count is not None:
                found[inode] = count
        return found

    def shut_down(self, others: set[int], quiet_ms: int, index: SocketIndex | None = None) -> int:
        """Shut the sockets down (the worker was asked to stop); how many were. One of
        ``others`` (another session claimed it too: the two opened at the same moment) only
        if nothing arrived on it for ``quiet_ms``: a connection carrying video may be the
        other camera's, and if it is this worker's, its next packet ends it anyway."""
        done = 0
        for inode, sock in _borrowed(self.inodes, index or SocketIndex()):
            with sock:
                if inode in others and not _quiet_for(sock, quiet_ms):
                    continue
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    continue  # not connected (yet), or closed by the peer
                done += 1
        return done

    def shut_down_quiet(
        self, baseline: dict[int, int], max_bytes: int, index: SocketIndex | None = None
    ) -> int:
        """Shut down each socket that received at most ``max_bytes`` since ``baseline``
        (from :meth:`received`); how many were."""
        done = 0
        for inode, sock in _borrowed(self.inodes, index or SocketIndex()):
            with sock:
                count = _bytes_received(sock)
                before = baseline.get(inode)
                if count is None or before is None or count - before > max_bytes:
                    continue
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    continue  # already closed by the peer
                done += 1
        return done


class Claims:
    """Which sockets each open session took for its own, process-wide. A worker knows only
    that its sockets are among those that appeared while it opened and reach its camera's
    host and port: a camera of the same platform (same host and port) opening at the same
    moment takes the other's socket too. A socket another session claimed is shut down by
    a stop only if it carries no video (:meth:`SessionSockets.shut_down`). Sockets are the
    process's, not a worker's: hence one registry for the process (:data:`CLAIMS`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_owner: dict[int, frozenset[int]] = {}  # id(owner) -> its inodes

    def claim(self, owner: object, inodes: frozenset[int]) -> None:
        with self._lock:
            self._by_owner[id(owner)] = inodes

    def release(self, owner: object) -> None:
        with self._lock:
            self._by_owner.pop(id(owner), None)

    def of_others(self, owner: object) -> set[int]:
        with self._lock:
            return {
                inode for key, inodes in self._by_owner.items() if key != id(owner)
                for inode in inodes
            }  # fmt: skip


CLAIMS = Claims()


class SocketIndex:
    """Which descriptor holds each socket of this process, from /proc/self/fd read once, at
    first use: the monitor makes one per round, however many hung sessions it ends (a read
    of every descriptor's link costs about a millisecond with 600 sockets). An entry may be
    stale by the time it is used; :func:`_borrowed` checks each one."""

    def __init__(self) -> None:
        self._by_inode: dict[int, str] | None = None

    def descriptors(self, inodes: frozenset[int]) -> list[tuple[int, str]]:
        if self._by_inode is None:
            self._by_inode = {
                inode: name for name in _fd_names() if (inode := _socket_inode(name)) is not None
            }
        return [(inode, self._by_inode[inode]) for inode in inodes if inode in self._by_inode]


def _borrowed(inodes: frozenset[int], index: SocketIndex) -> list[tuple[int, socket.socket]]:
    """A socket object on a duplicate descriptor for each of ``inodes`` still open; closing
    it closes the duplicate only."""
    found = []
    for inode, name in index.descriptors(inodes):
        try:
            duplicate = os.dup(int(name))
        except OSError:
            continue  # closed meanwhile
        try:
            info = os.fstat(duplicate)
        except OSError:
            os.close(duplicate)
            continue
        # The number may have been closed and reused between the link and the dup: the
        # duplicate's own inode says whether it is still the same socket.
        if not stat.S_ISSOCK(info.st_mode) or info.st_ino != inode:
            os.close(duplicate)
            continue
        try:
            found.append((inode, socket.socket(fileno=duplicate)))
        except OSError:
            os.close(duplicate)
    return found


def _quiet_for(sock: socket.socket, ms: int) -> bool:
    """Whether no data arrived on ``sock`` for ``ms`` (tcpi_last_data_recv, the u32 at byte
    52 of struct tcp_info: milliseconds since the last data received)."""
    if sock.type != socket.SOCK_STREAM:
        return False
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    except OSError:
        return False
    if len(raw) < _LAST_DATA_RECV_AT + 4:
        return False
    return int(struct.unpack_from("=I", raw, _LAST_DATA_RECV_AT)[0]) >= ms


def _bytes_received(sock: socket.socket) -> int | None:
    if sock.type != socket.SOCK_STREAM:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    except OSError:
        return None
    if len(raw) < _BYTES_RECEIVED_AT + _BYTES_RECEIVED.size:
        return None  # a kernel older than 4.1
    return int(_BYTES_RECEIVED.unpack_from(raw, _BYTES_RECEIVED_AT)[0])
