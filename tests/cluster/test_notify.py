"""Notifications between nodes over a real PostgreSQL: the Notifier itself (delivery, own
notifications ignored, malformed ones dropped, payload size, a database restart with its
resync), then two real nodes (Node.build, started on one loop, sharing one database): an
event raised on A reaches B's event-stream followers, and a session signed out on A ends a
live view and an event stream on B at once, long before their periodic re-check."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from surveillance.api import sse
from surveillance.api.node import Node
from surveillance.auth.roles import Permission, Role
from surveillance.config.models import AppConfig
from surveillance.events.records import EventSpec, EventType, Severity
from surveillance.local_postgres import LocalPostgres
from surveillance.services.cluster_notify import (
    EVENTS_CHANNEL,
    MAX_PAYLOAD_BYTES,
    SESSIONS_CHANNEL,
    Notifier,
    PayloadTooLarge,
    libpq_conninfo,
    split_payloads,
)
from surveillance.services.live_sessions import ACCESS_ENDED, ViewKind
from tests.own_postgres import own_postgres
from tests.waits import eventually

__all__ = ["own_postgres"]  # the fixture

pytestmark = pytest.mark.postgresql
WAIT_S = 30.0  # generous: a loaded two-core machine
NEVER_S = 3600.0  # a periodic re-check that cannot be what ended a view


class Inbox:
    def __init__(self, notifier: Notifier, *channels: str) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.resyncs = 0
        for channel in channels:
            notifier.on(channel, functools.partial(self._received, channel))
        notifier.on_resync(self._resynced)

    def _received(self, channel: str, payload: dict[str, Any]) -> None:
        self.received.append((channel, payload))

    def _resynced(self) -> None:
        self.resyncs += 1

    def on(self, channel: str) -> list[dict[str, Any]]:
        return [payload for c, payload in self.received if c == channel]


async def test_notifier_delivers_splits_and_survives_a_restart(
    own_postgres: LocalPostgres,
) -> None:
    url = own_postgres.new_database()
    a, b = Notifier(url, "node-a"), Notifier(url, "node-b")
    inbox_a, inbox_b = Inbox(a, EVENTS_CHANNEL), Inbox(b, EVENTS_CHANNEL, SESSIONS_CHANNEL)
    await a.start()
    await b.start()
    try:
        await eventually(lambda: a.listening.is_set() and b.listening.is_set(), "listening")
        # The first connection resyncs too: what was sent before it listened is lost.
        await eventually(lambda: inbox_b.resyncs == 1, "b's first resync")

        a.notify(EVENTS_CHANNEL, {"id": 7})
        b.notify(SESSIONS_CHANNEL, {"user": 3})
        got = await eventually(lambda: inbox_b.on(EVENTS_CHANNEL), "a's event at b")
        assert got == [{"id": 7, "node": "node-a"}]
        # a hears nothing of its own, and nobody listens to sessions on a.
        await eventually(lambda: b.connections and not a.dropped, "sent")
        assert inbox_a.on(EVENTS_CHANNEL) == []

        # Anyone with access to the database may NOTIFY: junk is dropped, never a crash.
        with psycopg.connect(libpq_conninfo(url), autocommit=True) as raw:
            for junk in ("not json", "[1, 2]", '{"id": 1}', '{"node": 5}'):
                raw.execute("SELECT pg_notify(%s, %s)", (EVENTS_CHANNEL, junk))
            raw.execute("SELECT pg_notify(%s, %s)", (EVENTS_CHANNEL, '{"node": "x", "id": 8}'))
        await eventually(lambda: len(inbox_b.on(EVENTS_CHANNEL)) == 2, "the good one after junk")
        assert inbox_b.on(EVENTS_CHANNEL)[1] == {"node": "x", "id": 8}

        # Too big: refused, clearly; split, every item arrives.
        with pytest.raises(PayloadTooLarge, match=r"must stay under 7900 bytes"):
            a.notify(EVENTS_CHANNEL, {"ids": list(range(2000))})
        cameras = {f"camera-{i:04d}": {"state": "online", "why": "x" * 40} for i in range(400)}
        payloads = split_payloads({}, "statuses", cameras)
        assert len(payloads) > 1
        for payload in payloads:
            a.notify(EVENTS_CHANNEL, payload)

        def arrived() -> dict[str, Any]:
            parts = [p["statuses"] for p in inbox_b.on(EVENTS_CHANNEL) if "statuses" in p]
            return {camera: status for part in parts for camera, status in part.items()}

        await eventually(lambda: arrived() == cameras, "every split part")
        with pytest.raises(PayloadTooLarge):
            split_payloads({}, "cameras", ["x" * MAX_PAYLOAD_BYTES])

        # A restart cuts both listeners; they come back by themselves and resync.
        await asyncio.to_thread(own_postgres.restart)
        await eventually(lambda: b.connections >= 2 and b.listening.is_set(), "b listens again")
        await eventually(lambda: inbox_b.resyncs >= 2, "b resyncs after the restart")
        await eventually(lambda: a.connections >= 2 and a.listening.is_set(), "a listens again")
        before = len(inbox_b.on(EVENTS_CHANNEL))
        a.notify(EVENTS_CHANNEL, {"id": 9})  # the sender reconnects too
        await eventually(
            lambda: {"id": 9, "node": "node-a"} in inbox_b.on(EVENTS_CHANNEL)[before:],
            "a notification after the restart",
        )
    finally:
        await a.stop()
        await b.stop()
    assert not a.listening.is_set() and not b.listening.is_set()


def node_config(url: str, root: Path, node_id: str, port: int) -> AppConfig:
    cluster = {"enabled": True, "node_id": node_id, "url": f"http://127.0.0.1:{port}",
               "shared_dir": str(root / "shared")}  # fmt: skip
    return AppConfig.model_validate(
        {
            "server": {"data_dir": str(root / node_id)},
            "database": {"url": url},
            "cluster": cluster,
            "events": {"diagnosis": {"enabled": False}},
        }
    )


@pytest.fixture
async def two_nodes(postgres: LocalPostgres, tmp_path: Path) -> AsyncIterator[tuple[Node, Node]]:
    url = postgres.new_database()
    a = Node.build(node_config(url, tmp_path, "a", 8080))
    b = Node.build(node_config(url, tmp_path, "b", 8081))
    # Long periodic re-checks: whatever ends a view or stream below is the notification.
    b.live_views.recheck_s = NEVER_S
    await a.start()
    await b.start()
    try:
        assert a.notifier is not None and b.notifier is not None
        await eventually(
            lambda: a.notifier.listening.is_set() and b.notifier.listening.is_set(),  # type: ignore[union-attr]
            "both nodes listen",
        )
        yield a, b
    finally:
        await b.stop()
        await a.stop()


async def test_an_event_raised_on_a_reaches_the_followers_on_b(
    two_nodes: tuple[Node, Node],
) -> None:
    a, b = two_nodes
    follower = b.events.subscribe(user_id=1)
    spec = EventSpec(EventType.DEVICE_ALARM, Severity.ALARM, "device.alarm:door", "door forced")
    raised = await asyncio.to_thread(a.events.raise_event, spec)
    changed = await follower.changes(WAIT_S)
    assert changed == {raised.id}
    assert b.events.get(raised.id).summary == "door forced"  # B reads it from the database
    # A change of state (acknowledged on A) follows the same way.
    await asyncio.to_thread(a.events.acknowledge, raised.id, "admin", "seen")
    assert await follower.changes(WAIT_S) == {raised.id}
    b.events.unsubscribe(follower)


async def test_a_session_signed_out_on_a_ends_views_and_streams_on_b_at_once(
    two_nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two_nodes
    monkeypatch.setattr(sse, "LIVE_RECHECK_S", NEVER_S)
    user = a.auth.add_user("watcher", Role.OPERATOR, "a long enough password 1")
    session = a.auth.create_session(user, "127.0.0.1")
    other = a.auth.create_session(user, "127.0.0.1")  # the same user's other session

    def recheck(secret: str) -> Callable[[], Any]:
        # What the route binds (guards.authenticate): B looks the cookie up in the database.
        return lambda: b.auth.session_principal(secret)

    principal = await asyncio.to_thread(recheck(session.secret))
    assert principal is not None
    ended: list[str] = []

    async def stop(reason: str) -> None:
        ended.append(reason)

    view = b.live_views.open(ViewKind.MSE, principal, recheck(session.secret), (), stop)
    kept = b.live_views.open(ViewKind.MSE, session_of(other), recheck(other.secret), (), stop)
    # An event stream on B, the real SSE loop of the API, opened with the same session.
    feed = b.events.subscribe(user.id)
    stream = sse.follow(feed, recheck(session.secret), principal, Permission.EVENTS_VIEW, Quiet())
    assert await anext(stream) == "event: snapshot\ndata: []\n\n"
    following = asyncio.create_task(anext(stream, "stream ended"))

    await asyncio.to_thread(a.auth.end_session, principal.session_hash)  # the sign-out route

    await eventually(lambda: ended == [ACCESS_ENDED], "the view on B ends")
    assert view.ended_because == ACCESS_ENDED
    assert await asyncio.wait_for(following, WAIT_S) == "stream ended"
    assert kept.ended_because is None and len(b.live_views) == 1  # the other session goes on
    b.events.unsubscribe(feed)

    # Disabling the user on A ends the rest of the user's views on B.
    await asyncio.to_thread(a.auth.update_user, "watcher", disabled=True)
    await eventually(lambda: len(ended) == 2, "the user's last view on B ends")
    assert kept.ended_because == ACCESS_ENDED


def session_of(session: Any) -> Any:
    return session.principal


class Quiet:
    """An event source with nothing to show: what ends the stream is the re-check."""

    async def view(self, principal: Any) -> int:
        return 0

    async def snapshot(self, principal: Any) -> tuple[str, int]:
        return "event: snapshot\ndata: []\n\n", 0

    async def changes(self, principal: Any, keys: set[int]) -> list[str]:
        return []
