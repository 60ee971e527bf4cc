"""What leaves the recording store: plain frozen records, never rows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property

# The longest a segment may last, open to close. The recorder closes a segment at the first
# keyframe after ``recording.segment_s`` (at most 600 s) and, without a keyframe, at this
# length; a time-range query looks back this far for a segment that started before the
# range and runs into it, so the index answers from a bounded slice of (camera, stream,
# start_at) instead of every older row.
MAX_SEGMENT_S = 3600.0


@dataclass(frozen=True)
class SegmentRecord:
    id: int
    camera_id: str
    stream: str  # "main" | "sub"
    path: str  # relative to the recordings root
    start_at: float  # epoch s of media time 0
    end_at: float | None  # epoch s where the last whole fragment ends; None while open
    bytes: int  # 0 while open
    sha256: str | None  # None while open
    chain_seq: int | None  # position in its (camera, stream) chain; None while open
    prev_link: str | None
    link: str | None
    codec: str
    width: int
    height: int
    frames: int
    init_bytes: int
    # The index's JSON text, read into ``keyframes`` when asked: most readers (timeline,
    # retention, verify) never look at it, and parsing it is half the cost of a record.
    keyframes_json: str = field(repr=False)
    closed_reason: str | None

    @property
    def closed(self) -> bool:
        return self.end_at is not None

    @cached_property
    def keyframes(self) -> tuple[tuple[float, int], ...]:
        """(media time s, byte offset of the moof that starts with that keyframe)."""
        return tuple((float(t), int(offset)) for t, offset in json.loads(self.keyframes_json))


@dataclass(frozen=True)
class Span:
    """Footage of one stream without a break: closed segments whose ends touch, merged."""

    stream: str
    start_at: float
    end_at: float


@dataclass(frozen=True)
class GapRecord:
    id: int
    camera_id: str
    stream: str
    start_at: float
    end_at: float | None  # None while the gap goes on
    reason: str
    # When its footage was removed (the newest removal in the window); None: never recorded.
    removed_at: float | None = None


@dataclass(frozen=True)
class HoldRecord:
    id: int
    case_number: str
    camera_id: str
    start_at: float
    end_at: float
    created_by: str
    created_at: float
    released_at: float | None  # None while the hold is active
    released_by: str | None

    def covers(self, start_at: float, end_at: float) -> bool:
        """Whether footage from ``start_at`` to ``end_at`` overlaps the held window."""
        return start_at < self.end_at and end_at > self.start_at


@dataclass(frozen=True)
class ChainAnchor:
    """Where a (camera, stream) chain starts and ends now (see :mod:`.tables`)."""

    camera_id: str
    stream: str
    head_seq: int
    head_link: str
    tail_seq: int
    tail_link: str
    stored_segments: int
    stored_bytes: int
    removed_segments: int
    removed_bytes: int
    removed_through: float | None


@dataclass(frozen=True)
class RemovalRecord:
    """A segment retention removed behind one still kept: the fields of its link."""

    camera_id: str
    stream: str
    chain_seq: int
    segment_id: int
    path: str
    start_at: float
    end_at: float
    bytes: int
    sha256: str
    prev_link: str
    link: str
    removed_at: float
    reason: str
