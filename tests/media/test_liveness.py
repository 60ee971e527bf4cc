"""The "after a silence" rule (media/liveness.py): a packet that ends a silence is not live
until packets flow again; and what that means for a stream's state, last seen and readiness.

Arrival times are given to Liveness directly; the Stream tests deliver synthetic packets
with a short stall_after_s, as the ingest thread would.
"""

from __future__ import annotations

import time
from fractions import Fraction

from surveillance.media.health import ErrorKind, StreamState
from surveillance.media.liveness import RESUME_SPAN_S, Liveness
from surveillance.media.packets import StreamInfo
from surveillance.media.stream import Readiness, Stream

STALL_S = 3.0
FRAME_S = 0.04  # 25 fps


def info() -> StreamInfo:
    return StreamInfo("h264", 640, 360, Fraction(1, 90000), None, "Main", 25.0, 0.0)


def flowing(liveness: Liveness, start: float, seconds: float, connection: object) -> list[bool]:
    count = round(seconds / FRAME_S)
    return [liveness.feed(start + i * FRAME_S, connection) for i in range(count)]


def test_packets_of_a_steady_stream_are_live() -> None:
    liveness = Liveness(STALL_S)
    connection = object()
    assert all(flowing(liveness, 100.0, 2.0, connection))


def test_the_first_packet_of_a_new_connection_is_live_at_once() -> None:
    liveness = Liveness(STALL_S)
    assert liveness.feed(100.0, object())
    # A reconnect long after the last packet: sent after the node's PLAY, not a leftover.
    assert liveness.feed(160.0, object())


def test_a_lone_packet_after_a_silence_is_not_live() -> None:
    """What FFmpeg's parser flush looks like: one packet a read time-out after the last."""
    liveness = Liveness(STALL_S)
    connection = object()
    flowing(liveness, 100.0, 1.0, connection)
    assert not liveness.feed(111.0, connection)
    assert liveness.resuming


def test_packets_after_a_silence_are_live_once_they_flow_for_the_resume_span() -> None:
    liveness = Liveness(STALL_S)
    connection = object()
    flowing(liveness, 100.0, 1.0, connection)
    resumed_at = 110.0
    results = flowing(liveness, resumed_at, 1.0, connection)
    first_live = results.index(True)
    assert first_live * FRAME_S >= RESUME_SPAN_S
    assert not any(results[:first_live]) and all(results[first_live:])
    assert not liveness.resuming


def test_a_burst_that_stops_again_never_counts_as_live() -> None:
    """Buffered packets handed over at once, then silence again: never live."""
    liveness = Liveness(STALL_S)
    connection = object()
    flowing(liveness, 100.0, 1.0, connection)
    burst = [liveness.feed(110.0 + i * 0.001, connection) for i in range(50)]
    assert not any(burst)
    # Another lone packet after the next silence starts the count afresh.
    assert not liveness.feed(120.0, connection)
    assert not liveness.feed(120.0 + RESUME_SPAN_S / 2, connection)


def test_a_gap_just_under_stall_after_keeps_the_stream_live() -> None:
    liveness = Liveness(STALL_S)
    connection = object()
    flowing(liveness, 100.0, 1.0, connection)
    assert liveness.feed(101.0 + STALL_S - 0.1, connection)


# -- what the stream makes of it ---------------------------------------------------------
SHORT_STALL_S = 0.2


def steady(stream: Stream, stream_info: StreamInfo, packets: int) -> None:
    for i in range(packets):
        stream.deliver(b"k" if i == 0 else b"p", i * 3600, i * 3600, i == 0, stream_info)
        time.sleep(0.005)


def test_a_packet_after_a_silence_leaves_the_stream_stalled_and_last_seen_alone() -> None:
    stream = Stream("cam", ring_seconds=10, queue_packets=100, stall_after_s=SHORT_STALL_S)
    stream_info = info()
    steady(stream, stream_info, 5)
    assert stream.health.state is StreamState.ONLINE
    last_seen = stream.health.last_packet_at
    time.sleep(SHORT_STALL_S + 0.05)
    stream.deliver(b"p", 5 * 3600, 5 * 3600, False, stream_info)  # the parser's flush
    health = stream.health
    assert health.state is StreamState.STALLED
    assert health.last_error_kind is ErrorKind.STALLED
    assert health.last_packet_at == last_seen  # "last seen" is the last real picture
    assert stream.readiness() is Readiness.FAILED  # no snapshot, no viewer start
    assert stream.ring.latest() is not None and stream.ring.latest().data == b"p"  # kept
    snapshot = stream.health_snapshot()
    assert snapshot.last_packet_age_s is not None and snapshot.last_packet_age_s >= SHORT_STALL_S


def test_a_stalled_stream_is_online_again_once_packets_flow() -> None:
    stream = Stream("cam", ring_seconds=10, queue_packets=100, stall_after_s=SHORT_STALL_S)
    stream_info = info()
    steady(stream, stream_info, 5)
    time.sleep(SHORT_STALL_S + 0.05)
    started = time.monotonic()
    stream.deliver(b"p", 5 * 3600, 5 * 3600, False, stream_info)
    assert stream.health.state is StreamState.STALLED
    i = 6
    while stream.health.state is not StreamState.ONLINE:
        assert time.monotonic() - started < 2, "never online again"
        stream.deliver(b"p", i * 3600, i * 3600, False, stream_info)
        i += 1
        time.sleep(0.02)
    assert time.monotonic() - started >= RESUME_SPAN_S
    assert stream.health.last_packet_age(time.monotonic()) < 0.1


def test_a_stream_fed_by_this_process_has_no_silence_rule() -> None:
    """A mosaic's output stream (no stall_after_s): every packet is live, as before."""
    stream = Stream("mosaic", ring_seconds=10, queue_packets=100)
    stream_info = info()
    steady(stream, stream_info, 2)
    time.sleep(SHORT_STALL_S + 0.05)
    stream.deliver(b"p", 9 * 3600, 9 * 3600, False, stream_info)
    assert stream.health.state is StreamState.ONLINE


def test_a_camera_slower_than_stall_after_is_live_from_its_second_frame() -> None:
    """1 fps under stall_after_s 0.8: its timestamps give its pace, even though the first
    packets of a connection arrive in one burst (FFmpeg probing the stream)."""
    liveness = Liveness(0.8)
    connection = object()
    burst = [liveness.feed(100.0, connection, float(i)) for i in range(4)]
    steady = [liveness.feed(100.0 + i, connection, 3.0 + i) for i in range(1, 10)]
    assert all(burst) and all(steady), (burst, steady)
    assert liveness.silence_after_s == 3.0


def test_a_slow_camera_s_declared_rate_covers_the_gap_before_its_second_frame() -> None:
    """Before the second packet no pace is known: a 1 fps camera whose first packet came
    alone would look silent 0.8 s later; the rate the connection declared stands in."""
    liveness = Liveness(0.8)
    connection = object()
    assert liveness.feed(100.0, connection, 0.0, declared_interval_s=1.0)
    assert liveness.silence_after_s == 3.0
    assert liveness.feed(101.0, connection, 1.0)  # 1 s after the first: not a silence
    undeclared = Liveness(0.8)
    assert undeclared.feed(100.0, connection, 0.0)
    assert not undeclared.feed(101.0, connection, 1.0)  # what it was before


def test_a_slow_camera_without_timestamps_is_live_once_its_pace_is_learnt() -> None:
    liveness = Liveness(0.8)
    connection = object()
    results = [liveness.feed(100.0 + i, connection) for i in range(10)]
    assert all(results[4:]), results  # from three intervals on, at the latest


def test_a_freeze_of_a_slow_camera_is_still_a_silence() -> None:
    liveness = Liveness(0.8)
    connection = object()
    for i in range(10):
        liveness.feed(100.0 + i, connection, float(i))
    # The parser's flush: the next frame's timestamp, a read time-out after the last.
    assert not liveness.feed(109.0 + 4.0, connection, 10.0)


def test_one_long_gap_does_not_stretch_a_fast_camera_s_silence() -> None:
    liveness = Liveness(STALL_S)
    connection = object()
    for i in range(50):
        liveness.feed(100.0 + i * FRAME_S, connection, i * FRAME_S)
    liveness.feed(110.0, connection, 60.0)  # a gap, and a timestamp jump
    assert liveness.silence_after_s == STALL_S
