"""Live snapshots: the current picture of a camera as JPEG, decoded only when asked.

Three modes. ``latest`` (default) is the newest packet's picture, decoded from the cached
keyframe onwards by a per-stream :class:`~surveillance.media.decode.LiveDecoder` that stays
warm between requests. ``keyframe`` decodes only the newest keyframe: cheaper when many
thumbnails are asked for at once, up to one GOP older. ``recent`` is the fastest picture
that is honest about its age: a warm decoder's newest picture, else the newest keyframe,
without starting a catch-up. A cold ``latest`` decodes the whole GOP so far (at 1080p about
4 ms a frame: 200 ms at the end of a 2 s GOP at 25 fps), which no budget of tens of
milliseconds holds; ``recent`` costs one keyframe decode at most, and the served picture
says what it is (``Snapshot.mode``) and how old (``captured_at``, ``age_s``). Concurrent
requests for the same picture share one decode and one encode.

A snapshot is only ever of a live picture: a stream that is not online fails at once
(``IngestService.ready_stream``), and so does one whose last live packet is older than
``stall_after_s`` in the instant before the monitor marks it stalled. A packet that comes
after a silence is not live (media/liveness.py), so an old picture is never served as new.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from surveillance.catalog import CatalogChange
from surveillance.errors import CameraUnavailable
from surveillance.media.decode import LiveDecoder, decode_keyframe, encode_jpeg
from surveillance.media.health import StreamState
from surveillance.media.stream import Stream
from surveillance.services.ingest import IngestService

SNAPSHOT_WARM_S = 15.0  # a live decoder keeps following its stream this long after a request
SNAPSHOT_DECODE_TIMEOUT_S = 3.0  # longest wait for the decoder to reach the newest packet
SNAPSHOT_WORKERS = 4  # threads for JPEG encoding and keyframe decoding


class SnapshotMode(StrEnum):
    LATEST = "latest"
    KEYFRAME = "keyframe"
    RECENT = "recent"  # asked for only: the answer says latest or keyframe


@dataclass(frozen=True)
class Snapshot:
    jpeg: bytes
    width: int
    height: int
    captured_at: float  # time.time() when the source packet arrived
    age_s: float  # how old the picture was when it was served
    mode: SnapshotMode  # what was served: latest or keyframe

    @property
    def captured_at_iso(self) -> str:
        """``captured_at`` in ISO 8601, UTC, with ``Z`` as the API's JSON times have it."""
        return datetime.fromtimestamp(self.captured_at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SnapshotService:
    def __init__(self, ingest: IngestService, *, warm_s: float = SNAPSHOT_WARM_S) -> None:
        self._ingest = ingest
        self._warm_s = warm_s
        self._decoders: dict[str, LiveDecoder] = {}
        self._executor = ThreadPoolExecutor(SNAPSHOT_WORKERS, thread_name_prefix="snapshot")
        # One in-flight job per (stream, mode, width): a burst of requests shares it.
        self._inflight: dict[tuple[str, SnapshotMode, int | None], asyncio.Future[Snapshot]] = {}
        # The last result per key, reused while no newer picture exists.
        self._cache: dict[tuple[str, SnapshotMode, int | None], tuple[int, Snapshot]] = {}
        ingest.catalog.on_change(self._catalog_changed)

    def _catalog_changed(self, change: CatalogChange) -> None:
        """A removed or changed camera's decoders and pictures go: a camera added again
        under its id, or with a new URL, has a new stream whose packets count from 0 again
        (the event loop thread, as every use of these dicts)."""
        keys = {k for c in change.removed + change.updated for k in (c.id, f"{c.id}/sub")}
        for key in keys & self._decoders.keys():
            self._decoders.pop(key).stop()
        for cached in [k for k in self._cache if k[0] in keys]:
            del self._cache[cached]

    def close(self) -> None:
        for decoder in self._decoders.values():
            decoder.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def snapshot(
        self,
        camera_id: str,
        *,
        mode: SnapshotMode = SnapshotMode.LATEST,
        width: int | None = None,
        sub: bool = False,
    ) -> Snapshot:
        stream = await self._ingest.ready_stream(camera_id, sub)
        self._check_live(camera_id, stream)
        key = (stream.key, mode, width)
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Snapshot] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._take(stream, camera_id, mode, width)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters, if any, re-raise it themselves
            raise
        finally:
            del self._inflight[key]

    def _check_live(self, camera_id: str, stream: Stream) -> None:
        # The stream's own silence figure: a slow camera's frames may be further apart
        # than stall_after_s (media/liveness.py).
        stall_after_s = stream.silence_after_s(self._ingest.settings.stall_after_s)
        age = stream.health.last_packet_age(time.monotonic())
        if age is None or age >= stall_after_s:
            seen = "never" if age is None else f"{age:.0f} s ago"
            raise CameraUnavailable(
                camera_id, StreamState.STALLED.value, f"no live picture: last packet {seen}"
            )

    async def _take(
        self, stream: Stream, camera_id: str, mode: SnapshotMode, width: int | None
    ) -> Snapshot:
        if mode is SnapshotMode.KEYFRAME:
            return await self._from_keyframe(stream, camera_id, width)
        latest = stream.ring.latest()
        if latest is None:
            raise CameraUnavailable(camera_id, stream.health.state.value, "no packets yet")
        loop = asyncio.get_running_loop()
        if mode is SnapshotMode.RECENT:
            decoder = self._decoders.get(stream.key)
            if decoder is None:
                return await self._from_keyframe(stream, camera_id, width)
            decoded = await loop.run_in_executor(
                self._executor, decoder.wait_if_warm, latest.seq, SNAPSHOT_DECODE_TIMEOUT_S
            )
            if decoded is None:  # cold: the keyframe now rather than a GOP's decode
                return await self._from_keyframe(stream, camera_id, width)
        else:
            decoder = self._decoders.get(stream.key)
            if decoder is None:
                decoder = self._decoders[stream.key] = LiveDecoder(stream, self._warm_s)
            decoded = await loop.run_in_executor(
                self._executor, decoder.wait_for, latest.seq, SNAPSHOT_DECODE_TIMEOUT_S
            )
            if decoded is None:
                raise CameraUnavailable(
                    camera_id, stream.health.state.value, "could not decode a picture"
                )
        return await self._encoded(
            (stream.key, SnapshotMode.LATEST, width),
            decoded.seq,
            decoded.frame,
            decoded.received_at,
            camera_id,
            stream,
        )

    async def _from_keyframe(self, stream: Stream, camera_id: str, width: int | None) -> Snapshot:
        packet = stream.ring.latest_keyframe()
        if packet is None:
            raise CameraUnavailable(camera_id, stream.health.state.value, "no keyframe yet")
        key = (stream.key, SnapshotMode.KEYFRAME, width)
        cached = self._cache.get(key)
        if cached and cached[0] == packet.seq:
            return self._aged(cached[1])
        loop = asyncio.get_running_loop()
        frame = await loop.run_in_executor(self._executor, decode_keyframe, packet)
        return await self._encoded(key, packet.seq, frame, packet.received_at, camera_id, stream)

    async def _encoded(
        self,
        key: tuple[str, SnapshotMode, int | None],
        source_seq: int,
        frame: Any | None,
        received_at: float,
        camera_id: str,
        stream: Stream,
    ) -> Snapshot:
        """The JPEG of ``frame`` (the picture of packet ``source_seq``), from the cache while
        no newer picture exists."""
        cached = self._cache.get(key)
        if cached and cached[0] == source_seq:
            return self._aged(cached[1])
        if frame is None:
            raise CameraUnavailable(camera_id, stream.health.state.value, "undecodable picture")
        loop = asyncio.get_running_loop()
        jpeg, out_w, out_h = await loop.run_in_executor(self._executor, encode_jpeg, frame, key[2])
        captured_at = time.time() - (time.monotonic() - received_at)
        snapshot = Snapshot(jpeg, out_w, out_h, captured_at, 0.0, key[1])
        self._cache[key] = (source_seq, snapshot)
        return self._aged(snapshot)

    @staticmethod
    def _aged(snapshot: Snapshot) -> Snapshot:
        age = max(0.0, time.time() - snapshot.captured_at)
        return Snapshot(snapshot.jpeg, snapshot.width, snapshot.height, snapshot.captured_at,
                        age, snapshot.mode)  # fmt: skip
