"""Footage for cases: snapshots and clips from the packet ring, or from the recordings
when the ring does not reach back to the moment asked for.

Implements :class:`~surveillance.cases.footage.FootageSource`, so the case layer gets
bytes and facts without knowing about streams or PyAV. Clip remuxing runs in a thread:
it is short (remux only) but blocking.

A clip comes from the ring when the ring holds the window's start (the newest footage,
delivered as it arrives), else from the recordings (:mod:`.recordings`), if any footage of
the window was recorded; if neither has it, the ring's answer stands (the camera's state,
or "no packets"). A recorded clip's facts are the export's: ``captured_at`` is its first
frame's wall time, and its note says when it is shorter than asked.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Protocol

from surveillance.cases.errors import FootageUnavailable
from surveillance.cases.footage import Footage, ItemKind
from surveillance.catalog import Catalog
from surveillance.errors import CameraNotFound, SurveillanceError
from surveillance.media.clip import ClipError, collect_window, remux_mp4
from surveillance.services.export_budget import ExportBudget
from surveillance.services.footage_times import Window
from surveillance.services.ingest import IngestService
from surveillance.services.recordings import RecordingsService
from surveillance.services.snapshots import SnapshotMode, SnapshotService

CLIP_GRACE_S = 3.0  # how long past the window's end a clip waits for a late packet
CLIP_WORKERS = 4  # clips being collected or remuxed at once; more wait their turn
NOTE_THRESHOLD_S = 0.5  # a clip this much shorter than asked says so in its note
# A recorded clip that ends ahead waits this long past its end: the segment being written
# is readable a whole fragment at a time (recording.fragment_s, 1 s by default).
RECORDED_LAG_S = 2.0


def wall_time(monotonic_time: float) -> datetime:
    return datetime.fromtimestamp(time.time() - (time.monotonic() - monotonic_time), UTC)


class LiveFootage:
    def __init__(
        self,
        catalog: Catalog,
        ingest: IngestService,
        snapshots: SnapshotService,
        recorded: RecordingsService | None = None,
        budget: ExportBudget | None = None,
    ) -> None:
        self._catalog = catalog
        self._ingest = ingest
        self._snapshots = snapshots
        self._recorded = recorded
        self._budget = budget  # where a recorded clip's MP4 is written before it is read
        self._executor = ThreadPoolExecutor(CLIP_WORKERS, thread_name_prefix="clip")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _platform(self, camera_id: str) -> str:
        camera = self._catalog.camera(camera_id)
        if camera is None:
            raise CameraNotFound(camera_id)
        return camera.platform_id

    async def snapshot(self, camera_id: str, at: datetime | None = None) -> Footage:
        platform = self._platform(camera_id)
        if at is not None:
            return await self._recorded_snapshot(camera_id, platform, at)
        shot = await self._snapshots.snapshot(camera_id, mode=SnapshotMode.LATEST)
        return picture_footage(
            camera_id, platform, shot.jpeg, shot.captured_at, shot.width, shot.height
        )

    async def _recorded_snapshot(self, camera_id: str, platform: str, at: datetime) -> Footage:
        if self._recorded is None:
            raise FootageUnavailable(camera_id, "this node records no footage")
        frame = await asyncio.to_thread(self._recorded.frame, camera_id, at.timestamp())
        return picture_footage(
            camera_id, platform, frame.jpeg, frame.at, frame.width, frame.height,
            note="from the recording",
        )  # fmt: skip

    async def clip(
        self, camera_id: str, at: datetime | None, pre_s: float, post_s: float
    ) -> Footage:
        platform = self._platform(camera_id)
        wall = time.time() if at is None else at.timestamp()
        asked = Window(wall - pre_s, wall + post_s)
        if await asyncio.to_thread(self._from_recordings, camera_id, asked):
            return await self._recorded_clip(camera_id, platform, asked)
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
        return clip_footage(
            camera_id, platform, data, wall_time(window.packets[0].received_at),
            facts.first_pts_s, facts, "; ".join(notes) or None,
        )  # fmt: skip

    def _from_recordings(self, camera_id: str, asked: Window) -> bool:
        """Whether the clip comes from the recordings: the ring does not hold the window's
        start (its oldest keyframe is later, or it is empty), and something of the window
        was recorded (blocking)."""
        if self._recorded is None or self.ring_holds(camera_id, asked.start):
            return False
        return self._recorded.covers(camera_id, asked.start, asked.end)

    def ring_holds(self, camera_id: str, at: float) -> bool:
        """Whether the camera's ring still reaches back to ``at`` (wall seconds; blocking)."""
        try:
            packets = self._ingest.stream(camera_id).ring.since(0.0)  # from its oldest keyframe
        except SurveillanceError:
            return False  # a camera the ingest does not read
        return bool(packets) and wall_time(packets[0].received_at).timestamp() <= at

    async def _recorded_clip(self, camera_id: str, platform: str, asked: Window) -> Footage:
        recorded = self._recorded
        assert recorded is not None  # _from_recordings said so
        wait = asked.end + RECORDED_LAG_S - time.time()
        if wait > 0:
            await asyncio.sleep(wait)  # the post-event seconds, written a fragment at a time
        loop = asyncio.get_running_loop()
        # Not counted against limits.exports: the clip workers bound these already.
        assert self._budget is not None  # given with `recorded` (api/node.py)
        with self._budget.scratch_file() as scratch:
            data, facts = await loop.run_in_executor(
                self._executor, recorded.export_bytes, camera_id, asked, scratch
            )
        # The export's note says when it starts late or ends early, and why.
        note = "from the recording" + (f"; {facts.note}" if facts.note else "")
        captured_at = datetime.fromtimestamp(facts.first_at, UTC)
        return clip_footage(camera_id, platform, data, captured_at, None, facts, note)


def picture_footage(
    camera_id: str,
    platform: str,
    jpeg: bytes,
    captured_at: float,
    width: int,
    height: int,
    note: str | None = None,
) -> Footage:
    """A still picture as evidence: live or recorded, ``captured_at`` its own moment."""
    return Footage(
        kind=ItemKind.SNAPSHOT,
        data=jpeg,
        media_type="image/jpeg",
        camera_id=camera_id,
        platform_id=platform,
        captured_at=datetime.fromtimestamp(captured_at, UTC),
        stream_time_s=None,
        codec="jpeg",
        width=width,
        height=height,
        duration_s=None,
        frames=1,
        note=note,
    )


class _ClipFacts(Protocol):
    """What a clip's muxing tells, from the ring (ClipFacts) or the recordings
    (ExportFacts) alike."""

    @property
    def codec(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def frames(self) -> int: ...
    @property
    def duration_s(self) -> float: ...


def clip_footage(
    camera_id: str,
    platform: str,
    data: bytes,
    captured_at: datetime,
    stream_time_s: float | None,
    facts: _ClipFacts,
    note: str | None,
) -> Footage:
    """A clip as evidence, from the live ring or the recordings."""
    return Footage(
        kind=ItemKind.CLIP,
        data=data,
        media_type="video/mp4",
        camera_id=camera_id,
        platform_id=platform,
        captured_at=captured_at,
        stream_time_s=stream_time_s,
        codec=facts.codec,
        width=facts.width,
        height=facts.height,
        duration_s=round(facts.duration_s, 3),
        frames=facts.frames,
        note=note,
    )
