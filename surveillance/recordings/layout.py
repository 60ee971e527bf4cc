"""Where a segment file lives under the recordings root.

``{camera_id}/{stream}/{YYYY-MM-DD}/{HHMMSS}.{mmm}-{segment_id}.mp4``, date and time of
its start in UTC. Camera ids match the config's identifier pattern (lower-case letters,
digits, '.', '_', '-'), so they are safe path parts. The segment's id is only known once
its row exists: :meth:`~.store.RecordingStore.open_segment` takes the path with
:data:`SEGMENT_ID_PLACEHOLDER` and stores it with the id filled in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import PurePosixPath

SEGMENT_ID_PLACEHOLDER = "{segment_id}"


def segment_path(camera_id: str, stream: str, start_at: float, segment_id: int | str) -> str:
    """The path relative to the root; ``segment_id`` may be :data:`SEGMENT_ID_PLACEHOLDER`."""
    start = datetime.fromtimestamp(start_at, UTC)
    name = f"{start:%H%M%S}.{start.microsecond // 1000:03d}-{segment_id}.mp4"
    return f"{camera_id}/{stream}/{start:%Y-%m-%d}/{name}"


def check_relative(path: str) -> str:
    """``path`` if it stays inside the root (relative, no '..'); ValueError otherwise."""
    parts = PurePosixPath(path)
    if parts.is_absolute() or ".." in parts.parts or "\\" in path or not parts.parts:
        raise ValueError(f"segment path {path!r} must be relative and stay inside the root")
    return path
