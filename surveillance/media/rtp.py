"""RTP as a GB/T 28181 platform sends it: packets, their order, and the sockets they come on.

A GB/T 28181 platform pushes its video to the node as RTP carrying an MPEG program stream
(GB/T 28181-2016 Annex C): over UDP, or over TCP framed by a 2-byte length (RFC 4571 s.2),
the platform connecting to the node (passive, the node listens) or the node connecting to
it (active). This module turns whatever comes in into payloads in sequence order; it knows
nothing of what the payload carries (media/ps.py does).

Everything here runs on the ingest thread for every packet, so the work is kept small:
one ``struct.unpack_from`` per header, no per-byte loops, and a fast path in the reorderer
for the usual case of a packet arriving right after the previous one.
"""

from __future__ import annotations

import logging
import select
import socket
import struct
import time
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

_HEADER = struct.Struct("!BBHII")  # RFC 3550 s.5.1: V P X CC | M PT | seq | timestamp | SSRC
_HEADER_BYTES = 12
_SEQ_MOD = 1 << 16
_HALF_SEQ = 1 << 15
# A socket receive buffer for bursts: a 1080p keyframe is 100-300 KB arriving at once, more
# than Linux's default UDP buffer (about 200 KB) holds while the ingest thread waits for the GIL.
UDP_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024
_RECV_BYTES = 65536  # the largest UDP datagram; RTP over TCP is read in chunks this big
_TCP_LENGTH_BYTES = 2  # RFC 4571 s.2: a 16-bit length before every packet
# Packets (or connections) from strangers are logged at most this often per receiver.
STRANGER_LOG_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class RtpPacket:
    seq: int
    timestamp: int
    ssrc: int
    marker: bool
    payload_type: int
    payload: bytes


def parse_rtp(data: bytes) -> RtpPacket:
    """One RTP packet (RFC 3550 s.5.1), its CSRC list, header extension (s.5.3.1) and padding
    stripped off; ValueError naming what is wrong with a packet that is not one."""
    if len(data) < _HEADER_BYTES:
        raise ValueError(f"RTP packet of {len(data)} bytes: shorter than its header")
    first, second, seq, timestamp, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != 2:
        raise ValueError(f"RTP version {first >> 6}, not 2")
    start = _HEADER_BYTES + 4 * (first & 0x0F)
    end = len(data)
    if first & 0x10:  # extension: 16-bit profile id, 16-bit length in 32-bit words
        if start + 4 > end:
            raise ValueError("RTP header extension cut short")
        start += 4 + 4 * int.from_bytes(data[start + 2 : start + 4], "big")
    if first & 0x20:  # padding: its last byte counts the padding bytes, itself included
        padding = data[-1]
        if padding == 0:
            raise ValueError("RTP padding of zero bytes")
        end -= padding
    if start > end:
        raise ValueError("RTP header, CSRC list, extension or padding longer than the packet")
    payload = data[start:end] if start != _HEADER_BYTES or end != len(data) else data[start:]
    return RtpPacket(seq, timestamp, ssrc, bool(second & 0x80), second & 0x7F, payload)


class Reorderer:
    """Puts packets back in sequence-number order (16-bit, wrapping), holding at most
    ``window`` packets while it waits for a missing one.

    A hole is given up (its packets counted ``lost``) once ``window`` packets wait behind it
    or the first of them has waited ``max_wait_s``: packets are reordered on a network by
    milliseconds, and a low-bitrate stream (a few dozen packets a second) must not hold its
    picture back for the seconds 64 of its packets take. :meth:`drain` gives up every hole
    at once, for a stream that fell silent with packets waiting.
    A packet that arrives after its hole was given up is ``late``; one already delivered or
    held is a ``duplicate``; both are dropped. A jump far ahead or behind (a platform that
    restarted its sequence numbers) starts over once two packets in a row agree on it, as
    RFC 3550 Appendix A.1 does for a source's sequence.
    """

    def __init__(self, window: int = 64, max_wait_s: float = 0.1) -> None:
        self.window = window
        self.max_wait_s = max_wait_s
        self.lost = 0
        self.late = 0
        self.duplicates = 0
        self._expected: int | None = None  # the next sequence number to hand out
        self._held: dict[int, RtpPacket] = {}
        self._waiting_since = 0.0  # time.monotonic() when the current hole opened
        self._given_up: deque[int] = deque(maxlen=window)  # recent holes, to tell late from dup
        self._stray: RtpPacket | None = None  # the last far-off packet, held for a restart

    def push(self, packet: RtpPacket) -> list[RtpPacket]:
        seq = packet.seq
        expected = self._expected
        if seq == expected and not self._held:  # the fast path: the packet after the last
            self._expected = (seq + 1) & 0xFFFF
            return [packet]
        if expected is None:
            self._expected = (seq + 1) & 0xFFFF
            return [packet]
        ahead = (seq - expected) % _SEQ_MOD
        if ahead == 0:
            return self._release(packet)
        if ahead < _HALF_SEQ and ahead < 2 * self.window + 1:
            if seq in self._held:
                self.duplicates += 1
                return []
            held = self._held
            if not held:
                self._waiting_since = time.monotonic()
            held[seq] = packet
            if self._stray is not None:  # a lone far-off packet, not a restart: dropped
                self.duplicates += 1
                self._stray = None
            if len(held) < self.window and time.monotonic() - self._waiting_since < self.max_wait_s:
                return []
            return self._give_up_hole()
        behind = _SEQ_MOD - ahead
        if ahead >= _HALF_SEQ and behind <= 2 * self.window:
            if seq in self._given_up:
                self.late += 1
            else:
                self.duplicates += 1
            return []
        # Far away in either direction: a restart of the sequence, or one stray packet.
        stray = self._stray
        if stray is not None and seq == (stray.seq + 1) & 0xFFFF:
            jump = (stray.seq - expected) % _SEQ_MOD
            # What waited is of the old sequence; a jump forward lost what it skipped.
            self.lost += len(self._held) + (jump if jump < _HALF_SEQ else 0)
            self._held.clear()
            self._stray = None
            self._expected = (seq + 1) & 0xFFFF
            return [stray, packet]
        if stray is not None:
            self.duplicates += 1  # the stray before this one was not followed: dropped
        self._stray = packet
        return []

    def _release(self, packet: RtpPacket) -> list[RtpPacket]:
        """``packet`` is the expected one: it and every held packet right after it."""
        out = [packet]
        held = self._held
        seq = (packet.seq + 1) & 0xFFFF
        while held:
            following = held.pop(seq, None)
            if following is None:
                break
            out.append(following)
            seq = (seq + 1) & 0xFFFF
        self._expected = seq
        if held:
            self._waiting_since = time.monotonic()  # the next hole opens now (near enough)
        return out

    @property
    def held(self) -> int:
        """Packets waiting for a missing one."""
        return len(self._held)

    def drain(self) -> list[RtpPacket]:
        """Give up every hole: the held packets, in order."""
        out: list[RtpPacket] = []
        while self._held:
            out += self._give_up_hole()
        return out

    def _give_up_hole(self) -> list[RtpPacket]:
        """Skip the missing packets before the oldest held one, and hand out what follows."""
        expected = self._expected
        assert expected is not None
        first = min(self._held, key=lambda seq: (seq - expected) % _SEQ_MOD)
        missing = (first - expected) % _SEQ_MOD
        self.lost += missing
        for offset in range(min(missing, self.window)):
            self._given_up.append((expected + missing - 1 - offset) & 0xFFFF)
        return self._release(self._held.pop(first))


class RtpReceiver(Protocol):
    def receive(self, timeout_s: float) -> bytes | None:
        """One RTP packet; None if none came within ``timeout_s``. OSError or EOFError once
        the connection is closed."""
        ...

    def close(self) -> None: ...


class SourceCheck:
    """Who a session's RTP is taken from: a host of ``hosts`` (the platform's media and
    signalling addresses), then only the first such host:port that sent (UDP). Anything
    else is a stranger's: another platform's stream left on a reused port, or someone
    guessing port and SSRC to inject pictures. Strangers are counted, logged rate-limited.
    ``hosts`` None takes any sender (a test's own peer)."""

    def __init__(self, hosts: Collection[str] | None) -> None:
        self._hosts = None if hosts is None else frozenset(hosts)
        self.source: tuple[str, int] | None = None  # the sender locked to (UDP)
        self.strangers = 0
        self._logged_at = float("-inf")

    def host_allowed(self, address: tuple[str, int]) -> bool:
        if self._hosts is None or address[0] in self._hosts:
            return True
        self.refused(address, "not the platform's media address")
        return False

    def accepts(self, address: tuple[str, int]) -> bool:
        """Whether a datagram from ``address`` is the session's (locks to the first)."""
        source = self.source
        if source is not None:
            if address[:2] == source:
                return True
            self.refused(address, f"the stream comes from {source[0]}:{source[1]}")
            return False
        if not self.host_allowed(address):
            return False
        self.source = (address[0], address[1])
        return True

    def refused(self, address: tuple[str, int], why: str) -> None:
        self.strangers += 1
        now = time.monotonic()
        if now - self._logged_at >= STRANGER_LOG_EVERY_S:
            self._logged_at = now
            log.warning(
                "RTP from %s:%s dropped: %s (%d so far; further ones counted, not logged, "
                "for a minute)", address[0], address[1], why, self.strangers,
            )  # fmt: skip


class _UdpReceiver:
    """Datagrams of a bound UDP socket from the session's sender: each one is a packet."""

    def __init__(self, sock: socket.socket, check: SourceCheck) -> None:
        self._sock = sock
        self.check = check
        # Linux caps it at net.core.rmem_max without an error.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER_BYTES)
        # Non-blocking: while packets flow each one costs one recv call, no poll first.
        sock.setblocking(False)

    def receive(self, timeout_s: float) -> bytes | None:
        """A stranger's datagram is dropped and reads as a quiet moment (None)."""
        sock = self._sock
        try:
            data, address = sock.recvfrom(_RECV_BYTES)
        except BlockingIOError:
            ready, _, _ = select.select([sock], [], [], timeout_s)
            if not ready:
                return None
            try:
                data, address = sock.recvfrom(_RECV_BYTES)
            except BlockingIOError:
                return None
        return data if self.check.accepts(address) else None

    def close(self) -> None:
        self._sock.close()


class _TcpFraming:
    """RTP packets of a TCP connection, each after its 16-bit length (RFC 4571 s.2).

    Reads in large chunks and cuts packets out of them, so a packet costs no system call
    of its own. The length allows at most 65535 bytes, which bounds what is held. A zero
    length frames nothing and is skipped.
    """

    def __init__(self, sock: socket.socket | None, check: SourceCheck | None = None) -> None:
        self._sock = sock
        self.check = check or SourceCheck(None)
        self._buffer = b""
        self._offset = 0  # where the next frame starts in _buffer

    def _connection(self, timeout_s: float) -> socket.socket | None:
        return self._sock

    def receive(self, timeout_s: float) -> bytes | None:
        while True:
            buffer, offset = self._buffer, self._offset
            available = len(buffer) - offset
            if available >= _TCP_LENGTH_BYTES:
                length = (buffer[offset] << 8) | buffer[offset + 1]
                end = offset + _TCP_LENGTH_BYTES + length
                if end <= len(buffer):
                    self._offset = end
                    if length:
                        return buffer[offset + _TCP_LENGTH_BYTES : end]
                    continue
            sock = self._connection(timeout_s)
            if sock is None:
                return None
            ready, _, _ = select.select([sock], [], [], timeout_s)
            if not ready:
                return None
            chunk = sock.recv(_RECV_BYTES)
            if not chunk:
                raise EOFError("the platform closed the RTP connection")
            self._buffer = buffer[offset:] + chunk if available else chunk
            self._offset = 0

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()


class _TcpPassiveReceiver(_TcpFraming):
    """Waits for the platform to connect to the node's listener (SDP a=setup:passive on the
    node's side, RFC 4145), then reads its packets; the listener stays open only until then."""

    def __init__(self, listener: socket.socket, check: SourceCheck) -> None:
        super().__init__(None, check)
        self._listener: socket.socket | None = listener

    def _connection(self, timeout_s: float) -> socket.socket | None:
        if self._sock is not None:
            return self._sock
        listener = self._listener
        if listener is None:
            raise OSError("the RTP receiver is closed")
        ready, _, _ = select.select([listener], [], [], timeout_s)
        if not ready:
            return None
        try:
            sock, address = listener.accept()
        except BlockingIOError:
            return None  # the connecting side gave up meanwhile
        if not self.check.host_allowed(address):
            sock.close()  # a stranger's connection: refused, the listener waits on
            return None
        sock.setblocking(False)
        self._sock = sock
        # One connection per session: later ones would be someone else's.
        listener.close()
        self._listener = None
        return sock

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        super().close()


def udp_receiver(sock: socket.socket, hosts: Collection[str] | None = None) -> RtpReceiver:
    """Packets arriving on a bound UDP socket from one sender of ``hosts`` (SourceCheck)."""
    return _UdpReceiver(sock, SourceCheck(hosts))


def tcp_passive_receiver(
    listener: socket.socket, hosts: Collection[str] | None = None
) -> RtpReceiver:
    """Packets on the connection the platform opens to ``listener`` (accepted on the first
    ``receive``) from a host of ``hosts``; other hosts' connections are closed."""
    listener.setblocking(False)
    return _TcpPassiveReceiver(listener, SourceCheck(hosts))


def tcp_active_receiver(host: str, port: int, timeout_s: float) -> RtpReceiver:
    """Packets on a connection the node opens to the platform; OSError if it cannot."""
    sock = socket.create_connection((host, port), timeout=timeout_s)
    sock.setblocking(False)
    return _TcpFraming(sock)
