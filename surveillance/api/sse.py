"""The one Server-Sent Events loop of the API: a snapshot, then changes, for as long as the
credential that opened it still allows it.

``GET /api/cameras/events`` (camera health) and ``GET /api/events/stream`` (events) differ
only in what they send (an :class:`EventSource`); the follower cap, the re-check of the
credential every ``LIVE_RECHECK_S``, the fresh snapshot when the user's view changes, the
keepalive and the clean-up when the client leaves are here, once.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Protocol, TypeVar

from fastapi.responses import StreamingResponse

from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.services.feeds import Feed
from surveillance.services.live_sessions import LIVE_RECHECK_S

KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from closing the stream
K = TypeVar("K", bound=Hashable)


class EventSource(Protocol[K]):
    """What one kind of stream sends ``principal``."""

    async def view(self, principal: Principal) -> Hashable:
        """What the principal sees now (e.g. which cameras); a change sends a new snapshot."""
        ...

    async def snapshot(self, principal: Principal) -> tuple[str, Hashable]:
        """The ``event: snapshot`` text and the view it was made for."""
        ...

    async def changes(self, principal: Principal, keys: set[K]) -> list[str]:
        """The event texts of the changed ``keys`` the principal may see."""
        ...


def event_stream_response(
    feed: Feed[K],
    unsubscribe: Callable[[Feed[K]], None],
    recheck: Callable[[], Principal | None],
    principal: Principal,
    permission: Permission,
    source: EventSource[K],
) -> StreamingResponse:
    """The streaming answer; ``feed`` is let go when it ends, however it ends."""

    async def stream() -> AsyncIterator[str]:
        try:
            async for chunk in follow(feed, recheck, principal, permission, source):
                yield chunk
        finally:
            unsubscribe(feed)

    body = stream()
    # A response that never starts (the client left first) never runs the finally above.
    weakref.finalize(body, unsubscribe, feed)
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def follow(
    feed: Feed[K],
    recheck: Callable[[], Principal | None],
    principal: Principal,
    permission: Permission,
    source: EventSource[K],
) -> AsyncIterator[str]:
    """The event stream's text. The credential is looked up again every LIVE_RECHECK_S,
    as live views are (services/live_sessions.py), and at once when the feed is asked to
    refresh (services/session_revocation.py): signed out, expired, revoked, disabled
    or no longer holding ``permission`` ends the stream; a change of scope changes what
    follows from the next look-up on, and sends a fresh snapshot: a change event can only
    add or update, so without it a page would keep showing what its user may no longer see."""
    snapshot, shown = await source.snapshot(principal)
    yield snapshot
    loop = asyncio.get_running_loop()
    next_recheck = loop.time() + LIVE_RECHECK_S
    next_keepalive = loop.time() + KEEPALIVE_S
    while True:
        changed = await feed.changes(min(next_recheck, next_keepalive) - loop.time())
        now = loop.time()
        # Asked for at once: a session or user changed, or (cluster) changes were missed.
        refresh = feed.take_refresh()
        if now >= next_recheck or refresh:
            current = await asyncio.to_thread(recheck)
            if (
                current is None
                or current.user.id != principal.user.id
                or not current.can(permission)
            ):
                return
            principal, next_recheck = current, now + LIVE_RECHECK_S
            if refresh or await source.view(principal) != shown:
                snapshot, shown = await source.snapshot(principal)
                yield snapshot
                changed = set()  # the snapshot holds their newest state
        for text in await source.changes(principal, changed) if changed else []:
            yield text
        if now >= next_keepalive:
            yield ": keepalive\n\n"
            next_keepalive = now + KEEPALIVE_S
