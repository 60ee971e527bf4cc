"""Footage for cases from live cameras: snapshots and clips from the packet ring.

Implements :class:`~surveillance.cases.footage.FootageSource`, so the case layer gets
bytes and facts without knowing about streams or PyAV. Clip remuxing runs in a thread:
it is short (remux only) but blocking.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from surveillance.cases.errors import FootageUnavailable
from surveillance.cases.footage import Footage, ItemKind
from surveillance.catalog import Catalog
from surveillance.errors import CameraNotFound
from surveillance.media.clip import ClipError, collect_window, remux_mp4
from surveillance.services.ingest import IngestService
from surveillance.services.snapshots import SnapshotMode, SnapshotService

CLIP_GRACE_S = 3.0  # how long past the window's end a clip waits for a late packet
CLIP_WORKERS = 4  # clips being collected or remuxed at once; more wait their turn
NOTE_THRESHOLD_S = 0.5  # a clip this much shorter than asked says so in its note


def wall_time(monotonic_time: float) -> datetime:
    return datetime.fromtimestamp(time.time() - (time.monotonic() - monotonic_time), UTC)


class LiveFootage:
    def __init__(self, catalog: Catalog, ingest: IngestService, snapshots: SnapshotService) -> None:
        self._catalog = catalog
        self._ingest = ingest
        self._snapshots = snapshots
        self._executor = ThreadPoolExecutor(CLIP_WORKERS, thread_name_prefix="clip")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _platform(self, camera_id: str) -> str:
        camera = self._catalog.camera(camera_id)
        if camera is None:
            raise CameraNotFound(camera_id)
        return camera.platform_id

    async def snapshot(self, camera_id: str) -> Footage:
        platform = self._platform(camera_id)
        shot = await self._snapshots.snapshot(camera_id, mode=SnapshotMode.LATEST)
        return Footage(
            kind=ItemKind.SNAPSHOT,
            data=shot.jpeg,
            media_type="image/jpeg",
            camera_id=camera_id,
            platform_id=platform,
            captured_at=datetime.fromtimestamp(shot.captured_at, UTC),
            stream_time_s=None,
            codec="jpeg",
            width=shot.width,
            height=shot.height,
            duration_s=None,
            frames=1,
        )

    async def clip(
        self, camera_id: str, at: datetime | None, pre_s: float, post_s: float
    ) -> Footage:
        platform = self._platform(camera_id)
        stream = await self._ingest.ready_stream(camera_id)
        now_wall, now_mono = time.time(), time.monotonic()
        moment = now_mono if at is None else now_mono - (now_wall - at.timestamp())
        start, end = moment - pre_s, moment + post_s
        loop = asyncio.get_running_loop()
        try:
            window = await loop.run_in_executor(
                self._executor, collect_window, stream, start, end, CLIP_GRACE_S
            )
            data, facts = await loop.run_in_executor(self._executor, remux_mp4, window.packets)
        except ClipError as exc:
            raise FootageUnavailable(camera_id, str(exc)) from exc
        notes = []
        if window.late_start_s > NOTE_THRESHOLD_S:
            notes.append(f"starts {window.late_start_s:.1f} s after the requested start")
        if window.truncated_by_s > NOTE_THRESHOLD_S:
            notes.append(f"ends {window.truncated_by_s:.1f} s before the requested end")
        return Footage(
            kind=ItemKind.CLIP,
            data=data,
            media_type="video/mp4",
            camera_id=camera_id,
            platform_id=platform,
            captured_at=wall_time(window.packets[0].received_at),
            stream_time_s=facts.first_pts_s,
            codec=facts.codec,
            width=facts.width,
            height=facts.height,
            duration_s=round(facts.duration_s, 3),
            frames=facts.frames,
            note="; ".join(notes) or None,
        )
