"""Camera health changes, pushed to whoever follows them (the page's event stream).

Changes happen on ingest threads (a packet after a stall, a failed attempt) and on the
monitor; each stream tells this fan-out through a listener that only hands the camera's id
to the event loop (``call_soon_threadsafe``, as ``Stream._wake_waiters`` does), so an
ingest thread never waits on a follower. On the loop, changes are coalesced per camera: a
camera is published at most once per ``EVENT_MIN_INTERVAL_S``, and a change inside that
window schedules one more publication at its end, so a burst becomes a few events and the
last state is never lost. A publication carries only the camera's id: each follower reads
the camera's health when it sends, as its own user may see it (scope, URLs).
"""

from __future__ import annotations

import asyncio
import contextlib

from surveillance.services.feeds import Feed, Feeds
from surveillance.services.ingest import IngestService

EVENT_MIN_INTERVAL_S = 0.25  # at most one event per camera this often


class HealthEvents:
    def __init__(
        self,
        ingest: IngestService,
        per_user: int,
        min_interval_s: float = EVENT_MIN_INTERVAL_S,
    ) -> None:
        self._feeds: Feeds[str] = Feeds(per_user, "camera event streams")
        self._min_interval_s = min_interval_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._published_at: dict[str, float] = {}  # loop time of each camera's last event
        self._scheduled: set[str] = set()  # cameras with a publication pending
        # Every stream's, those of cameras added while the node runs too.
        ingest.add_health_listener(self._from_any_thread)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    def stop(self) -> None:
        self._loop = None

    # -- followers ------------------------------------------------------------------------
    def subscribe(self, user_id: int) -> Feed[str]:
        """A new follower for ``user_id``; TooManyEventStreams past the user's limit."""
        return self._feeds.subscribe(user_id)

    def unsubscribe(self, subscription: Feed[str]) -> None:
        self._feeds.unsubscribe(subscription)

    def refresh_followers(self, user_id: int | None = None) -> None:
        """The followers of ``user_id`` (None: all) look their credential up now
        (services/session_revocation.py). The loop only."""
        self._feeds.refresh(user_id)

    def __len__(self) -> int:
        return len(self._feeds)

    # -- changes --------------------------------------------------------------------------
    def _from_any_thread(self, camera_id: str) -> None:
        """The stream's health listener: any thread; hands over and returns at once."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in between
            loop.call_soon_threadsafe(self._changed, camera_id)

    def _changed(self, camera_id: str) -> None:
        loop = self._loop
        if loop is None or camera_id in self._scheduled:
            return  # the pending publication will read the newest state
        last = self._published_at.get(camera_id)
        delay = 0.0 if last is None else max(0.0, last + self._min_interval_s - loop.time())
        self._scheduled.add(camera_id)
        loop.call_later(delay, self._publish, camera_id)

    def _publish(self, camera_id: str) -> None:
        self._scheduled.discard(camera_id)
        if self._loop is None:
            return
        self._published_at[camera_id] = self._loop.time()
        self._feeds.push(camera_id)
