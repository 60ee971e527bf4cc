"""One camera connection, any number of consumers, none of which can slow it down.

Each consumer gets a :class:`Subscription`: a bounded queue the ingest thread offers packets
to without ever blocking. A consumer that falls ``max_packets`` behind loses its backlog and
resumes at the next keyframe (a decoder cannot use P-frames whose reference was dropped);
its ``dropped`` count says how much it lost. Consumers may be threads (``get``) or asyncio
tasks (``aget``).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Iterable

from surveillance.media.packets import Packet


class SubscriptionClosed(Exception):
    """The stream went away or the subscription was closed."""


class Subscription:
    def __init__(self, max_packets: int, on_close: Callable[[Subscription], None]) -> None:
        self.max_packets = max_packets
        self.dropped = 0
        self.prefilled = 0  # packets from the cache given before live ones
        self._on_close = on_close
        self._queue: deque[Packet] = deque()
        self._cond = threading.Condition(threading.Lock())
        # A consumer must start at a keyframe: nothing before one can be decoded.
        self._need_keyframe = True
        self._closed = False
        self._async_waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None

    # -- producer side (the ingest thread) ---------------------------------------------
    def offer(self, packet: Packet) -> None:
        with self._cond:
            if self._closed:
                return
            if self._need_keyframe and not packet.keyframe:
                self.dropped += 1
                return
            if len(self._queue) >= self.max_packets:
                self.dropped += len(self._queue)
                self._queue.clear()
                if not packet.keyframe:
                    self._need_keyframe = True
                    self.dropped += 1
                    return
            self._need_keyframe = False
            self._queue.append(packet)
            self._wake_locked()

    def prefill(self, packets: Iterable[Packet]) -> None:
        """Start the consumer from cached packets (a GOP), before live ones arrive."""
        for packet in packets:
            self.offer(packet)

    def _wake_locked(self) -> None:
        self._cond.notify()
        if self._async_waiter is not None:
            loop, future = self._async_waiter
            self._async_waiter = None
            loop.call_soon_threadsafe(_resolve, future)

    # -- consumer side ------------------------------------------------------------------
    def get(self, timeout: float | None = None) -> Packet | None:
        """Next packet, waiting up to ``timeout`` seconds; None on time-out."""
        with self._cond:
            if not self._queue and not self._closed:
                self._cond.wait(timeout)
            if self._queue:
                return self._queue.popleft()
            if self._closed:
                raise SubscriptionClosed
            return None

    async def aget(self) -> Packet:
        while True:
            with self._cond:
                if self._queue:
                    return self._queue.popleft()
                if self._closed:
                    raise SubscriptionClosed
                loop = asyncio.get_running_loop()
                future: asyncio.Future[None] = loop.create_future()
                self._async_waiter = (loop, future)
            await future

    def take_pending(self, limit: int) -> list[Packet]:
        """Up to ``limit`` packets already queued, without waiting (a consumer's burst)."""
        with self._cond:
            count = min(limit, len(self._queue))
            return [self._queue.popleft() for _ in range(count)]

    def pending(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._queue.clear()
            self._wake_locked()
        self._on_close(self)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class FanOut:
    """The set of subscriptions of one stream."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: tuple[Subscription, ...] = ()

    def subscribe(self, max_packets: int, prefill: Iterable[Packet] = ()) -> Subscription:
        subscription = Subscription(max_packets, self._remove)
        subscription.prefill(prefill)
        subscription.prefilled = subscription.pending()
        with self._lock:
            self._subscriptions = (*self._subscriptions, subscription)
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)

    def publish(self, packet: Packet) -> None:
        # Reading the tuple needs no lock: it is replaced, never mutated.
        for subscription in self._subscriptions:
            subscription.offer(packet)

    def __len__(self) -> int:
        return len(self._subscriptions)

    def dropped_total(self) -> int:
        """Packets lost by current consumers that fell behind."""
        return sum(s.dropped for s in self._subscriptions)

    def close_all(self) -> None:
        for subscription in self._subscriptions:
            subscription.close()
