"""A bounded ring of compressed packets, indexed by keyframe.

It is the pre-event buffer for clips and the cache a new viewer or a snapshot starts from.
It is trimmed a whole GOP at a time so that it always starts at a keyframe: everything in
it is decodable without anything that came before.
"""

from __future__ import annotations

import threading
from collections import deque

from surveillance.media.packets import Packet, StreamInfo


class PacketRing:
    def __init__(self, keep_seconds: float) -> None:
        self.keep_seconds = keep_seconds
        self._lock = threading.Lock()
        self._packets: deque[Packet] = deque()
        self._keyframe_seqs: deque[int] = deque()  # seq of every keyframe still in the ring
        self._bytes = 0

    def append(self, packet: Packet) -> None:
        """Add a packet; called by the single ingest thread of this stream."""
        with self._lock:
            if self._packets and self._packets[-1].info is not packet.info:
                self._clear_locked()  # a new connection: old timestamps no longer line up
            if packet.keyframe:
                self._keyframe_seqs.append(packet.seq)
            elif not self._keyframe_seqs:
                return  # nothing before the first keyframe can be decoded
            self._packets.append(packet)
            self._bytes += packet.size
            self._trim_locked(packet.received_at)

    def _trim_locked(self, now: float) -> None:
        # Drop the oldest GOP while the next GOP alone still covers keep_seconds.
        while len(self._keyframe_seqs) >= 2:
            second = self._keyframe_seqs[1]
            second_index = second - self._packets[0].seq
            if now - self._packets[second_index].received_at < self.keep_seconds:
                break
            for _ in range(second_index):
                self._bytes -= self._packets.popleft().size
            self._keyframe_seqs.popleft()

    def clear(self) -> None:
        with self._lock:
            self._clear_locked()

    def _clear_locked(self) -> None:
        self._packets.clear()
        self._keyframe_seqs.clear()
        self._bytes = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._packets)

    def latest(self) -> Packet | None:
        with self._lock:
            return self._packets[-1] if self._packets else None

    def latest_gop(self) -> list[Packet]:
        """From the newest keyframe through the newest packet (empty if none)."""
        with self._lock:
            if not self._keyframe_seqs:
                return []
            start = self._keyframe_seqs[-1] - self._packets[0].seq
            return [self._packets[i] for i in range(start, len(self._packets))]

    def latest_keyframe(self) -> Packet | None:
        with self._lock:
            if not self._keyframe_seqs:
                return None
            return self._packets[self._keyframe_seqs[-1] - self._packets[0].seq]

    def since(self, monotonic_time: float) -> list[Packet]:
        """Packets from the last keyframe at or before ``monotonic_time`` to the newest."""
        with self._lock:
            if not self._packets:
                return []
            first = self._packets[0].seq
            start = self._keyframe_seqs[0] - first if self._keyframe_seqs else 0
            for seq in self._keyframe_seqs:
                if self._packets[seq - first].received_at <= monotonic_time:
                    start = seq - first
                else:
                    break
            return [self._packets[i] for i in range(start, len(self._packets))]

    def duration_s(self) -> float:
        with self._lock:
            if len(self._packets) < 2:
                return 0.0
            return self._packets[-1].received_at - self._packets[0].received_at

    def current_info(self) -> StreamInfo | None:
        latest = self.latest()
        return latest.info if latest else None
