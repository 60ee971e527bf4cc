"""Ending at once the live views and event streams whose access was just revoked.

Open live views (services/live_sessions.py) and event streams (api/sse.py) re-check their
credential every ``LIVE_RECHECK_S``. When the node itself revokes access (sign-out, a
token revoked, a user disabled, removed, or given another role, scope or password;
``AuthStore.on_access_changed``), that is known at once: the views and streams of that
session, token or user re-check now instead of at their next turn. In cluster mode the
change is also sent to the other nodes (NOTIFY ``surveillance_sessions``: ``{"user": id}``,
``{"session": hash, "user": id}`` or ``{"token": id}``), whose views and streams of the
same credential re-check at once too. A re-check reads the database as a new request would,
so a notification can only make a view re-check sooner, never end one that may go on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

from surveillance.auth.store import AccessChange
from surveillance.services.cluster_notify import SESSIONS_CHANNEL, Notifier
from surveillance.services.live_sessions import LiveView, LiveViews

MAX_ID_CHARS = 128  # a session hash or token id longer than this in a notification is junk


class Followers(Protocol):
    """Event streams of one kind (EventBus, HealthEvents)."""

    def refresh_followers(self, user_id: int | None = None) -> None: ...


def concerns(change: AccessChange, view: LiveView) -> bool:
    """Whether the view was opened with the credential (or by the user) the change names."""
    if change.session_hash is not None:
        return view.credential == ("session", change.session_hash)
    if change.token_id is not None:
        return view.credential == ("token", change.token_id)
    return view.principal.user.id == change.user_id


def to_payload(change: AccessChange) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if change.user_id is not None:
        payload["user"] = change.user_id
    if change.session_hash is not None:
        payload["session"] = change.session_hash
    if change.token_id is not None:
        payload["token"] = change.token_id
    return payload


def from_payload(payload: dict[str, Any]) -> AccessChange | None:
    """None for a payload that names nothing readable (dropped)."""
    user, session, token = payload.get("user"), payload.get("session"), payload.get("token")
    if not (user is None or (isinstance(user, int) and not isinstance(user, bool))):
        return None
    for text in (session, token):
        if text is not None and not (isinstance(text, str) and 0 < len(text) <= MAX_ID_CHARS):
            return None
    if user is None and session is None and token is None:
        return None
    return AccessChange(user_id=user, session_hash=session, token_id=token)


class SessionRevocations:
    def __init__(
        self, live_views: LiveViews, followers: Sequence[Followers], notifier: Notifier | None
    ) -> None:
        self._live_views = live_views
        self._followers = followers
        self._notifier = notifier
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        if notifier is not None:
            notifier.on(SESSIONS_CHANNEL, self._notified)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    def stop(self) -> None:
        self._loop = None
        for task in self._tasks:
            task.cancel()

    def changed(self, change: AccessChange) -> None:
        """``AuthStore.on_access_changed``'s listener: any thread, after the commit."""
        if self._notifier is not None:
            self._notifier.notify(SESSIONS_CHANNEL, to_payload(change))
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in between
            loop.call_soon_threadsafe(self.apply, change)

    def _notified(self, payload: dict[str, Any]) -> None:
        change = from_payload(payload)
        if change is None:
            if self._notifier is not None:
                self._notifier.refused(SESSIONS_CHANNEL)
            return
        self.apply(change)

    def apply(self, change: AccessChange) -> None:
        """Re-check now what the change concerns (the loop)."""
        for followers in self._followers:
            followers.refresh_followers(change.user_id)
        task = asyncio.get_running_loop().create_task(
            self._live_views.recheck_now(only=lambda view: concerns(change, view)),
            name="live-recheck-revoked",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
