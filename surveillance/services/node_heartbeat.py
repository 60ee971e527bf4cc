"""The node's own up-time as an event: what the availability report calls monitored time.

One ``node.running`` INFO event per run of the node: raised at start, raised again every
``HEARTBEAT_S`` (which moves its ``last_seen_at``), ended at a clean stop. A node that
crashed never ends it; the next start ends it at its last heartbeat (the event bus ends
every event a stopped node left active that way; this module checks again for its own
event, since its next raise would otherwise extend the old run over the outage).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from surveillance.db.outage_log import OutageLog
from surveillance.errors import SurveillanceError
from surveillance.events.records import (
    EventFilter,
    EventPage,
    EventRecord,
    EventSpec,
    EventType,
    Severity,
)

log = logging.getLogger(__name__)

HEARTBEAT_S = 60.0  # how often last_seen_at moves: the most a crash can overstate up-time
NODE_RUNNING_KEY = "node.running"  # one node per database: one key
NODES_LOOKED_AT = 200  # active node.running events read at start (one per cluster node)


def node_running_key(node_id: str | None) -> str:
    """The key of a node's up-time event: one per database, or one per node in cluster
    mode (each node's runs are its own)."""
    return NODE_RUNNING_KEY if node_id is None else f"{NODE_RUNNING_KEY}:{node_id}"


class HeartbeatBus(Protocol):
    def raise_event(self, spec: EventSpec) -> EventRecord: ...
    def end_event(self, key: str, at: float | None = None) -> EventRecord | None: ...
    def search(self, query: EventFilter) -> EventPage: ...


class NodeHeartbeat:
    def __init__(
        self, bus: HeartbeatBus, interval_s: float = HEARTBEAT_S, *, node_id: str | None = None
    ) -> None:
        """``node_id``: cluster mode's, in the event's key."""
        self._bus = bus
        self._interval_s = interval_s
        self._key = node_running_key(node_id)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """After the bus has started (it ends a crashed run's events first)."""
        await asyncio.to_thread(self._end_previous_run)
        await asyncio.to_thread(self._beat)
        self._task = asyncio.create_task(self._run(), name="node-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            await asyncio.to_thread(self._bus.end_event, self._key)

    def _end_previous_run(self) -> None:
        query = EventFilter(types=[EventType.NODE_RUNNING], active=True, limit=NODES_LOOKED_AT)
        for stale in self._bus.search(query).events:
            # One node: whatever key a run left; many: this node's own only.
            if self._key == NODE_RUNNING_KEY or stale.key == self._key:
                self._bus.end_event(stale.key, at=stale.last_seen_at)

    def _beat(self) -> None:
        self._bus.raise_event(
            EventSpec(
                type=EventType.NODE_RUNNING,
                severity=Severity.INFO,
                key=self._key,
                summary=f"node {socket.gethostname()} running",
            )
        )

    async def _run(self) -> None:
        outage = OutageLog(log, "the node's up-time event")
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await asyncio.to_thread(self._beat)
                outage.worked()
            except SQLAlchemyError as error:
                # An unreachable database misses beats; the next one may land. The report
                # then undercounts monitored time by at most one interval past the outage.
                outage.failed(error)
            except SurveillanceError:  # a full or locked database: the next one may land
                log.exception("node heartbeat not recorded")
