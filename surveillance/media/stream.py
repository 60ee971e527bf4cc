"""One camera stream (main or sub): its packet ring, its consumers and its health.

A single ingest worker feeds it through :meth:`Stream.deliver`; everyone else reads. The
lock makes "take the cached GOP and start receiving live packets" atomic, so a new
consumer neither misses nor repeats a packet.

Whoever needs a picture first awaits :meth:`Stream.wait_ready`: the ingest thread wakes
the event loop when a keyframe arrives or the stream's state changes, so a viewer starts
the moment the picture exists and a failed camera answers at once with its reason.

A packet that comes after a silence is kept (decoders need it) but does not make the stream
online nor count as seen until packets flow again (:mod:`surveillance.media.liveness`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from enum import Enum

from surveillance.media.fanout import FanOut, Subscription
from surveillance.media.health import ErrorKind, HealthSnapshot, StreamHealth, StreamState
from surveillance.media.liveness import Liveness
from surveillance.media.packets import Packet, StreamInfo
from surveillance.media.reorder import BFrameWatch
from surveillance.media.ring import PacketRing

# States in which waiting cannot bring a picture: the camera failed or is turned off, or
# the connection is open but silent. Each has a reason in the stream's health.
_GIVE_UP_STATES = (StreamState.OFFLINE, StreamState.DISABLED, StreamState.STALLED)


class Readiness(Enum):
    READY = "ready"  # online, with a keyframe in the ring to start from
    WAITING = "waiting"  # connecting (first attempt), starting, or online before a keyframe
    FAILED = "failed"  # see _GIVE_UP_STATES, or connecting again after a failed attempt


class Stream:
    def __init__(
        self,
        key: str,
        *,
        ring_seconds: float,
        queue_packets: int,
        stall_after_s: float | None = None,
    ) -> None:
        """``stall_after_s``: a packet after a silence this long is not live by itself
        (media/liveness.py); None for a stream fed by this process (a mosaic), whose every
        packet is live."""
        self.key = key  # "<camera id>" or "<camera id>/sub"
        self._lock = threading.Lock()
        self._next_seq = 0
        # Event-loop futures of wait_ready calls, resolved from the ingest thread.
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._waiting = 0  # calls of _wait_until in progress (see ``waiting``)
        self._fanout = FanOut()
        self.ring = PacketRing(ring_seconds)
        self.health = StreamHealth(on_change=self._health_changed)
        # Called from whichever thread changed the health; each must return at once.
        self._health_listeners: list[Callable[[], None]] = []
        self._liveness = Liveness(stall_after_s) if stall_after_s is not None else None
        self.queue_packets = queue_packets
        # Written by the ingest thread only; a new connection (a new info) starts a new watch.
        self._b_frames: tuple[StreamInfo, BFrameWatch] | None = None

    def deliver(
        self,
        data: bytes,
        pts: int | None,
        dts: int | None,
        keyframe: bool,
        info: StreamInfo,
    ) -> None:
        """Called by the ingest worker for every packet; must never block for long."""
        now = time.monotonic()
        with self._lock:
            packet = Packet(self._next_seq, data, pts, dts, keyframe, now, info)
            self._next_seq += 1
            self.ring.append(packet)
            self._fanout.publish(packet)
        watched = self._b_frames
        if watched is None or watched[0] is not info:
            watched = self._b_frames = (info, BFrameWatch(info.codec, info.extradata))
        settled_before = watched[1].verdict is not None
        watched[1].feed(data, keyframe)
        settled_now = not settled_before and watched[1].verdict is not None
        health = self.health
        liveness = self._liveness
        timestamp = dts if dts is not None else pts
        live = liveness is None or liveness.feed(
            now,
            info,
            None if timestamp is None else float(timestamp * info.time_base),
            1 / info.average_fps if info.average_fps else None,
        )
        health.packet(len(data), now, live=live)
        if not live:
            if health.state is StreamState.ONLINE:
                # Before the monitor notices: from this moment the ring's newest packet
                # is not a live picture, so nobody may be told it is.
                health.set_error(
                    ErrorKind.STALLED,
                    "packets stopped and have not started flowing again",
                    StreamState.STALLED,
                )
        elif health.state is not StreamState.ONLINE:
            health.set_state(StreamState.ONLINE)  # wakes waiters itself
        elif (keyframe or settled_now) and self._waiters:
            # Read without the lock: a waiter that registers after this read checked the
            # ring after this keyframe was in it, so it needs no wake-up.
            self._wake_waiters()

    def silence_after_s(self, default: float) -> float:
        """How long this stream may go without a packet before it counts as silent: its
        liveness rule's figure, which adapts to a slow camera's own frame interval
        (media/liveness.py); ``default`` for a stream without that rule."""
        liveness = self._liveness
        return default if liveness is None else liveness.silence_after_s

    def b_frames(self, info: StreamInfo) -> bool | None:
        """Whether the connection that sent ``info`` carries B-frames; None: not known yet."""
        watched = self._b_frames
        if watched is None or watched[0] is not info:
            return None
        return watched[1].verdict

    def subscribe(
        self, *, from_cached_gop: bool = True, max_packets: int | None = None
    ) -> Subscription:
        """A bounded queue of this stream's packets, starting with the cached GOP if asked."""
        with self._lock:
            cached = self.ring.latest_gop() if from_cached_gop else []
            return self._fanout.subscribe(max_packets or self.queue_packets, cached)

    # -- waiting for the first picture ----------------------------------------------------
    def readiness(self) -> Readiness:
        health = self.health
        state = health.state
        if state is StreamState.ONLINE and self.ring.latest_keyframe() is not None:
            return Readiness.READY
        if state in _GIVE_UP_STATES or (
            state is StreamState.CONNECTING and health.failed_attempts > 0
        ):
            return Readiness.FAILED
        return Readiness.WAITING

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait until a viewer can start from a keyframe; False if the stream failed (at
        once, when it is or goes offline) or ``timeout_s`` passed. ``health`` says why."""
        await self._wait_until(lambda: self.readiness() is not Readiness.WAITING, timeout_s)
        return self.readiness() is Readiness.READY

    async def wait_b_frames_known(self, info: StreamInfo, timeout_s: float) -> bool | None:
        """:meth:`b_frames` once the connection has settled it (or ``timeout_s`` passed, or
        the stream failed or reconnected meanwhile: then None)."""
        await self._wait_until(
            lambda: self.b_frames(info) is not None or self.readiness() is Readiness.FAILED,
            timeout_s,
        )
        return self.b_frames(info)

    async def _wait_until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until ``done()`` holds, looking again at each wake-up from the ingest thread
        (a keyframe, a change of state, a settled B-frame verdict); its last value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        with self._lock:
            self._waiting += 1
        try:
            while True:
                with self._lock:
                    finished = done()
                    if not finished:
                        waiter = (loop, loop.create_future())
                        self._waiters.append(waiter)
                if finished:
                    return True
                remaining = deadline - loop.time()
                try:
                    if remaining <= 0:
                        raise TimeoutError
                    await asyncio.wait_for(waiter[1], remaining)
                except TimeoutError:
                    return done()
                finally:
                    with self._lock:
                        if waiter in self._waiters:
                            self._waiters.remove(waiter)
        finally:
            with self._lock:
                self._waiting -= 1

    @property
    def waiting(self) -> int:
        """Requests waiting for this stream's first picture (or another condition) now:
        somebody wants it, though nobody consumes it yet."""
        return self._waiting

    def add_health_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every change of health an operator sees (never per
        packet), from the thread that made it: it must hand the news on and return."""
        self._health_listeners.append(listener)

    def _health_changed(self) -> None:
        self._wake_waiters()
        for listener in self._health_listeners:
            listener()

    def _wake_waiters(self) -> None:
        """Resolve every waiter's future on its loop; each then looks again. Any thread."""
        with self._lock:
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, future)

    # -- consumers ------------------------------------------------------------------------
    @property
    def consumers(self) -> int:
        return len(self._fanout)

    def close_consumers(self) -> None:
        self._fanout.close_all()

    def health_snapshot(self) -> HealthSnapshot:
        return self.health.snapshot(
            ring_bytes=self.ring.nbytes,
            ring_seconds=self.ring.duration_s(),
            consumers=self.consumers,
            dropped=self._fanout.dropped_total(),
        )


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
