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

In cluster mode (``shared``) the root and the index are every node's: a starting node must
not close, remove or set aside what a live node is writing. So it leaves open segments and
unindexed files written to within :data:`SHARED_STALE_S` (a live writer adds a fragment
every ``fragment_s``), and leaves open gaps alone (the camera's owner ends its own gap when
its recording resumes). Given the cameras this node holds (its leases, taken before the
recorder starts), it reconciles those at once, whoever left them open, and no others.

A camera a node takes over from a dead one (services/recorder.py ``taken_over``) has the
dead node's open segment and gaps reconciled then, not when some node restarts: what is
open of it is read at the take-over (:func:`leftovers`, before this node reads the camera,
so none of it is this node's), and closed afterwards (:func:`reconcile_leftovers`, which
salvages files: too slow for the lease round, which must renew on time).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from surveillance.media.recording_file import salvage
from surveillance.recordings.layout import UNINDEXED_DIR, laid_out_like_a_segment
from surveillance.recordings.records import GapRecord, SegmentRecord
from surveillance.recordings.store import RecordingStore
from surveillance.services.camera_recorder import close_with_facts

log = logging.getLogger(__name__)

RECOVERED = "recovered after a restart"
GAP_NOT_RUNNING = "the node was not running"
SEGMENT_SUFFIX = ".mp4"
# Cluster mode: a segment file (or an open row without one) younger than this may be a
# live node's recording under way.
SHARED_STALE_S = 300.0


@dataclass(frozen=True)
class ReconcileReport:
    recovered: int  # open segments salvaged and closed
    discarded: int  # open segments with nothing usable, removed
    gaps_ended: int
    set_aside: int  # files laid out like segments that no row knows (see the docstring)


def reconcile(
    store: RecordingStore,
    root: Path,
    shared: bool = False,
    holds: Callable[[str], bool] | None = None,
) -> ReconcileReport:
    """Blocking (files, database): run it in a worker thread. ``shared``: cluster mode
    (see the module's docstring). ``holds``: the cameras this node holds now (cluster
    mode): theirs it reconciles whatever their age (nobody else may write them now), the
    others' it leaves to their owners."""
    now = time.time()
    recovered = discarded = 0
    for record in store.open_segments():
        path = root / record.path
        if holds is not None and not holds(record.camera_id):
            continue
        if shared and holds is None and _maybe_live(path, record.start_at, now):
            continue
        if _recover(store, root, record):
            recovered += 1
        else:
            discarded += 1
    if holds is not None:
        gaps_ended = store.end_open_gaps(now, cameras=holds)
    else:
        gaps_ended = 0 if shared else store.end_open_gaps(now)
    set_aside = _set_aside_unindexed(store, root, now if shared else None, holds)
    return ReconcileReport(recovered, discarded, gaps_ended, set_aside)


@dataclass(frozen=True)
class Leftovers:
    """What a dead node left open of cameras taken over from it."""

    segments: list[SegmentRecord]
    gaps: list[GapRecord]


def leftovers(store: RecordingStore, cameras: Collection[str]) -> Leftovers:
    """Read at the take-over (two queries), before this node records the cameras."""
    taken = frozenset(cameras)
    segments = [s for s in store.open_segments() if s.camera_id in taken]
    return Leftovers(segments, store.open_gaps(taken.__contains__))


def reconcile_leftovers(store: RecordingStore, root: Path, left: Leftovers) -> ReconcileReport:
    """Close what :func:`leftovers` read, as a start does (blocking: files, database);
    whatever this node has written for the cameras since is not in it."""
    now = time.time()
    recovered = sum(_recover(store, root, record, gap_end=now) for record in left.segments)
    for gap in left.gaps:
        store.end_gap(gap.id, now)  # (one its writer ended meanwhile stays as it is)
    return ReconcileReport(recovered, len(left.segments) - recovered, len(left.gaps), 0)


def _recover(
    store: RecordingStore, root: Path, record: SegmentRecord, gap_end: float | None = None
) -> bool:
    """Salvage and close an open segment left by a node that stopped (True), or remove
    it with its file when nothing whole is in it (False). The gap from its salvaged end
    ends at ``gap_end`` (None: left open, for the caller's end of every open gap)."""
    path = root / record.path
    facts = salvage(path) if path.is_file() else None
    if facts is None or not facts.frames:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        store.discard_segment(record.id)
        log.warning("recording %s had no whole fragment after a restart: removed", path)
        return False
    end_at = record.start_at + facts.duration_s
    close_with_facts(store, record.id, end_at, facts, RECOVERED)
    gap_id = store.add_gap(record.camera_id, record.stream, end_at, GAP_NOT_RUNNING)
    if gap_end is not None:
        store.end_gap(gap_id, gap_end)
    log.info("recording %s recovered: %.1f s after a restart", record.path, facts.duration_s)
    return True


def _maybe_live(path: Path, start_at: float, now: float) -> bool:
    """Whether another node may be writing this segment (its file, or its row without a
    file yet, is younger than :data:`SHARED_STALE_S`)."""
    try:
        return now - path.stat().st_mtime < SHARED_STALE_S
    except FileNotFoundError:
        return now - start_at < SHARED_STALE_S
    except OSError:
        return True  # unreadable now: not this node's to judge


def _set_aside_unindexed(
    store: RecordingStore,
    root: Path,
    shared_now: float | None,
    holds: Callable[[str], bool] | None,
) -> int:
    """Set aside the unindexed files of every camera directory, or with ``holds`` only of
    the cameras this node holds: another node's file whose row is not in the index yet, or
    whose row that node's retention is removing, is that node's to judge."""
    moved = 0
    if not root.is_dir():
        return 0
    for camera_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        if holds is not None and not holds(camera_dir.name):
            continue  # (".unindexed" itself is no camera this node holds)
        known = store.segment_paths(camera_dir.name)  # one column, open and closed
        for path in sorted(camera_dir.rglob(f"*{SEGMENT_SUFFIX}")):
            relative = path.relative_to(root).as_posix()
            if relative in known or not laid_out_like_a_segment(relative):
                continue
            if path.is_symlink() or not path.is_file():
                continue
            if shared_now is not None and _maybe_live(path, shared_now, shared_now):
                continue  # a live node's new segment, its row not read yet
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
