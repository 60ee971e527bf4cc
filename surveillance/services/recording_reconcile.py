"""At start, make the index and the recording files agree again after whatever ended the
last run (a crash, a kill -9, a power cut, a retention pass cut in two).

- A segment row left open: its file is cut back to its last whole fragment (media
  salvage) and the row closed with what is there, reason RECOVERED; a file with no whole
  fragment (or none at all) is removed with its row. The time from the salvaged end to now
  becomes a gap: nothing recorded it.
- Gaps left open (the node stopped, or crashed, during one) end now.
- A file with no row is removed, with a log line: retention removes rows before files, so
  such a file is one retention was removing, or one whose row was never written.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from surveillance.media.recording_file import salvage
from surveillance.recordings.store import RecordingStore

log = logging.getLogger(__name__)

RECOVERED = "recovered after a restart"
GAP_NOT_RUNNING = "the node was not running"
SEGMENT_SUFFIX = ".mp4"


@dataclass(frozen=True)
class ReconcileReport:
    recovered: int  # open segments salvaged and closed
    discarded: int  # open segments with nothing usable, removed
    gaps_ended: int
    orphans_removed: int


def reconcile(store: RecordingStore, root: Path) -> ReconcileReport:
    """Blocking (files, database): run it in a worker thread."""
    now = time.time()
    recovered = discarded = 0
    for record in store.open_segments():
        path = root / record.path
        facts = salvage(path) if path.is_file() else None
        if facts is None or not facts.frames:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            store.discard_segment(record.id)
            discarded += 1
            log.warning("recording %s had no whole fragment after a restart: removed", path)
            continue
        end_at = record.start_at + facts.duration_s
        store.close_segment(
            record.id,
            end_at=end_at,
            bytes=facts.bytes,
            sha256=facts.sha256,
            frames=facts.frames,
            init_bytes=facts.init_bytes,
            keyframes=facts.keyframes,
            reason=RECOVERED,
        )
        store.add_gap(record.camera_id, record.stream, end_at, GAP_NOT_RUNNING)
        recovered += 1
        log.info("recording %s recovered: %.1f s after a restart", record.path, facts.duration_s)
    gaps_ended = store.end_open_gaps(now)
    return ReconcileReport(recovered, discarded, gaps_ended, _remove_orphans(store, root))


def _remove_orphans(store: RecordingStore, root: Path) -> int:
    removed = 0
    if not root.is_dir():
        return 0
    for camera_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        known = store.segment_paths(camera_dir.name)  # one column, open and closed
        for path in sorted(camera_dir.rglob(f"*{SEGMENT_SUFFIX}")):
            relative = path.relative_to(root).as_posix()
            if relative in known or not path.is_file():
                continue
            log.warning("recording file %s has no index row: removed", relative)
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
    return removed
