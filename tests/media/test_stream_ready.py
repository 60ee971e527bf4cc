"""Waiting for a stream's first picture: woken by the ingest thread, never by polling.

No camera and no simulator: a thread stands in for the ingest worker and delivers
synthetic packets (as in test_ring_and_fanout.py), or fails the way the worker does.
"""

from __future__ import annotations

import asyncio
import threading
import time
from fractions import Fraction

from surveillance.media.health import ErrorKind, StreamState
from surveillance.media.packets import StreamInfo
from surveillance.media.stream import Readiness, Stream

INFO = StreamInfo("h264", 1280, 720, Fraction(1, 90000), None, "High", 25.0, 0.0)


def connecting_stream() -> Stream:
    stream = Stream("cam", ring_seconds=10, queue_packets=100)
    stream.health.set_state(StreamState.CONNECTING)
    return stream


def later(delay_s: float, action: object) -> threading.Thread:
    """Run ``action`` in another thread after ``delay_s``, as the ingest thread would."""

    def run() -> None:
        time.sleep(delay_s)
        action()  # type: ignore[operator]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def deliver_gop(stream: Stream, non_keyframes_first: int = 0) -> None:
    for i in range(non_keyframes_first):
        stream.deliver(b"p", i * 3600, i * 3600, False, INFO)
    stream.deliver(b"k", 0, 0, True, INFO)
    stream.deliver(b"p", 3600, 3600, False, INFO)


async def timed_wait(stream: Stream, timeout_s: float) -> tuple[bool, float]:
    started = time.monotonic()
    ready = await stream.wait_ready(timeout_s)
    return ready, time.monotonic() - started


def test_returns_as_soon_as_a_keyframe_arrives() -> None:
    stream = connecting_stream()
    thread = later(0.2, lambda: deliver_gop(stream))
    ready, waited = asyncio.run(timed_wait(stream, 5.0))
    thread.join()
    assert ready
    assert 0.15 <= waited < 1.0  # woken by the delivery, not at the time-out
    assert stream.readiness() is Readiness.READY


def test_packets_before_the_first_keyframe_do_not_end_the_wait() -> None:
    # The stream turns online with the first packet, but a viewer needs a keyframe.
    stream = connecting_stream()

    def deliver_late_keyframe() -> None:
        stream.deliver(b"p", 0, 0, False, INFO)
        time.sleep(0.3)
        deliver_gop(stream)

    thread = later(0.05, deliver_late_keyframe)
    ready, waited = asyncio.run(timed_wait(stream, 5.0))
    thread.join()
    assert ready and waited >= 0.3


def test_a_ready_stream_answers_at_once() -> None:
    stream = connecting_stream()
    deliver_gop(stream)
    ready, waited = asyncio.run(timed_wait(stream, 5.0))
    assert ready and waited < 0.05


def test_times_out_when_nothing_arrives() -> None:
    stream = connecting_stream()
    ready, waited = asyncio.run(timed_wait(stream, 0.3))
    assert not ready
    assert 0.3 <= waited < 1.0
    assert stream.health.state is StreamState.CONNECTING
    assert stream._waiters == []  # a timed-out waiter leaves nothing behind


def test_fails_fast_when_the_stream_goes_offline_with_its_reason() -> None:
    stream = connecting_stream()

    def fail() -> None:  # what the worker does when a connection attempt fails
        stream.health.failed_attempts += 1
        stream.health.set_error(ErrorKind.REFUSED, "connection refused", StreamState.OFFLINE)

    thread = later(0.2, fail)
    ready, waited = asyncio.run(timed_wait(stream, 5.0))
    thread.join()
    assert not ready and waited < 1.0
    assert stream.health.state is StreamState.OFFLINE
    assert stream.health.last_error == "connection refused"


def test_offline_disabled_stalled_and_retrying_streams_fail_at_once() -> None:
    for state in (StreamState.OFFLINE, StreamState.DISABLED, StreamState.STALLED):
        stream = connecting_stream()
        stream.health.set_state(state)
        ready, waited = asyncio.run(timed_wait(stream, 5.0))
        assert not ready and waited < 0.05, state
    # Connecting again after a failed attempt: a camera retrying, not one starting.
    retrying = connecting_stream()
    retrying.health.failed_attempts = 1
    ready, waited = asyncio.run(timed_wait(retrying, 5.0))
    assert not ready and waited < 0.05


def test_a_stream_that_comes_back_online_stops_failing() -> None:
    stream = connecting_stream()
    stream.health.set_state(StreamState.STALLED)
    deliver_gop(stream)  # packets again: online, with a keyframe in the ring
    assert stream.readiness() is Readiness.READY


def test_many_waiters_on_one_loop_all_wake() -> None:
    stream = connecting_stream()

    async def main() -> list[bool]:
        later(0.1, lambda: deliver_gop(stream))
        return await asyncio.gather(*(stream.wait_ready(5.0) for _ in range(20)))

    assert asyncio.run(main()) == [True] * 20
    assert stream._waiters == []
