"""This node's place among the cluster's nodes: its row in ``cluster_nodes``, kept fresh.

At start the node joins (a live row of another process with the same node id refuses it:
NodeIdTaken, the node does not start). Every ``renew_s`` it moves its heartbeat with its
load (cameras held, viewers, streams, CPU) and reads every node's row; the others' liveness
is judged by the database's clock (``age_s``), never by comparing machines' clocks. A
heartbeat that finds the row taken by another incarnation means another process now runs
under this id: the listeners are told (the node lets go of every camera at once). A clean
stop leaves (``stopped_at``), so the others take its cameras without waiting for a lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from surveillance.cluster.records import NodeRecord
from surveillance.cluster.store import ClusterStore
from surveillance.config.models import ClusterConfig

log = logging.getLogger(__name__)

DB_ERROR_LOG_EVERY_S = 30.0  # a database down for long is said again this often, not every beat


def _required(value: str | None, what: str) -> str:
    if not value:
        raise ValueError(f"cluster mode needs cluster.{what}")  # the loader checks it first
    return value


class Membership:
    def __init__(
        self, store: ClusterStore, config: ClusterConfig, load: Callable[[], dict[str, float]]
    ) -> None:
        """``load()``: this node's figures for the others (cameras, viewers, streams), read
        on the event loop at every heartbeat; the CPU share is added here."""
        self.store = store
        self.config = config
        self.node_id = _required(config.node_id, "node_id")
        self.url = _required(config.url, "url").rstrip("/")
        self.incarnation = uuid.uuid4().hex  # this process, as opposed to a restarted one
        self._load = load
        self._nodes: dict[str, NodeRecord] = {}
        # node id -> monotonic time since which it has been seen live without a break
        self._live_since: dict[str, float] = {}
        self._read_at: float | None = None  # monotonic time of the last good read
        self._lost_listeners: list[Callable[[], None]] = []
        self._lost = False
        self._task: asyncio.Task[None] | None = None
        self._cpu_mark = (time.monotonic(), time.process_time())
        self._error_logged_at = -DB_ERROR_LOG_EVERY_S

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Join; NodeIdTaken (the node must not start) when a live process has this id."""
        record = await asyncio.to_thread(
            self.store.join,
            self.node_id,
            self.url,
            self.config.capacity,
            self.incarnation,
            self.config.lease_s,
        )
        log.info("cluster: joined as node %s (%s)", record.id, record.url)
        await asyncio.to_thread(self._read)
        self._task = asyncio.create_task(self._beat_forever(), name="cluster-heartbeat")

    async def stop_beating(self) -> None:
        """No heartbeat from now on: to the others this node dies lease_s later."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def stop(self) -> None:
        """Stop beating and leave: the others may take this node's cameras at once."""
        await self.stop_beating()
        if self._lost:
            return  # the row is another process's now
        try:
            await asyncio.to_thread(self.store.leave, self.node_id, self.incarnation)
        except SQLAlchemyError as error:
            # The others see the heartbeat age instead, one lease later.
            log.warning("cluster: could not leave cleanly: %s", type(error).__name__)

    def on_lost(self, listener: Callable[[], None]) -> None:
        """``listener()`` on the loop when another process took this node's id."""
        self._lost_listeners.append(listener)

    # -- reads ----------------------------------------------------------------------------
    @property
    def lost(self) -> bool:
        """Another process runs under this node's id: this one must hold nothing."""
        return self._lost

    def nodes(self) -> list[NodeRecord]:
        """Every node's row as last read (the stopped and silent ones too)."""
        return list(self._nodes.values())

    def live_nodes(self) -> list[NodeRecord]:
        """The nodes live at the last read: beating within lease_s, not stopped."""
        lease_s = self.config.lease_s
        return [n for n in self._nodes.values() if _live(n, lease_s)]

    def is_live(self, node_id: str) -> bool:
        node = self._nodes.get(node_id)
        return node is not None and _live(node, self.config.lease_s)

    def live_for_s(self, node_id: str) -> float:
        """How long the node has been live without a break (0 when it is not live): a node
        is settled, and may be handed cameras, after lease_s. A node that was silent past
        its lease (paused, cut off) starts again from 0 when it comes back, however long
        ago it started."""
        since = self._live_since.get(node_id)
        if since is None or not self.is_live(node_id):
            return 0.0
        return max(0.0, time.monotonic() - since)

    def node_url(self, node_id: str) -> str | None:
        node = self._nodes.get(node_id)
        return node.url if node is not None else None

    def read_age_s(self) -> float | None:
        """Seconds since the nodes were last read successfully (None: never)."""
        return None if self._read_at is None else time.monotonic() - self._read_at

    # -- inside ---------------------------------------------------------------------------
    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.renew_s)
            load = {**self._load(), "cpu": self._cpu_share()}
            try:
                ours = await asyncio.to_thread(
                    self.store.heartbeat, self.node_id, self.incarnation, load
                )
                await asyncio.to_thread(self._read)
            except SQLAlchemyError as error:
                self._db_failed(error)
                continue
            if not ours and not self._lost:
                self._lost = True
                log.critical(
                    "cluster: another process now runs as node %s; this one lets go of "
                    "every camera (two processes were started with the same node id?)",
                    self.node_id,
                )
                for listener in self._lost_listeners:
                    listener()

    def _read(self) -> None:
        nodes = {node.id: node for node in self.store.nodes()}
        now, lease_s = time.monotonic(), self.config.lease_s
        first = self._read_at is None
        # Reads more than a lease apart (this node cut off) may have missed another's
        # silence: every node's unbroken run starts again now.
        broken = not first and now - (self._read_at or now) >= lease_s
        live_since: dict[str, float] = {}
        for node_id, node in nodes.items():
            if not _live(node, lease_s):
                continue
            if first:
                # Nothing seen of it before: its run, by the database's clock.
                uptime = node.heartbeat_at + node.age_s - node.started_at
                live_since[node_id] = now - max(0.0, uptime)
            elif broken or node_id not in self._live_since:
                live_since[node_id] = now
            else:
                live_since[node_id] = self._live_since[node_id]
        self._nodes, self._live_since, self._read_at = nodes, live_since, now

    def _cpu_share(self) -> float:
        """The process's CPU time over the last interval, as a share of the whole machine."""
        now, cpu = time.monotonic(), time.process_time()
        wall0, cpu0 = self._cpu_mark
        self._cpu_mark = (now, cpu)
        elapsed = now - wall0
        if elapsed <= 0:
            return 0.0
        return round(min(1.0, (cpu - cpu0) / elapsed / (os.cpu_count() or 1)), 3)

    def _db_failed(self, error: SQLAlchemyError) -> None:
        now = time.monotonic()
        if now - self._error_logged_at >= DB_ERROR_LOG_EVERY_S:
            self._error_logged_at = now
            # The class name only: a driver's message may carry the connection string.
            log.warning("cluster: heartbeat failed (%s); retrying", type(error).__name__)


def _live(node: NodeRecord, lease_s: float) -> bool:
    return node.stopped_at is None and node.age_s < lease_s
