"""Where a segment file lives under the recordings root.

``{camera_id}/{stream}/{YYYY-MM-DD}/{HHMMSS}.{mmm}-{segment_id}.mp4``, date and time of
its start in UTC. Camera ids match the config's identifier pattern (lower-case letters,
digits, '.', '_', '-'), so they are safe path parts. The segment's id is only known once
its row exists: :meth:`~.store.RecordingStore.open_segment` takes the path with
:data:`SEGMENT_ID_PLACEHOLDER` and stores it with the id filled in.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import PurePosixPath

SEGMENT_ID_PLACEHOLDER = "{segment_id}"
# Where the node sets aside files laid out like segments that no index row knows (the
# reconcile at start): under the root, and never a camera id (those never start with '.').
UNINDEXED_DIR = ".unindexed"
# segment_path's layout, as a pattern over a path relative to the root.
_SEGMENT_LAYOUT = re.compile(
    r"[a-z0-9][a-z0-9._-]{0,63}/(main|sub)/\d{4}-\d{2}-\d{2}/\d{6}\.\d{3}-\d+\.mp4"
)


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


def laid_out_like_a_segment(relative: str) -> bool:
    """Whether a path relative to the root has the form :func:`segment_path` gives."""
    return _SEGMENT_LAYOUT.fullmatch(relative) is not None
