"""What a camera's recording is doing, as health, metrics and the API show it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RecordingState(StrEnum):
    RECORDING = "recording"  # a segment is open and growing
    OFF = "off"  # the camera's policy says so, or the camera is disabled
    DISK_FULL = "disk-full"  # no space (or below min_free_bytes): retrying by itself
    ERROR = "error"  # cannot write (a read-only directory, say): retrying by itself
    WAITING = "waiting"  # the camera is not delivering, or its first keyframe is awaited


@dataclass(frozen=True)
class RecordingStatus:
    state: RecordingState
    stream: str | None  # "main" | "sub" being recorded; None when off
    detail: str | None  # why, in words an operator understands
    since: float  # epoch s of the last change of state
    segment_started_at: float | None  # epoch s of the open segment's start
