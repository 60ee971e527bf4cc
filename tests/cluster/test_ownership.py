"""Camera ownership in one process: three nodes' lease loops over a real PostgreSQL.

Each "node" is the real Membership, Ownership, IngestService (its workers reading the real
RTSP simulator) and EventBus on an engine of its own, so the three compete through the
database exactly as three processes would. A dead node is one whose heartbeat and lease
rounds are cancelled (its lease watchdog keeps running, as in a process cut off from the
database). The three-process tests (SIGKILL, SIGSTOP, a PostgreSQL restart) are in the
cluster harness's own modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine

from surveillance.auth.audit import AuditLog
from surveillance.catalog import Catalog
from surveillance.cluster.errors import LeaseLost, NodeIdTaken
from surveillance.cluster.records import LeaseToken
from surveillance.cluster.rendezvous import assign
from surveillance.cluster.store import ClusterStore
from surveillance.config.models import AppConfig
from surveillance.db import create_db_engine, upgrade
from surveillance.db.fence import Fence
from surveillance.events.records import EventFilter, EventSpec, EventType, Severity
from surveillance.events.store import EventStore
from surveillance.recordings.layout import SEGMENT_ID_PLACEHOLDER, segment_path
from surveillance.recordings.store import RecordingStore
from surveillance.services.camera_ownership import LEASE_LOST, Ownership
from surveillance.services.cluster_membership import Membership
from surveillance.services.event_bus import EventBus
from surveillance.services.ingest import IngestService
from surveillance.simulator import Simulator
from tests.cases.conftest import PostgresCluster

pytestmark = [pytest.mark.rtsp, pytest.mark.postgresql]

CAMERAS = [f"cam{i:02d}" for i in range(12)]
LEASE_S = 3.0  # the shortest the configuration allows: the test waits a few of them
RENEW_S = 0.5
SETTLE_WITHIN_S = 40.0  # generous: a loaded CI machine


def cluster_config(simulator: Simulator, url: str, shared: Path) -> AppConfig:
    return AppConfig.model_validate(
        {
            "database": {"url": url},
            "cluster": {
                "enabled": True,
                "node_id": "a",
                "url": "http://127.0.0.1:9",
                "lease_s": LEASE_S,
                "renew_s": RENEW_S,
                "shared_dir": str(shared),
            },
            "ingest": {"backoff_initial_s": 0.2, "backoff_max_s": 1, "ring_seconds": 2},
            "platforms": [{"id": "town", "name": "Town"}],
            "cameras": [
                {"id": c, "name": c, "platform": "town", "url": simulator.url(c)} for c in CAMERAS
            ],
        }
    )


@dataclass
class Peer:
    """One node's cluster parts, on an engine of its own."""

    node_id: str
    engine: Engine
    ingest: IngestService
    membership: Membership
    ownership: Ownership
    events: EventBus

    def running(self) -> set[str]:
        """Cameras with a worker thread alive here (one asked to stop counts until its
        thread has ended: it may still hold the camera's connection)."""
        return {
            slot.camera.id
            for slot in self.ingest._slots.values()  # the workers are what is checked
            if not slot.worker.join(0)
        }

    async def die(self) -> None:
        """No heartbeat, no lease rounds: to the others, a dead node."""
        await self.ownership.stop_renewing()
        await self.membership.stop_beating()

    async def stop(self) -> None:
        await self.ownership.stop()
        await self.ingest.stop()
        await self.membership.stop()
        self.engine.dispose()


async def start_peer(config: AppConfig, url: str, node_id: str, capacity: float = 1.0) -> Peer:
    cluster = config.cluster.model_copy(
        update={"node_id": node_id, "url": f"http://{node_id}.test:8080", "capacity": capacity}
    )
    engine = create_db_engine(url)
    catalog = Catalog.from_config(config)
    ingest = IngestService(catalog, config.ingest, lambda text: text)
    store = ClusterStore(engine)
    membership = Membership(store, cluster, lambda: {"cameras": 0.0})
    ownership = Ownership(store, membership, catalog, ingest, cluster)
    events = EventBus(EventStore(engine, node_id, ownership.fence), catalog, config.events,
                      AuditLog(engine))  # fmt: skip
    ownership.on_takeover = events.end_node_events
    ingest.set_ownership(ownership.holds, lambda camera_id, sub: None, ownership.owner)
    await membership.start()
    await ownership.start()  # before the ingest: nothing not held is ever connected
    await ingest.start()
    return Peer(node_id, engine, ingest, membership, ownership, events)


@dataclass
class Sampler:
    """Every camera's holders, sampled all along: never two at once."""

    peers: list[Peer]
    doubles: list[tuple[str, list[str]]]

    async def run(self) -> None:
        while True:
            for camera in CAMERAS:
                holders = [p.node_id for p in self.peers if p.ownership.holds(camera)]
                readers = [p.node_id for p in self.peers if camera in p.running()]
                if len(holders) > 1 or len(readers) > 1:
                    self.doubles.append((camera, holders + readers))
            await asyncio.sleep(0.05)


async def until(condition: Callable[[], object], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within_s:g} s")
        await asyncio.sleep(0.05)


def spread(peers: Sequence[Peer], nodes: Sequence[Peer]) -> bool:
    """Every camera held by the node rendezvous prefers among ``nodes``, and read there."""
    wanted = assign(CAMERAS, [(p.node_id, 1.0) for p in nodes])
    return all(
        p.ownership.held() == {c for c, n in wanted.items() if n == p.node_id}
        and p.running() == p.ownership.held()
        for p in peers
    )


def holders(peers: Sequence[Peer]) -> dict[str, str]:
    return {c: p.node_id for p in peers for c in p.ownership.held()}


@pytest.fixture
async def database(postgres: PostgresCluster) -> AsyncIterator[str]:
    url = postgres.new_database()
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url


def open_segment(engine: Engine, camera: str, fence: Fence | None) -> int:
    path = segment_path(camera, "main", time.time(), SEGMENT_ID_PLACEHOLDER)
    store = RecordingStore(engine, fence)
    return store.open_segment(camera, "main", path, time.time(), "h264", 320, 240)


def open_segments(engine: Engine, camera: str) -> int:
    return sum(1 for s in RecordingStore(engine).open_segments() if s.camera_id == camera)


def offline(camera: str) -> EventSpec:
    return EventSpec(
        type=EventType.CAMERA_OFFLINE, severity=Severity.WARNING,
        key=f"camera.offline:{camera}", summary=f"{camera} offline", camera_id=camera,
    )  # fmt: skip


async def test_cameras_spread_move_on_join_and_fail_over_with_fenced_writes(
    simulator: Simulator, database: str, tmp_path: Path
) -> None:
    config = cluster_config(simulator, database, tmp_path)
    peers: list[Peer] = []
    sampler = Sampler(peers, [])
    sampling = asyncio.create_task(sampler.run())
    try:
        a, b = await start_peer(config, database, "a"), await start_peer(config, database, "b")
        peers += [a, b]
        # B takes its share once it has been live a lease long (settled); A hands it over.
        await until(lambda: spread(peers, [a, b]), SETTLE_WITHIN_S, "cameras spread over a, b")
        before = holders(peers)

        # A node joining takes its rendezvous share, about 1/N; nothing moves between others.
        c = await start_peer(config, database, "c")
        peers.append(c)
        await until(lambda: spread(peers, [a, b, c]), SETTLE_WITHIN_S, "spread over a, b, c")
        after = holders(peers)
        moved = {cam for cam in CAMERAS if before[cam] != after[cam]}
        assert moved and moved == c.ownership.held()
        assert len(moved) < len(CAMERAS) / 2  # the 1/N share, not a reshuffle

        # A second process under a live node's id is refused.
        taken = Membership(ClusterStore(a.engine), c.membership.config, lambda: {})
        with pytest.raises(NodeIdTaken, match="'c'"):
            await taken.start()

        # C writes for one of its cameras under its lease: an event and a segment row.
        camera = sorted(c.ownership.held())[0]
        stale = c.ownership.token(camera)
        raised = await asyncio.to_thread(c.events.raise_event, offline(camera))
        await asyncio.to_thread(open_segment, c.engine, camera, c.ownership.fence)
        assert open_segments(c.engine, camera) == 1

        # C dies. Its watchdog stops its ingest at its local deadline, before the lease
        # ends in the database; from then on its fence refuses at once.
        await c.die()
        await until(lambda: not c.ownership.held() and not c.running(), LEASE_S + 5, "c stops")
        assert c.ingest.camera_health(camera).main.last_error == LEASE_LOST
        with pytest.raises(LeaseLost):
            c.ownership.token(camera)
        with pytest.raises(LeaseLost):
            await asyncio.to_thread(open_segment, c.engine, camera, c.ownership.fence)

        # The survivors take its cameras (lease expired, C not live) and end its events.
        await until(lambda: spread(peers, [a, b]), SETTLE_WITHIN_S, "c's cameras taken over")
        record = a.events.get(raised.id)
        assert record.ended_at is not None
        assert record.detail["ended_by"] == "node c stopped"

        # Writes under C's old token are refused by the database itself.
        def stale_fence(connection: Connection, camera_id: str) -> None:
            c.ownership.store.check_fence(connection, camera_id, stale)

        with pytest.raises(LeaseLost):
            await asyncio.to_thread(open_segment, c.engine, camera, stale_fence)
        assert open_segments(c.engine, camera) == 1  # no row from the refused write
        with pytest.raises(LeaseLost):
            EventStore(c.engine, "c", stale_fence).raise_event(offline(camera), time.time())
        active = a.events.search(EventFilter(camera_id=camera, active=True)).events
        assert all(e.id != raised.id for e in active)
        # The new holder's token is a new generation; the condition is its to raise and
        # end now: C, which let the camera go, cannot end it.
        new_holder = next(p for p in peers if camera in p.ownership.held())
        again = await asyncio.to_thread(new_holder.events.raise_event, offline(camera))
        assert again.id != raised.id
        assert await asyncio.to_thread(c.events.end_event, offline(camera).key) is None
        assert a.events.get(again.id).ended_at is None
        assert new_holder.ownership.token(camera) == LeaseToken(
            new_holder.node_id, new_holder.ownership.token(camera).generation
        )
        assert new_holder.ownership.token(camera).generation > stale.generation

        # A clean stop releases at once: B's cameras go to A without waiting for a lease.
        peers.remove(c)
        await c.stop()
        await b.stop()
        peers.remove(b)
        await until(lambda: spread(peers, [a]), SETTLE_WITHIN_S, "b's cameras to a")
        assert sampler.doubles == []
    finally:
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
        for peer in peers:
            await peer.stop()


async def test_a_node_cut_off_from_the_database_stops_at_its_deadline_and_comes_back(
    simulator: Simulator, database: str, tmp_path: Path
) -> None:
    config = cluster_config(simulator, database, tmp_path)
    peers: list[Peer] = []
    sampler = Sampler(peers, [])
    sampling = asyncio.create_task(sampler.run())
    # A database nobody answers at (a closed port): every statement of A's fails, as in a
    # network partition between A and the database.
    unreachable = create_db_engine("postgresql+psycopg://postgres@127.0.0.1:1/gone")
    try:
        a, b = await start_peer(config, database, "a"), await start_peer(config, database, "b")
        peers += [a, b]
        await until(lambda: spread(peers, [a, b]), SETTLE_WITHIN_S, "cameras spread over a, b")
        mine = a.ownership.held()
        assert mine

        reachable = a.ownership.store
        a.ownership.store = a.membership.store = ClusterStore(unreachable)
        # Live video goes on until the local deadline (no claim, no hand-off meanwhile)...
        assert a.ownership.held() == mine and a.running() == mine
        # ...then A stops reading, and B takes A's cameras once their leases ended.
        await until(lambda: not a.ownership.held() and not a.running(), LEASE_S + 5, "a stops")
        await until(lambda: spread(peers, [b]), SETTLE_WITHIN_S, "b takes a's cameras")

        # The database answers again: A beats, renews nothing, and gets its share back.
        assert not b.membership.is_live("a")
        a.ownership.store = a.membership.store = reachable
        # Back after a silence: settled again only a lease later, whenever it started.
        await until(lambda: b.membership.is_live("a"), SETTLE_WITHIN_S, "a live again for b")
        assert b.membership.live_for_s("a") < LEASE_S
        await until(lambda: spread(peers, [a, b]), SETTLE_WITHIN_S, "a's share back")
        assert a.ownership.held() == mine
        assert sampler.doubles == []
    finally:
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
        for peer in peers:
            await peer.stop()
        unreachable.dispose()
