"""Hostile notifications over a real PostgreSQL: any database user may NOTIFY anything on
our channels. JSON nested deep enough to raise RecursionError, and a payload a handler
cannot read, are dropped (counted, logged at most once a minute) and the listener keeps
listening on the same connection: a good notification still arrives after them. And should
the listening loop itself meet an unexpected exception, it reconnects and resyncs rather
than end its thread."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import pytest

from surveillance.services.cluster_notify import (
    CHANNELS,
    EVENTS_CHANNEL,
    HEALTH_CHANNEL,
    Notifier,
    libpq_conninfo,
)
from tests.cases.conftest import PostgresCluster
from tests.waits import eventually

pytestmark = pytest.mark.postgresql
DEEP = "[" * 5000  # json.loads: RecursionError, not ValueError
DEEP_OBJECT = '{"node": "x", "a": ' + "[" * 3000 + "]" * 3000 + "}"  # under 8000 bytes


class Crashing(Notifier):
    """A fake only for what no real part produces on demand: an unexpected exception
    inside the listening loop (a bug, a driver's surprise). It raises once, on a marker."""

    def _dispatch(self, channel: str, text: str) -> None:
        if "crash-the-loop" in text:
            raise RuntimeError("test: the listening loop meets a surprise")
        super()._dispatch(channel, text)


async def test_hostile_notifications_never_end_the_listener(
    postgres: PostgresCluster, caplog: pytest.LogCaptureFixture
) -> None:
    url = postgres.new_database()
    node = Crashing(url, "node-b")
    received: list[dict[str, Any]] = []
    resyncs: list[int] = []

    def reads_strictly(payload: dict[str, Any]) -> None:
        if "statuses" in payload:
            raise TypeError("test: a handler that cannot read what it got")
        received.append(payload)

    node.on(EVENTS_CHANNEL, received.append)
    node.on(HEALTH_CHANNEL, reads_strictly)
    node.on_resync(lambda: resyncs.append(1))
    caplog.set_level(logging.WARNING, "surveillance.services.cluster_notify")
    await node.start()
    try:
        await eventually(lambda: node.listening.is_set() and resyncs, "listening")
        with psycopg.connect(libpq_conninfo(url), autocommit=True) as raw:  # any user may
            for channel in CHANNELS:
                raw.execute("SELECT pg_notify(%s, %s)", (channel, DEEP))
                raw.execute("SELECT pg_notify(%s, %s)", (channel, DEEP_OBJECT))
            raw.execute("SELECT pg_notify(%s, %s)", (HEALTH_CHANNEL, '{"node":"x","statuses":1}'))
            raw.execute("SELECT pg_notify(%s, %s)", (EVENTS_CHANNEL, '{"node": "x", "id": 1}'))
        await eventually(lambda: received == [{"node": "x", "id": 1}], "the good one after")
        # Same connection: nothing had to reconnect; every hostile one was counted, the
        # flood logged once (with the handler's failure named, not its payload).
        assert node.connections == 1 and node.listening.is_set()
        # (sessions has no handler here: nothing to drop there)
        await eventually(lambda: node.malformed == 2 * 2 + 1, "all counted")
        dropped = [r for r in caplog.records if "malformed" in r.getMessage()]
        assert len(dropped) == 1, [r.getMessage() for r in dropped]
        assert "[[[" not in caplog.text

        # An exception the loop did not expect: it reconnects (and resyncs: what was sent
        # meanwhile is lost), and listens on.
        with psycopg.connect(libpq_conninfo(url), autocommit=True) as raw:
            raw.execute("SELECT pg_notify(%s, %s)", (EVENTS_CHANNEL, "crash-the-loop"))
        await eventually(lambda: node.connections == 2 and node.listening.is_set(), "back")
        await eventually(lambda: len(resyncs) == 2, "resynced after the surprise")
        with psycopg.connect(libpq_conninfo(url), autocommit=True) as raw:
            raw.execute("SELECT pg_notify(%s, %s)", (EVENTS_CHANNEL, '{"node": "x", "id": 2}'))
        await eventually(lambda: {"node": "x", "id": 2} in received, "heard after it")
        assert any("RuntimeError" in r.getMessage() for r in caplog.records)
    finally:
        await node.stop()
    assert not node.listening.is_set()
