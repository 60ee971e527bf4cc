"""The clips the node keeps of its alarms: one MP4 per event under a directory, with its facts.

An alarm on a camera that is not recorded has its footage only in the live ring, which
holds seconds; the case is often made minutes later. So the node keeps the clip around the
alarm's moment itself (services/alarm_clips.py) and the case takes it from here.

``<event id>.mp4`` is the clip, ``<event id>.json`` its facts (camera, first frame's wall
time, codec, size, duration). Both are written to temporary files, fsynced, and renamed,
the facts first and the clip last: the clip's name appearing is the commit, so a failed
or interrupted write leaves no clip (start-up removes temporary files and facts without
a clip). Files are 0600, the directory 0700: footage is as private as the evidence.

The shelf is bounded by a size cap: the oldest clips (lowest event ids) give way to a new
one. Which clips exist is kept in memory (read from the directory at start), so an event
list asks "has a clip?" without touching the disk. A kept clip is not evidence until a
case attaches it (the case store hashes and keeps its own copy).

On a directory shared by several nodes (cluster mode) another node may be writing at any
moment: start-up then removes only leftovers older than :data:`SHARED_STALE_S`, and "has a
clip?" looks at the disk for clips another node kept (the cap holds per node, over the
clips it knows of).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
TEMP_PREFIX = ".tmp-"
CLIP_SUFFIX = ".mp4"
FACTS_SUFFIX = ".json"
# On a shared directory, a temporary file or lone facts file younger than this may be
# another node's write under way (a clip is seconds of footage, written in well under this).
SHARED_STALE_S = 600.0


@dataclass(frozen=True)
class KeptClipFacts:
    camera_id: str
    platform_id: str
    captured_at: float  # wall time of the clip's first frame
    stream_time_s: float | None  # its time on the camera's media clock
    codec: str
    width: int
    height: int
    frames: int
    duration_s: float
    note: str | None  # how it differs from the window asked for, if it does


class ClipShelf:
    def __init__(self, root: Path, max_bytes: int, shared: bool = False) -> None:
        self.root = root
        self._max_bytes = max_bytes
        self._shared = shared
        self._lock = threading.Lock()
        self._sizes: dict[int, int] = {}  # event id -> bytes of its clip

    def prepare(self) -> None:
        """Create the directory, drop what an interrupted write left, learn what is kept."""
        self.root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        sizes: dict[int, int] = {}
        for entry in os.scandir(self.root):
            stem, _, suffix = entry.name.partition(".")
            if entry.name.startswith(TEMP_PREFIX) and self._stale(entry):
                _remove(Path(entry.path))
            elif stem.isdigit() and f".{suffix}" == CLIP_SUFFIX and entry.is_file():
                sizes[int(stem)] = entry.stat().st_size
        for entry in os.scandir(self.root):
            stem, _, suffix = entry.name.partition(".")
            lone = f".{suffix}" == FACTS_SUFFIX and stem.isdigit() and int(stem) not in sizes
            if lone and self._stale(entry):
                _remove(Path(entry.path))  # facts whose clip never landed
        with self._lock:
            self._sizes = sizes

    def _stale(self, entry: os.DirEntry[str]) -> bool:
        """Whether a leftover is surely no write under way (always, when only this
        process writes here)."""
        if not self._shared:
            return True
        try:
            return time.time() - entry.stat(follow_symlinks=False).st_mtime > SHARED_STALE_S
        except FileNotFoundError:
            return False  # gone already: its writer finished or removed it

    def has(self, event_id: int) -> bool:
        with self._lock:
            if event_id in self._sizes:
                return True
        # Another node may have kept it: only on a shared directory is the disk asked.
        return self._shared and self._paths(event_id)[0].is_file()

    def ids(self) -> list[int]:
        with self._lock:
            return sorted(self._sizes)

    def put(self, event_id: int, data: bytes, facts: KeptClipFacts) -> None:
        """Keep the event's clip (OSError when it cannot be written: then nothing of it is
        left); older clips give way while the shelf would exceed its cap."""
        if len(data) > self._max_bytes:
            raise OSError(f"the clip ({len(data)} bytes) is larger than the cap on kept clips")
        self._make_room(len(data))
        clip, facts_file = self._paths(event_id)
        temps = [self.root / f"{TEMP_PREFIX}{secrets.token_hex(8)}" for _ in range(2)]
        try:
            _write(temps[0], json.dumps(asdict(facts)).encode())
            _write(temps[1], data)
            os.replace(temps[0], facts_file)
            try:
                os.replace(temps[1], clip)  # the commit
            except OSError:
                _remove(facts_file)
                raise
            _fsync_dir(self.root)
        finally:
            for temp in temps:
                _remove(temp)
        with self._lock:
            self._sizes[event_id] = len(data)

    def read(self, event_id: int) -> tuple[bytes, KeptClipFacts] | None:
        """The clip and its facts; None when there is none (or it was removed meanwhile)."""
        clip, facts_file = self._paths(event_id)
        try:
            facts = KeptClipFacts(**json.loads(facts_file.read_bytes()))
            return clip.read_bytes(), facts
        except FileNotFoundError:
            return None

    def remove(self, event_id: int) -> None:
        with self._lock:
            self._sizes.pop(event_id, None)
        for path in self._paths(event_id):
            _remove(path)

    def keep_only(self, event_ids: Collection[int]) -> list[int]:
        """Remove the clips of events not in ``event_ids`` (retention removed them);
        the ids removed."""
        wanted = set(event_ids)
        gone = [i for i in self.ids() if i not in wanted]
        for event_id in gone:
            self.remove(event_id)
        return gone

    def _make_room(self, size: int) -> None:
        with self._lock:
            total = sum(self._sizes.values())
            oldest = sorted(self._sizes)
        while oldest and total + size > self._max_bytes:
            event_id = oldest.pop(0)
            with self._lock:
                total -= self._sizes.get(event_id, 0)
            self.remove(event_id)
            log.warning("event clips: the clip of event %d removed to stay under the cap", event_id)

    def _paths(self, event_id: int) -> tuple[Path, Path]:
        return self.root / f"{event_id}{CLIP_SUFFIX}", self.root / f"{event_id}{FACTS_SUFFIX}"


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        pass  # not ours: something else sits under the name


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
