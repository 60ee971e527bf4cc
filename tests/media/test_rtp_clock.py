"""The RTP clock of forwarded frames: what a browser's jitter buffer sees of a camera."""

from __future__ import annotations

import itertools
from fractions import Fraction

from surveillance.media.packets import Packet, StreamInfo
from surveillance.media.webrtc import (
    CACHED_FRAME_STEP,
    DEFAULT_FRAME_STEP,
    MAX_SOURCE_STEP,
    RTP_CLOCK,
    RtpClock,
)

RTSP_TIME_BASE = Fraction(1, 90_000)  # what FFmpeg gives an RTSP video stream
FRAME = 3_600  # 90 kHz ticks of one frame at 25 fps


def connection(time_base: Fraction = RTSP_TIME_BASE) -> StreamInfo:
    """A new connection to the camera: a new StreamInfo, timestamps from a new origin."""
    return StreamInfo("h264", 1920, 1080, time_base, None, "High", 25.0, 0.0)


def packets(
    info: StreamInfo, first_pts: int, count: int, step: int = FRAME, start_seq: int = 0
) -> list[Packet]:
    return [
        Packet(start_seq + i, b"", first_pts + i * step, first_pts + i * step, i == 0, 0.0, info)
        for i in range(count)
    ]


def clock_of(clock: RtpClock, frames: list[Packet], cached: int = 0) -> list[int]:
    return [clock.next(packet, cached=i < cached) for i, packet in enumerate(frames)]


def steps(stamps: list[int]) -> list[int]:
    return [b - a for a, b in itertools.pairwise(stamps)]


def test_live_frames_keep_the_cameras_spacing_from_zero() -> None:
    # A camera's timestamps start anywhere; the browser's start at 0.
    stamps = clock_of(RtpClock(), packets(connection(), 1_234_567, 5))
    assert stamps[0] == 0
    assert steps(stamps) == [FRAME] * 4


def test_uneven_spacing_is_kept_as_the_camera_sent_it() -> None:
    # A camera that drops to 12.5 fps for a while, then pauses for 2 s (motion-only sending).
    info = connection()
    pts = [0, FRAME, 3 * FRAME, 5 * FRAME, 5 * FRAME + 2 * RTP_CLOCK]
    frames = [Packet(i, b"", p, p, i == 0, 0.0, info) for i, p in enumerate(pts)]
    assert steps(clock_of(RtpClock(), frames)) == [FRAME, 2 * FRAME, 2 * FRAME, 2 * RTP_CLOCK]


def test_other_time_bases_are_converted_to_90_khz() -> None:
    # Milliseconds (an MP4 or FLV source): 40 ms per frame.
    stamps = clock_of(RtpClock(), packets(connection(Fraction(1, 1000)), 0, 4, step=40))
    assert steps(stamps) == [FRAME] * 3


def test_the_cached_gop_is_squeezed_then_live_frames_follow_at_their_spacing() -> None:
    # A new viewer starts from the cached GOP: its frames play at once, then live pace.
    stamps = clock_of(RtpClock(), packets(connection(), 0, 8), cached=5)
    assert steps(stamps) == [CACHED_FRAME_STEP] * 4 + [FRAME] * 3


def test_a_reconnect_is_bridged_with_one_frame_step() -> None:
    # After a reconnect the camera's timestamps restart (here: far below the last ones).
    clock = RtpClock()
    before = clock_of(clock, packets(connection(), 9_000_000, 3))
    after = clock_of(clock, packets(connection(), 0, 3, start_seq=3))
    assert after[0] - before[-1] == DEFAULT_FRAME_STEP
    assert steps(after) == [FRAME] * 2


def test_a_jump_or_a_step_back_in_one_connection_is_bridged_too() -> None:
    info = connection()
    clock = RtpClock()
    start = clock_of(clock, packets(info, 0, 2))
    jumped = clock.next(Packet(2, b"", FRAME + MAX_SOURCE_STEP + 1, None, False, 0.0, info), False)
    back = clock.next(Packet(3, b"", 0, None, False, 0.0, info), False)
    assert jumped - start[-1] == DEFAULT_FRAME_STEP
    assert back - jumped == DEFAULT_FRAME_STEP


def test_dts_is_used_without_pts_and_no_timestamp_still_moves_on() -> None:
    info = connection()
    clock = RtpClock()
    first = clock.next(Packet(0, b"", None, 0, True, 0.0, info), False)
    second = clock.next(Packet(1, b"", None, FRAME, False, 0.0, info), False)
    third = clock.next(Packet(2, b"", None, None, False, 0.0, info), False)
    assert (first, second - first, third - second) == (0, FRAME, DEFAULT_FRAME_STEP)


def test_the_clock_only_moves_forward_whatever_the_camera_sends() -> None:
    info = connection()
    wild = [0, 3600, 3600, 100, 10**9, 10**9 + 3600, None, 7200, 7200 + MAX_SOURCE_STEP]
    frames = [Packet(i, b"", p, p, False, 0.0, info) for i, p in enumerate(wild)]
    stamps = clock_of(RtpClock(), frames)
    assert all(step > 0 for step in steps(stamps)), stamps
