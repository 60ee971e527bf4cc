"""Followers of a stream of changes (a page's Server-Sent Events), capped per user.

Shared by the camera health events (services/health_events.py) and the event bus
(services/event_bus.py): each change is a key (a camera id, an event id) pushed on the
event loop to every follower, who collects the keys changed since it last looked and reads
their newest state when it sends, as its own user may see it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Hashable
from typing import Generic, TypeVar

from surveillance.errors import TooBusy

K = TypeVar("K", bound=Hashable)


class TooManyEventStreams(TooBusy):
    """The user follows as many event streams as allowed."""


class Feed(Generic[K]):
    """One follower: the keys changed since it last looked. Used on the event loop only."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self._pending: set[K] = set()
        self._wake = asyncio.Event()
        self._refresh = False

    def push(self, key: K) -> None:
        self._pending.add(key)
        self._wake.set()

    def refresh(self) -> None:
        """Ask the follower to look its credential up now and send a fresh snapshot: a
        session was revoked, or changes were missed (cluster mode: services/cluster_notify.py)."""
        self._refresh = True
        self._wake.set()

    def take_refresh(self) -> bool:
        """Whether a refresh was asked for since the last call."""
        asked, self._refresh = self._refresh, False
        return asked

    async def changes(self, timeout_s: float) -> set[K]:
        """The keys changed since the last call, waiting up to ``timeout_s`` for one (then
        possibly none)."""
        if not self._pending and timeout_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout_s)
        self._wake.clear()
        changed, self._pending = self._pending, set()
        return changed


class Feeds(Generic[K]):
    """Every follower of one kind of change; at most ``per_user`` per user at once."""

    def __init__(self, per_user: int, what: str) -> None:
        self._per_user = per_user
        self._what = what  # "camera event streams": for the 429's text
        self._feeds: set[Feed[K]] = set()

    def subscribe(self, user_id: int) -> Feed[K]:
        """A new follower for ``user_id``; TooManyEventStreams past the user's limit."""
        open_now = Counter(f.user_id for f in self._feeds)[user_id]
        if open_now >= self._per_user:
            raise TooManyEventStreams(
                f"you may follow {self._per_user} {self._what} at once; close one first"
            )
        feed: Feed[K] = Feed(user_id)
        self._feeds.add(feed)
        return feed

    def unsubscribe(self, feed: Feed[K]) -> None:
        self._feeds.discard(feed)

    def push(self, key: K) -> None:
        for feed in self._feeds:
            feed.push(key)

    def refresh(self, user_id: int | None = None) -> None:
        """Every follower of ``user_id`` (None: every follower) refreshes (Feed.refresh)."""
        for feed in self._feeds:
            if user_id is None or feed.user_id == user_id:
                feed.refresh()

    def __len__(self) -> int:
        return len(self._feeds)
