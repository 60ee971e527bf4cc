"""How much recorded-footage work the node runs at once, and where its scratch files go.

An MP4 export is written whole to a file before it is sent (the reader seeks back to put
the index in front), so each running export holds up to ``recording.max_export_s`` of
footage on disk. Without a cap, a few parallel requests of one operator (or a script with
a token) fill a file system that ``recording.min_free_bytes`` does not watch. So: at most
``limits.exports_per_user`` per user and ``limits.exports`` on the node (429 and
Retry-After beyond, like mosaics and transcodes), and the files in the node's own data
directory (``<server.data_dir>/tmp``, 0700), not in the system temp directory (often a
small tmpfs, shared with everything else). Not inside ``recording.dir``: the recorder
takes every directory there for a camera.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from surveillance.errors import TooBusy

SCRATCH_DIR = "tmp"  # in server.data_dir
SCRATCH_MODE = 0o700  # exports are footage: only the service's user reads them


class TooManyExports(TooBusy):
    """The user, or the node, runs as many exports of recorded footage as allowed."""


class ExportSlot:
    """One running export: an empty file of its own in the scratch directory, and its place
    in the counts; :meth:`release` (idempotent) removes the file and frees the place."""

    def __init__(self, budget: ExportBudget, user: str, path: Path) -> None:
        self._budget = budget
        self.user = user
        self.path = path
        self._released = False

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        self.path.unlink(missing_ok=True)
        self._budget._free(self.user)

    def __enter__(self) -> ExportSlot:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()


class ExportBudget:
    def __init__(self, scratch: Path, per_user: int, total: int) -> None:
        self.scratch = scratch
        self._per_user = per_user
        self._total = total
        self._running: Counter[str] = Counter()
        self._lock = threading.Lock()  # sync routes claim from the thread pool

    def prepare(self) -> None:
        """Make the scratch directory (0700) and empty it: what is there is left over from a
        node that stopped mid-export."""
        self.scratch.mkdir(mode=SCRATCH_MODE, parents=True, exist_ok=True)
        if self.scratch.stat().st_mode & 0o777 != SCRATCH_MODE:
            self.scratch.chmod(SCRATCH_MODE)
        for entry in self.scratch.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def claim(self, user: str) -> ExportSlot:
        """A place for one export of ``user``; TooManyExports when the user or the node
        runs as many as allowed."""
        with self._lock:
            if sum(self._running.values()) >= self._total:
                raise TooManyExports(
                    f"this node runs {_exports(self._total)} of recorded footage at most; try later"
                )
            if self._running[user] >= self._per_user:
                raise TooManyExports(
                    f"you may run {_exports(self._per_user)} of recorded footage at once; "
                    "wait for one to finish"
                )
            self._running[user] += 1
        try:
            return ExportSlot(self, user, self._new_file())
        except BaseException:
            self._free(user)
            raise

    @contextmanager
    def scratch_file(self) -> Iterator[Path]:
        """A file of its own in the scratch directory, removed afterwards, for work bounded
        elsewhere (case clips: the clip workers of services/evidence.py)."""
        path = self._new_file()
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def running(self, user: str | None = None) -> int:
        with self._lock:
            return sum(self._running.values()) if user is None else self._running[user]

    def _new_file(self) -> Path:
        handle, name = tempfile.mkstemp(prefix="export-", suffix=".mp4", dir=self.scratch)
        os.close(handle)
        return Path(name)

    def _free(self, user: str) -> None:
        with self._lock:
            self._running[user] -= 1
            if self._running[user] <= 0:
                del self._running[user]


def _exports(count: int) -> str:
    return f"{count} export" if count == 1 else f"{count} exports"
