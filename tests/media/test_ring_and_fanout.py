"""The packet ring keeps whole GOPs; fan-out never lets a slow consumer hold anyone up."""

from __future__ import annotations

import asyncio
import threading
from fractions import Fraction

from surveillance.media.backoff import Backoff
from surveillance.media.packets import StreamInfo
from surveillance.media.stream import Stream

INFO = StreamInfo("h264", 1280, 720, Fraction(1, 90000), None, "High", 25.0, 0.0)


def feed(stream: Stream, count: int, gop: int = 50, info: StreamInfo = INFO) -> None:
    for i in range(count):
        stream.deliver(bytes(1000), i * 3600, i * 3600, i % gop == 0, info)


def test_ring_starts_at_keyframe_and_covers_the_configured_seconds(monkeypatch) -> None:
    clock = [0.0]
    monkeypatch.setattr("surveillance.media.stream.time.monotonic", lambda: clock[0])
    stream = Stream("cam", ring_seconds=4.0, queue_packets=100)
    for i in range(500):  # 20 s at 25 fps, 2 s GOP
        clock[0] = i / 25
        stream.deliver(bytes(1000), i, i, i % 50 == 0, INFO)
    ring = stream.ring
    gop = ring.latest_gop()
    assert gop[0].keyframe and gop[0].seq == 450 and gop[-1].seq == 499
    assert 4.0 <= ring.duration_s() < 6.0  # at least keep_seconds, at most one GOP more
    assert ring.nbytes == len(ring) * 1000
    first = ring.since(clock[0] - 3.0)
    assert first[0].keyframe and first[0].seq == 400


def test_ring_drops_packets_before_the_first_keyframe_and_resets_on_reconnect() -> None:
    stream = Stream("cam", ring_seconds=10, queue_packets=100)
    for i in range(5):
        stream.deliver(b"x", i, i, False, INFO)
    assert len(stream.ring) == 0
    feed(stream, 10)
    assert len(stream.ring) == 10
    other = StreamInfo("h264", 1280, 720, Fraction(1, 90000), None, "High", 25.0, 1.0)
    stream.deliver(b"y", 0, 0, True, other)
    assert len(stream.ring) == 1 and stream.ring.latest_gop()[0].info is other


def test_new_subscriber_starts_from_the_cached_gop() -> None:
    stream = Stream("cam", ring_seconds=10, queue_packets=500)
    feed(stream, 120)  # keyframes at 0, 50, 100
    with stream.subscribe() as sub:
        first = sub.get(0)
        assert first is not None and first.keyframe and first.seq == 100
        assert sub.pending() == 19
        feed_one = stream.ring.latest()
        assert feed_one is not None


def test_slow_consumer_drops_and_resumes_at_keyframe_without_stalling_others() -> None:
    stream = Stream("cam", ring_seconds=10, queue_packets=20)
    slow = stream.subscribe(from_cached_gop=False)
    fast = stream.subscribe(from_cached_gop=False, max_packets=1000)
    feed(stream, 110, gop=50)
    # The fast consumer got everything; the slow one lost its backlog and restarted at a key.
    assert fast.pending() == 110
    assert slow.dropped > 0
    first = slow.get(0)
    assert first is not None and first.keyframe and first.seq == 100
    received = 1 + slow.pending()
    assert received + slow.dropped == 110
    slow.close()
    fast.close()
    assert stream.consumers == 0


async def test_async_consumer_is_woken_from_the_ingest_thread() -> None:
    stream = Stream("cam", ring_seconds=10, queue_packets=100)
    sub = stream.subscribe(from_cached_gop=False)
    thread = threading.Thread(target=feed, args=(stream, 10))
    thread.start()
    got = [await asyncio.wait_for(sub.aget(), 2) for _ in range(10)]
    thread.join()
    assert [p.seq for p in got] == list(range(10))
    sub.close()


def test_backoff_grows_is_capped_jittered_and_resets() -> None:
    import random

    backoff = Backoff(0.5, 10.0, random.Random(1))
    delays = [backoff.next_delay() for _ in range(50)]
    assert all(0.25 <= d <= 10.0 for d in delays)
    assert max(delays[10:]) > 5  # reaches toward the cap
    assert len({round(d, 3) for d in delays[10:]}) > 30  # jitter: not one fixed value
    backoff.reset()
    assert backoff.next_delay() <= 0.5
