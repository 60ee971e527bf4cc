"""Which reads of an item's bytes are new: once per reader, item and kind in a window.

Every read of an item's bytes is a custody fact, whatever part of them it asks for: a
request for ``Range: bytes=1-`` returns (nearly) the whole item. But a video player reads
one item in many range requests while it plays and seeks; a custody entry for each would
bury the log. So each reader (a session, or an API token) gets one ``view`` or
``download`` entry per item in a window, counted from the read that was logged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

READ_LOG_WINDOW_S = 60.0  # a minute of playing and seeking is one logged view
MAX_REMEMBERED_READS = 10_000  # beyond this, the oldest are forgotten (and logged again)

ReadKey = tuple[str, str, int, str]  # reader, case number, item id, action


class RecentReads:
    """Thread-safe memory of the reads logged lately (one process; a restart forgets them,
    so the first read after it is logged again, which errs on the side of the log)."""

    def __init__(
        self,
        window_s: float = READ_LOG_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window_s = window_s
        self._clock = clock
        self._logged: dict[ReadKey, float] = {}
        self._lock = threading.Lock()

    def claim(self, key: ReadKey) -> bool:
        """True if this read must be logged (and it now counts as logged), False if the
        same reader's read of the same item was logged within the window."""
        now = self._clock()
        with self._lock:
            self._forget_before(now - self._window_s)
            if key in self._logged:
                return False
            if len(self._logged) >= MAX_REMEMBERED_READS:
                del self._logged[next(iter(self._logged))]
            self._logged[key] = now
            return True

    def release(self, key: ReadKey) -> None:
        """Forget a claim whose entry could not be written, so the next read tries again."""
        with self._lock:
            self._logged.pop(key, None)

    def _forget_before(self, moment: float) -> None:
        # Insertion order is time order: drop from the front until a recent one.
        while self._logged:
            key, at = next(iter(self._logged.items()))
            if at >= moment:
                return
            del self._logged[key]
