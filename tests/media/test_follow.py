"""Following a stream across reconnects: a new connection gets a new decoder or a new MP4
init segment, starting at its first keyframe (packets encoded here with PyAV)."""

from __future__ import annotations

import dataclasses
import itertools
import threading

from surveillance.media.decode import PacketDecoder, follow_decoded
from surveillance.media.fmp4 import InitSegment, MseSegmenter
from surveillance.media.packets import Packet
from surveillance.media.stream import Stream
from tests.media.test_clip import annexb_packets


def two_connections() -> tuple[list[Packet], int]:
    """Two GOPs, then the same again as a reconnect would deliver them (a new ``info``),
    starting mid-GOP: the new connection's first packets precede its keyframe. Also
    returns where the second connection starts."""
    first = annexb_packets("h264", 50, 0)
    info = dataclasses.replace(first[0].info, connected_at=1.0)
    second = [dataclasses.replace(p, info=info) for p in first[5:]]
    return first + second, len(first)


def test_packet_decoder_restarts_at_the_new_connections_keyframe() -> None:
    packets, first_len = two_connections()
    decoder = PacketDecoder()
    pictures = [decoder.decode(p) for p in packets]
    assert pictures[0] is not None  # slice threads: the newest picture comes out at once
    assert pictures[first_len] is None  # a P-frame of the new connection: no reference yet
    new_keyframe = next(i for i in range(first_len, len(packets)) if packets[i].keyframe)
    assert all(f is None for f in pictures[first_len:new_keyframe])
    assert pictures[new_keyframe] is not None
    assert decoder.info is packets[-1].info


def test_follow_decoded_yields_pictures_until_the_subscription_closes() -> None:
    stream = Stream("cam", ring_seconds=10, queue_packets=500)
    packets = annexb_packets("h264", 30, 0)
    subscription = stream.subscribe()
    for p in packets:
        stream.deliver(p.data, p.pts, p.dts, p.keyframe, p.info)
    threading.Timer(0.3, subscription.close).start()
    seen = [packet.seq for packet, _ in follow_decoded(subscription, lambda: False, 0.05)]
    assert seen == list(range(len(packets)))


def test_mse_segmenter_sends_an_init_segment_per_connection() -> None:
    packets, _ = two_connections()
    segmenter = MseSegmenter()
    out = segmenter.segments(packets[:3]) + segmenter.segments(packets[3:])
    segmenter.close()
    inits = [i for i, s in enumerate(out) if isinstance(s, InitSegment)]
    assert len(inits) == 2 and inits[0] == 0
    first = out[0]
    assert isinstance(first, InitSegment) and first.mime.startswith('video/mp4; codecs="avc1.')
    assert first.data.startswith(b"\x00\x00\x00") and b"moov" in first.data
    media = [s for s in out if isinstance(s, bytes)]
    assert all(s[4:8] == b"moof" for s in media)
    assert segmenter.segments(packets[:1]) == []  # closed: nothing more


def decode_times(segments: list[InitSegment | bytes]) -> list[int]:
    """Each media segment's baseMediaDecodeTime (its tfdt box)."""
    times = []
    for segment in segments:
        if isinstance(segment, bytes):
            at = segment.index(b"tfdt")
            wide = segment[at + 4] == 1  # version 1: a 64-bit time
            times.append(int.from_bytes(segment[at + 8 : at + (16 if wide else 12)], "big"))
    return times


def test_mse_segmenter_carries_the_timeline_over_a_jump_of_the_cameras_clock() -> None:
    # One connection whose clock jumps back 10 s, then forward 60 s (a camera's clock
    # reset, packets skipped by a viewer that fell behind): every frame still becomes a
    # segment, and the timeline the browser plays keeps going a frame at a time.
    packets = annexb_packets("h264", 75, 0)
    step = packets[1].dts - packets[0].dts

    def shifted(ps: list[Packet], by: int) -> list[Packet]:
        return [dataclasses.replace(p, dts=p.dts + by, pts=p.pts + by) for p in ps]

    jumped = packets[:30] + shifted(packets[30:55], -900_000) + shifted(packets[55:], 5_400_000)
    segmenter = MseSegmenter()
    out = segmenter.segments(jumped)
    segmenter.close()
    assert sum(isinstance(s, InitSegment) for s in out) == 1
    times = decode_times(out)
    assert len(times) >= len(jumped) - 1  # the last frame's fragment waits for a next one
    assert all(b - a == step for a, b in itertools.pairwise(times)), times
