"""Evidence files that no item owns, and how none is left behind.

An attach stores the bytes first and records the item after, checking the case again (see
:mod:`.service`). If recording fails (the case was closed while a clip waited, the
database is full, the process dies), the stored file belongs to no case. Content
addressing complicates removing it: another attach of the very same bytes (two snapshots
of one still picture) may be using the file at that moment. So every attach holds a claim
on its digest from before it stores until its row is committed or refused, and a refused
attach removes the file only if no other claim is held and no item owns it. What a crash
leaves, the node sets aside at start (:func:`set_aside_unowned`, before any attach can
run), and ``surveillance verify`` reports.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from surveillance.cases.storage import EvidenceStore

log = logging.getLogger(__name__)


class AttachClaims:
    """Digests of the attaches between storing their bytes and recording their item."""

    def __init__(self) -> None:
        self._claims: Counter[str] = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def claim(self, sha256: str) -> Iterator[None]:
        with self._lock:
            self._claims[sha256] += 1
        try:
            yield
        finally:
            with self._lock:
                self._claims[sha256] -= 1
                if not self._claims[sha256]:
                    del self._claims[sha256]

    def discard_if_unowned(
        self, sha256: str, evidence: EvidenceStore, owned: Callable[[str], bool]
    ) -> bool:
        """Remove the file of a refused attach (still holding its claim) unless another
        attach claims it too or an item owns it; whether it was removed."""
        with self._lock:
            if self._claims[sha256] > 1 or owned(sha256):
                return False
            evidence.discard(sha256)
            return True


def set_aside_unowned(evidence: EvidenceStore, owned: set[str]) -> list[str]:
    """Move every stored file that no item owns, and everything else in the store that is
    not an item file (stray, misplaced or hidden files, directories), out of the store,
    and remove symlinks (the link, never its target), at start, before any attach; what
    was done with each."""
    moved = []
    for stray in evidence.strays():
        moved.append(evidence.set_aside_stray(stray))
        log.warning(
            "%s in the evidence store is not an item file (%s): %s",
            stray.path,
            stray.kind,
            moved[-1],
        )
    for sha256 in list(evidence.hashes()):
        # An unsettled file may be another node's attach between its file and its row.
        if sha256 not in owned and evidence.settled(sha256):
            moved.append(evidence.set_aside(sha256))
            log.warning(
                "evidence file %s is owned by no item (left by a refused or interrupted "
                "attach): moved out of the store to %s",
                sha256,
                moved[-1],
            )
    return moved
