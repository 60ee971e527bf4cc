"""RTP for GB/T 28181 media: header parsing, reordering, and the UDP and TCP receivers."""

from __future__ import annotations

import random
import socket
import struct
from collections.abc import Iterator

import pytest

from surveillance.media.rtp import (
    Reorderer,
    RtpPacket,
    parse_rtp,
    tcp_active_receiver,
    tcp_passive_receiver,
    udp_receiver,
)
from tests.media.ps_material import rtp


def packet(seq: int, payload: bytes = b"x") -> RtpPacket:
    return RtpPacket(seq & 0xFFFF, 0, 1, False, 96, payload)


def test_the_header_csrc_extension_and_padding_are_stripped() -> None:
    # RFC 3550 s.5.1/5.3.1: V=2 P=1 X=1 CC=2, marker, PT 96; 2 CSRCs; 2-word extension;
    # 3 bytes of padding, the last one counting them.
    header = struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 2, 0x80 | 96, 65535, 90_000, 0xABCD)
    csrcs = struct.pack("!II", 7, 8)
    extension = struct.pack("!HH", 0xBEDE, 2) + b"\x11" * 8
    parsed = parse_rtp(header + csrcs + extension + b"payload" + b"\x00\x00\x03")
    assert parsed == RtpPacket(65535, 90_000, 0xABCD, True, 96, b"payload")
    plain = parse_rtp(rtp(b"abc", 7, ssrc=5, timestamp=9))
    assert plain == RtpPacket(7, 9, 5, False, 96, b"abc")


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"\x80\x60\x00", "shorter than its header"),
        (b"\x40" + bytes(11) + b"x", "version 1"),
        (struct.pack("!BBHII", 0xA0, 96, 1, 0, 1) + b"ab\x00", "padding of zero"),
        (struct.pack("!BBHII", 0xA0, 96, 1, 0, 1) + b"ab\x09", "longer than the packet"),
        (struct.pack("!BBHII", 0x90, 96, 1, 0, 1) + b"\x00\x00", "extension cut short"),
        (struct.pack("!BBHII", 0x90, 96, 1, 0, 1) + b"\xbe\xde\x00\x09", "longer than"),
        (struct.pack("!BBHII", 0x8F, 96, 1, 0, 1) + b"abcd", "longer than the packet"),
    ],
    ids=["short", "version", "zero-padding", "padding", "extension-cut", "extension", "csrc"],
)
def test_a_packet_that_is_not_rtp_is_refused_with_the_reason(data: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_rtp(data)


def seqs(packets: list[RtpPacket]) -> list[int]:
    return [p.seq for p in packets]


def test_reordering_within_the_window_across_the_sequence_wrap() -> None:
    first = 65_500
    order = list(range(first, first + 200))  # wraps past 65535 to 0
    rng = random.Random(3)
    shuffled = []
    for start in range(0, len(order), 10):  # reordered within blocks of 10
        block = order[start : start + 10]
        rng.shuffle(block)
        shuffled += block
    # ... the first one first, as a receiver's first packet sets where the sequence starts.
    shuffled.remove(first)
    shuffled.insert(0, first)
    reorderer = Reorderer(window=64, max_wait_s=60)
    out: list[RtpPacket] = []
    for seq in shuffled:
        out += reorderer.push(packet(seq))
        if rng.random() < 0.1:
            out += reorderer.push(packet(seq))  # a duplicate
    assert seqs(out) == [seq & 0xFFFF for seq in order]
    assert reorderer.lost == 0 and reorderer.late == 0 and reorderer.duplicates > 0


def test_a_hole_is_given_up_after_the_window_and_its_packet_is_late() -> None:
    reorderer = Reorderer(window=8, max_wait_s=60)
    out = reorderer.push(packet(65_534)) + reorderer.push(packet(65_535))
    # 0 and 1 are missing; 2..9 wait for them until the window is full.
    for seq in range(2, 10):
        out += reorderer.push(packet(seq))
    assert seqs(out) == [65_534, 65_535, *range(2, 10)]
    assert reorderer.lost == 2
    assert reorderer.push(packet(1)) == [] and reorderer.late == 1
    assert reorderer.push(packet(9)) == [] and reorderer.duplicates == 1
    assert seqs(reorderer.push(packet(10))) == [10]


def test_a_hole_is_given_up_after_max_wait_or_when_drained() -> None:
    """A low-bitrate stream does not wait for 64 packets behind a lost one."""
    waiting = Reorderer(window=64, max_wait_s=0.0)
    assert seqs(waiting.push(packet(1)) + waiting.push(packet(3))) == [1, 3]
    assert waiting.lost == 1
    patient = Reorderer(window=64, max_wait_s=60)
    out = patient.push(packet(1)) + patient.push(packet(3)) + patient.push(packet(5))
    assert seqs(out) == [1] and patient.held == 2
    assert seqs(patient.drain()) == [3, 5] and patient.held == 0 and patient.lost == 2
    assert seqs(patient.push(packet(6))) == [6]


def test_a_restarted_sequence_is_followed_once_two_packets_agree() -> None:
    reorderer = Reorderer(window=8, max_wait_s=60)
    out = []
    for seq in range(100, 105):
        out += reorderer.push(packet(seq))
    assert reorderer.push(packet(30_000)) == []  # one stray far away: held, not followed
    out += reorderer.push(packet(105))
    out += reorderer.push(packet(20_000)) + reorderer.push(packet(20_001))
    out += reorderer.push(packet(20_002))
    assert seqs(out) == [100, 101, 102, 103, 104, 105, 20_000, 20_001, 20_002]
    assert reorderer.duplicates == 1  # the stray
    assert reorderer.lost == 20_000 - 106  # a jump forward lost what it skipped


def test_udp_receiver_returns_datagrams_and_none_when_quiet() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    receiver = udp_receiver(sock)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert receiver.receive(0.05) is None
        for seq in range(3):
            sender.sendto(rtp(b"p%d" % seq, seq), sock.getsockname())
        got = [receiver.receive(5) for _ in range(3)]
        assert [parse_rtp(g).payload for g in got if g] == [b"p0", b"p1", b"p2"]
    finally:
        sender.close()
        receiver.close()
    assert sock.fileno() == -1


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    yield server
    server.close()


def framed(*packets: bytes) -> bytes:
    """RFC 4571 s.2: each packet after its 16-bit length."""
    return b"".join(struct.pack("!H", len(p)) + p for p in packets)


def test_tcp_framing_cut_at_every_byte(listener: socket.socket) -> None:
    """The node connects (tcp-active); the stream is cut at each byte position in turn."""
    host, port = listener.getsockname()
    receiver = tcp_active_receiver(host, port, timeout_s=5)
    platform, _ = listener.accept()
    packets = [rtp(b"first", 1), rtp(b"second!", 2), rtp(b"third", 3)]
    data = framed(*packets)
    try:
        for cut in range(1, len(data)):
            whole_before_cut = [p for p, end in zip(packets, _ends(packets), strict=True)
                                if end <= cut]  # fmt: skip
            platform.sendall(data[:cut])
            got = [receiver.receive(5) for _ in whole_before_cut]
            assert got == whole_before_cut
            assert receiver.receive(0.01) is None, f"cut at {cut}"
            platform.sendall(data[cut:])
            rest = [receiver.receive(5) for _ in range(len(packets) - len(whole_before_cut))]
            assert got + rest == packets, f"cut at {cut}"
    finally:
        platform.close()
        receiver.close()


def _ends(packets: list[bytes]) -> list[int]:
    ends, at = [], 0
    for p in packets:
        at += 2 + len(p)
        ends.append(at)
    return ends


def test_tcp_passive_accepts_skips_zero_lengths_bounds_huge_ones_and_sees_the_end(
    listener: socket.socket,
) -> None:
    receiver = tcp_passive_receiver(listener)
    assert receiver.receive(0.05) is None  # nobody connected yet
    platform = socket.create_connection(listener.getsockname())
    huge = b"\x80" + bytes(65_534)  # the largest a 16-bit length frames: read, then refused
    platform.sendall(framed(b"", rtp(b"a", 1)) + b"\x00\x00" + framed(huge, rtp(b"b", 2)))
    try:
        assert receiver.receive(5) == rtp(b"a", 1)
        got = receiver.receive(5)
        assert got is not None and len(got) == 65_535
        with pytest.raises(ValueError):
            parse_rtp(got[:5])
        assert receiver.receive(5) == rtp(b"b", 2)
        # A second connection is not this session's: the listener is closed once accepted.
        with pytest.raises(OSError):
            socket.create_connection(listener.getsockname(), timeout=2).close()
        platform.close()
        with pytest.raises(EOFError):
            receiver.receive(5)
    finally:
        platform.close()
        receiver.close()
