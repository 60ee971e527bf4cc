"""At start, make the index and the recording files agree again after whatever ended the
last run (a crash, a kill -9, a power cut, a retention pass cut in two).

- A segment row left open: its file is cut back to its last whole fragment (media
  salvage) and the row closed with what is there, reason RECOVERED; a file with no whole
  fragment (or none at all) is removed with its row. The time from the salvaged end to now
  becomes a gap: nothing recorded it.
- Gaps left open (the node stopped, or crashed, during one) end now.
- A file laid out like a segment (``{camera}/{stream}/{date}/{time}-{id}.mp4``) that no row
  knows is set aside under ``.unindexed/`` in the root, never deleted, with a warning:
  retention removes rows before files, so it may be one retention was removing when the
  node died, but it may as well be footage whose row someone deleted (the chain check
  reports that row) or a file put there by hand. Either way it is not the node's to
  destroy. Anything else under the root (not laid out like a segment) is not touched.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from surveillance.media.recording_file import salvage
from surveillance.recordings.layout import UNINDEXED_DIR, laid_out_like_a_segment
from surveillance.recordings.store import RecordingStore
from surveillance.services.camera_recorder import close_with_facts

log = logging.getLogger(__name__)

RECOVERED = "recovered after a restart"
GAP_NOT_RUNNING = "the node was not running"
SEGMENT_SUFFIX = ".mp4"


@dataclass(frozen=True)
class ReconcileReport:
    recovered: int  # open segments salvaged and closed
    discarded: int  # open segments with nothing usable, removed
    gaps_ended: int
    set_aside: int  # files laid out like segments that no row knows (see the docstring)


def reconcile(
    store: RecordingStore, root: Path, holds: Callable[[str], bool] | None = None
) -> ReconcileReport:
    """Blocking (files, database): run it in a worker thread. ``holds`` (cluster mode):
    only the cameras this node holds are its to reconcile; the others' open segments and
    gaps are being written by their nodes now."""
    now = time.time()
    recovered = discarded = 0
    for record in store.open_segments():
        if holds is not None and not holds(record.camera_id):
            continue
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
        close_with_facts(store, record.id, end_at, facts, RECOVERED)
        store.add_gap(record.camera_id, record.stream, end_at, GAP_NOT_RUNNING)
        recovered += 1
        log.info("recording %s recovered: %.1f s after a restart", record.path, facts.duration_s)
    gaps_ended = store.end_open_gaps(now, cameras=holds)
    return ReconcileReport(recovered, discarded, gaps_ended, _set_aside_unindexed(store, root))


def _set_aside_unindexed(store: RecordingStore, root: Path) -> int:
    moved = 0
    if not root.is_dir():
        return 0
    for camera_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        known = store.segment_paths(camera_dir.name)  # one column, open and closed
        for path in sorted(camera_dir.rglob(f"*{SEGMENT_SUFFIX}")):
            relative = path.relative_to(root).as_posix()
            if relative in known or not laid_out_like_a_segment(relative):
                continue
            if path.is_symlink() or not path.is_file():
                continue
            aside = root / UNINDEXED_DIR / relative
            try:
                aside.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                path.rename(aside)
            except OSError as error:
                log.warning("recording file %s is in no index row: %s", relative, error.strerror)
                continue
            moved += 1
            log.warning(
                "recording file %s is in no index row: set aside as %s/%s (retention was "
                "removing it when the node stopped, or its row was deleted)",
                relative, UNINDEXED_DIR, relative,
            )  # fmt: skip
    return moved
