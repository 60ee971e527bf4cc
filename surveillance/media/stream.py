"""One camera stream (main or sub): its packet ring, its consumers and its health.

A single ingest worker feeds it through :meth:`Stream.deliver`; everyone else reads. The
lock makes "take the cached GOP and start receiving live packets" atomic, so a new
consumer neither misses nor repeats a packet.
"""

from __future__ import annotations

import threading
import time

from surveillance.media.fanout import FanOut, Subscription
from surveillance.media.health import HealthSnapshot, StreamHealth, StreamState
from surveillance.media.packets import Packet, StreamInfo
from surveillance.media.ring import PacketRing


class Stream:
    def __init__(self, key: str, *, ring_seconds: float, queue_packets: int) -> None:
        self.key = key  # "<camera id>" or "<camera id>/sub"
        self.ring = PacketRing(ring_seconds)
        self.health = StreamHealth()
        self.queue_packets = queue_packets
        self._fanout = FanOut()
        self._lock = threading.Lock()
        self._next_seq = 0
        self._packet_arrived = threading.Condition(self._lock)

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
            self._packet_arrived.notify_all()
        health = self.health
        health.packet(len(data), now)
        if health.state is not StreamState.ONLINE:
            health.set_state(StreamState.ONLINE)

    def subscribe(
        self, *, from_cached_gop: bool = True, max_packets: int | None = None
    ) -> Subscription:
        """A bounded queue of this stream's packets, starting with the cached GOP if asked."""
        with self._lock:
            cached = self.ring.latest_gop() if from_cached_gop else []
            return self._fanout.subscribe(max_packets or self.queue_packets, cached)

    def wait_for_packet(self, after_seq: int, timeout: float) -> bool:
        """Block until a packet newer than ``after_seq`` is in the ring (or time-out)."""
        with self._lock:
            return self._packet_arrived.wait_for(lambda: self._next_seq > after_seq + 1, timeout)

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
