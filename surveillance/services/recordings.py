"""Recorded footage as people and cases ask for it: spans and gaps, export, a frame at a
moment, playback windows, and holds that keep a window from retention.

Over three parts built elsewhere: the index (:class:`~surveillance.recordings.store.
RecordingStore`, closed segments, gaps, holds), the recorder (the segment being written,
whose whole fragments are readable already, and each camera's recording state) and the
reader (:mod:`surveillance.media.recording_read`, which remuxes, never re-encodes).
Every method here blocks (the database, the files, PyAV): async callers run them in a
worker thread.

A window is checked once (:mod:`.footage_times`) and then against the footage: a window
that ends before a camera's oldest footage is "outside retention", named as such, rather
than an empty answer that looks like a gap.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surveillance.auth.audit import AuditAction, AuditEntry, AuditLog
from surveillance.catalog import Catalog
from surveillance.config.models import RecordingConfig
from surveillance.errors import CameraNotFound, Conflict, InvalidRequest, NotFound
from surveillance.media.recording_read import (
    ExportFacts,
    PlaybackWindow,
    SegmentRef,
    export_mp4,
    frame_at,
    playback_fmp4,
)
from surveillance.recordings.records import GapRecord, HoldRecord
from surveillance.recordings.store import RecordingStore
from surveillance.services.footage_times import Window, iso, not_future, window
from surveillance.services.recorder import RecorderService, RecordingStatus

TOUCH_S = 1.5  # segments of one stream this close (end to start) are one span
PLAY_DEFAULT_S = 30.0  # a playback window without an end
PLAY_MAX_S = 120.0  # the longest playback window one request returns (it is held in memory)
STREAMS = ("main", "sub")


class NothingRecorded(Conflict):
    """The camera exists and the window is allowed, but no footage of it was recorded."""

    def __init__(self, camera_id: str, start: float, end: float) -> None:
        super().__init__(
            f"camera {camera_id!r} has no recorded footage from {iso(start)} to {iso(end)}"
        )


class HoldNotFound(NotFound):
    def __init__(self, number: str, hold_id: int) -> None:
        super().__init__(f"case {number} has no hold {hold_id}")


class HoldReleased(Conflict):
    def __init__(self, number: str, hold_id: int) -> None:
        super().__init__(f"hold {hold_id} of case {number} is released already")


@dataclass(frozen=True)
class Span:
    start: float
    end: float
    stream: str


@dataclass(frozen=True)
class Gap:
    start: float
    end: float | None
    reason: str
    removed_at: float | None = None  # recorded, then removed at this moment (the newest)


@dataclass(frozen=True)
class Listing:
    camera_id: str
    start: float
    end: float
    spans: list[Span]
    gaps: list[Gap]
    recording: RecordingStatus | None


@dataclass(frozen=True)
class Frame:
    jpeg: bytes
    width: int
    height: int
    at: float  # the frame's own epoch time


def merge_spans(pieces: Iterable[Span], touch_s: float = TOUCH_S) -> list[Span]:
    """Pieces of footage (segments) as spans: those of one stream whose ends touch (at
    most ``touch_s`` apart) become one, so a timeline draws a day, not 1,440 segments."""
    merged: list[Span] = []
    last: dict[str, int] = {}  # stream -> index in merged of its newest span
    for piece in sorted(pieces, key=lambda p: p.start):
        index = last.get(piece.stream)
        if index is not None and piece.start - merged[index].end <= touch_s:
            current = merged[index]
            merged[index] = Span(current.start, max(current.end, piece.end), piece.stream)
            continue
        last[piece.stream] = len(merged)
        merged.append(piece)
    return merged


class RecordingsService:
    def __init__(
        self,
        store: RecordingStore,
        recorder: RecorderService,
        catalog: Catalog,
        config: RecordingConfig,
        audit: AuditLog,
    ) -> None:
        self._store = store
        self._recorder = recorder
        self._catalog = catalog
        self._config = config
        self._audit = audit

    @property
    def max_export_s(self) -> float:
        return float(self._config.max_export_s)

    def status(self, camera_id: str) -> RecordingStatus:
        return self._recorder.status(camera_id)

    # -- windows ---------------------------------------------------------------------------
    def checked(
        self,
        camera_id: str,
        start: float,
        end: float,
        *,
        max_s: tuple[float, str] | None = None,
        names: tuple[str, str] = ("start", "end"),
        future_end_allowed: bool = False,
    ) -> Window:
        """The window checked for what it asks (:func:`.footage_times.window`) and against
        the camera's footage: 422 when it ends before the oldest footage kept. ``max_s``:
        the longest window and what sets it, when not recording.max_export_s."""
        self._camera(camera_id)
        limit, limit_name = max_s or (self.max_export_s, "recording.max_export_s")
        checked = window(
            start,
            end,
            now=time.time(),
            max_s=limit,
            names=names,
            future_end_allowed=future_end_allowed,
            limit=limit_name,
        )
        self._inside_retention(camera_id, checked.end, names[1])
        return checked

    def listing_window(self, camera_id: str, start: float, end: float, max_s: float) -> Window:
        """A timeline's window: it may reach ahead (today until midnight), which is cut
        at now, and before the oldest footage (it shows as nothing recorded)."""
        self._camera(camera_id)
        now = time.time()
        checked = window(
            start,
            end,
            now=now,
            max_s=max_s,
            names=("from", "to"),
            future_end_allowed=True,
            limit=f"a listing covers at most {max_s / 86400:.0f} days",
        )
        return Window(checked.start, min(checked.end, max(now, checked.start + 1e-3)))

    def checked_moment(self, camera_id: str, at: float, name: str = "at") -> float:
        self._camera(camera_id)
        not_future(name, at, time.time())
        self._inside_retention(camera_id, at, name)
        return at

    def _inside_retention(self, camera_id: str, end: float, name: str) -> None:
        oldest = self._oldest(camera_id)
        if oldest is not None and end < oldest:
            raise InvalidRequest(
                f"`{name}` lies outside retention: the oldest footage of camera "
                f"{camera_id!r} starts at {iso(oldest)}"
            )

    def _oldest(self, camera_id: str) -> float | None:
        """Where the camera's footage starts: its oldest closed segment, else the one being
        written; None for a camera never recorded (the live ring answers for it)."""
        closed = self._store.oldest_segments(1, camera_id=camera_id)
        if closed:
            return closed[0].start_at
        return self._recorder.status(camera_id).segment_started_at

    def _camera(self, camera_id: str) -> None:
        if self._catalog.camera(camera_id) is None:
            raise CameraNotFound(camera_id)

    # -- reading ---------------------------------------------------------------------------
    def listing(self, camera_id: str, span: Window, stream: str | None) -> Listing:
        """Recorded spans (the segment being written included, up to its last whole
        fragment) and gaps with reasons. The index merges the closed segments (reading
        three columns, not records: a month answers fast); the open one joins them here."""
        self._camera(camera_id)
        pieces = [
            Span(s.start_at, s.end_at, s.stream)
            for s in self._store.spans(camera_id, stream, span.start, span.end)
        ]
        status = self._recorder.status(camera_id)
        growing = status.stream if stream is None else stream
        if growing is not None and status.segment_started_at is not None:
            since = max(span.start, status.segment_started_at)
            pieces += [
                Span(r.start_at, r.end_at, growing)
                for r in self._recorder.refs(camera_id, growing, since, span.end)
                if r.duration_s > 0
            ]
        gaps = self._store.gaps(camera_id, stream, span.start, span.end)
        return Listing(
            camera_id=camera_id,
            start=span.start,
            end=span.end,
            spans=[_clamped(s, span) for s in merge_spans(pieces)],
            gaps=[_gap(g) for g in gaps],
            recording=status,
        )

    def refs(self, camera_id: str, start: float, end: float) -> list[SegmentRef]:
        """The readable segments of the window, of the stream holding most of it (a
        policy may have moved from main to sub; one output holds one stream)."""
        seconds = dict.fromkeys(STREAMS, 0.0)
        for s in self._store.spans(camera_id, None, start, end):
            seconds[s.stream] += max(0.0, min(s.end_at, end) - max(s.start_at, start))
        busiest = max(seconds, key=lambda name: seconds[name])
        stream = busiest if seconds[busiest] > 0 else self._recorder.status(camera_id).stream
        return self._recorder.refs(camera_id, stream or "main", start, end)

    def covers(self, camera_id: str, start: float, end: float) -> bool:
        """Whether any footage of the window was recorded."""
        return bool(self.refs(camera_id, start, end))

    def export(self, camera_id: str, span: Window, out: Path) -> ExportFacts:
        """The window as one MP4 at ``out``; NothingRecorded for an empty window."""
        refs = self._refs_or_nothing(camera_id, span)
        return export_mp4(refs, span.start, span.end, out)

    def export_bytes(
        self, camera_id: str, span: Window, scratch: Path
    ) -> tuple[bytes, ExportFacts]:
        """The window's MP4 in memory (for the evidence store, which takes bytes), written
        first to ``scratch``, a file the caller owns and removes."""
        facts = self.export(camera_id, span, scratch)
        return scratch.read_bytes(), facts

    def frame(self, camera_id: str, at: float) -> Frame:
        refs = self._refs_or_nothing(camera_id, Window(at - self.max_gop_s(), at + 1e-3))
        jpeg, width, height, frame_time = frame_at(refs, at)
        return Frame(jpeg, width, height, frame_time)

    def max_gop_s(self) -> float:
        # The keyframe before a moment lies in its segment or the one before; a segment
        # runs segment_s plus at most one GOP.
        return float(self._config.segment_s) * 2

    def playback(self, camera_id: str, span: Window) -> PlaybackWindow:
        refs = self._refs_or_nothing(camera_id, span)
        return playback_fmp4(refs, span.start, span.end)

    def _refs_or_nothing(self, camera_id: str, span: Window) -> Sequence[SegmentRef]:
        refs = self.refs(camera_id, span.start, span.end)
        if not refs:
            raise NothingRecorded(camera_id, span.start, span.end)
        return refs

    # -- holds (the routes audit placing and releasing; archiving audits here) -------------
    def hold(self, number: str, camera_id: str, span: Window, user: str) -> HoldRecord:
        return self._store.add_hold(number, camera_id, span.start, span.end, user)

    def holds(self, number: str) -> list[HoldRecord]:
        return self._store.holds(active=False, case_number=number)

    def hold_of(self, number: str, hold_id: int) -> HoldRecord:
        for held in self.holds(number):
            if held.id == hold_id:
                return held
        raise HoldNotFound(number, hold_id)

    def release(self, number: str, hold_id: int, user: str) -> HoldRecord:
        self.hold_of(number, hold_id)  # of this case
        released = self._store.release_hold(hold_id, user)
        if released is None:
            raise HoldReleased(number, hold_id)
        return released

    def release_case(self, number: str, user: str) -> None:
        """Every active hold of the case let go: the case was archived (the case service's
        archive hook; no request to audit it, so it is audited here)."""
        for released in self._store.release_holds(number, user):
            entry = AuditEntry(
                user=user,
                action=AuditAction.RECORDINGS_RELEASE,
                camera_id=released.camera_id,
                detail=hold_detail(released) | {"archived": True},
            )
            self._audit.record(entry)


def hold_detail(hold: HoldRecord) -> dict[str, Any]:
    """What the audit log keeps of a hold."""
    return {
        "case": hold.case_number,
        "hold": hold.id,
        "start": iso(hold.start_at),
        "end": iso(hold.end_at),
    }


def _clamped(span: Span, within: Window) -> Span:
    return Span(max(span.start, within.start), min(span.end, within.end), span.stream)


def _gap(record: GapRecord) -> Gap:
    """A gap as people read it: a removed window says when it was removed, so the timeline
    tells footage that was deleted from footage never recorded."""
    reason = record.reason
    if record.removed_at is not None:
        reason = f"{reason} at {iso(record.removed_at)}"
    return Gap(record.start_at, record.end_at, reason, record.removed_at)
