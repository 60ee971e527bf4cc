"""A database outage and a partition, two nodes in one process over a real PostgreSQL.

Each node is the real Membership, Ownership and IngestService (reading the real RTSP
simulator) plus a real HTTP server answering the real ``GET /api/cluster/database`` route,
which the other node asks during an outage. The outage is a real PostgreSQL stopped longer
than lease_s and started again. The partition (one node cut off, its peer not) is a small
TCP relay in front of the database that the test closes: no real part produces a one-node
partition on loopback, and to the cut-off node it looks as a dead link does (refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import uvicorn
from fastapi import FastAPI

from surveillance.api.routes import cluster as cluster_routes
from surveillance.auth.audit import AuditLog
from surveillance.catalog import Catalog
from surveillance.cluster.errors import LeaseLost
from surveillance.cluster.store import ClusterStore
from surveillance.config.models import AppConfig
from surveillance.db import create_db_engine, upgrade
from surveillance.events.store import EventStore
from surveillance.local_postgres import LocalPostgres
from surveillance.services.camera_ownership import DB_UNREACHABLE, Ownership
from surveillance.services.cluster_membership import Membership
from surveillance.services.event_bus import EventBus
from surveillance.services.ingest import IngestService
from surveillance.services.outage_evidence import nobody_can_claim
from surveillance.simulator import Simulator
from tests.cases.conftest import PostgresCluster
from tests.cluster.test_ownership import CAMERAS, LEASE_S, Peer, Sampler, cluster_config
from tests.waits import eventually

pytestmark = [pytest.mark.rtsp, pytest.mark.postgresql]

WITHIN_S = 60.0  # generous: a loaded CI machine


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class HttpPeer:
    """A node's lease parts and its HTTP answer to ``/api/cluster/database``."""

    def __init__(
        self, peer: Peer, url: str, server: uvicorn.Server, task: asyncio.Task[None]
    ) -> None:
        self.peer, self.url, self.server, self.task = peer, url, server, task

    async def stop(self) -> None:
        await self.peer.stop()
        self.server.should_exit = True
        await self.task


async def start_node(config: AppConfig, url: str, node_id: str) -> HttpPeer:
    port = free_port()
    cluster = config.cluster.model_copy(
        update={"node_id": node_id, "url": f"http://127.0.0.1:{port}"}
    )
    engine = create_db_engine(url)
    catalog = Catalog.from_config(config)
    ingest = IngestService(catalog, config.ingest, lambda text: text)
    store = ClusterStore(engine)
    membership = Membership(store, cluster, lambda: {"cameras": 0.0})
    ownership = Ownership(store, membership, catalog, ingest, cluster)
    ingest.set_ownership(ownership.holds, lambda c, sub: None, ownership.owner, ownership.reads)
    app = FastAPI()
    app.include_router(cluster_routes.router)
    app.state.node = SimpleNamespace(ownership=ownership)  # all the route reads
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, "the node's HTTP server listens")
    await membership.start()
    await ownership.start()
    await ingest.start()
    events = EventBus(EventStore(engine, node_id, ownership.fence), catalog, config.events,
                      AuditLog(engine))  # fmt: skip
    peer = Peer(node_id, engine, ingest, membership, ownership, events)
    return HttpPeer(peer, cluster.url or "", server, task)


class Relay:
    """A TCP relay to the database that can be cut (a partition of one node)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()


def owners(nodes: list[HttpPeer]) -> dict[str, str]:
    return {c: n.peer.node_id for n in nodes for c in CAMERAS if n.peer.ownership.holds(c)}


def settled(nodes: list[HttpPeer]) -> dict[str, str] | None:
    found = owners(nodes)
    counts = [sum(n.peer.ownership.holds(c) for n in nodes) for c in CAMERAS]
    both = all(n.peer.node_id in found.values() for n in nodes)
    return found if len(found) == len(CAMERAS) and counts == [1] * len(CAMERAS) and both else None


def live(node: HttpPeer, camera_id: str) -> bool:
    age = node.peer.ingest.stream(camera_id).health.last_packet_age(time.monotonic())
    return age is not None and age < 2.0


@contextlib.asynccontextmanager
async def sampling(nodes: list[HttpPeer]) -> AsyncIterator[Sampler]:
    sampler = Sampler([n.peer for n in nodes], [])
    task = asyncio.create_task(sampler.run())
    try:
        yield sampler
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_database_outage_keeps_live_video_and_stops_writes(
    simulator: Simulator, tmp_path: Path
) -> None:
    """PostgreSQL stopped for three leases: both nodes read on (live packets keep coming),
    neither may write (holds() False, no fence token); once it is back each holds the same
    cameras under a new generation, and no camera was ever read by two."""
    database = LocalPostgres()  # its own: this test stops it
    database.start()
    try:
        url = database.new_database()
        upgrade(create_db_engine(url))
        config = cluster_config(simulator, url, tmp_path)
        nodes = [await start_node(config, url, "a"), await start_node(config, url, "b")]
        try:
            before = await eventually(lambda: settled(nodes), "both nodes hold cameras", WITHIN_S)
            assert before is not None
            await eventually(
                lambda: all(
                    live(n, c) for n in nodes for c in CAMERAS if before[c] == n.peer.node_id
                ),
                "live video",
                WITHIN_S,
            )
            generations = {
                c: n.peer.ownership.token(c).generation
                for n in nodes for c in CAMERAS if before[c] == n.peer.node_id
            }  # fmt: skip
            async with sampling(nodes) as sampler:
                # pg_ctl stop -m fast: what a database restart looks like to the nodes.
                await asyncio.to_thread(database._pg_ctl, "stop", "-m", "fast")
                await asyncio.sleep(3 * LEASE_S)  # well past every lease
                # What each asks the other: both say they cannot reach it.
                assert await nobody_can_claim([n.url for n in nodes])
                for node in nodes:
                    ownership = node.peer.ownership
                    assert not ownership.database_reachable()
                    for camera_id in (c for c in CAMERAS if before[c] == node.peer.node_id):
                        assert not ownership.holds(camera_id)  # writers refuse
                        assert not node.peer.ingest.holds(camera_id)
                        with pytest.raises(LeaseLost):
                            ownership.token(camera_id)  # no fence token: no row written
                        assert ownership.reads(camera_id)
                        assert camera_id in node.peer.running()
                        assert live(node, camera_id), f"{camera_id} live on {node.peer.node_id}"
                await asyncio.to_thread(database._pg_ctl, "start")
                after = await eventually(
                    lambda: (found := settled(nodes)) == before and all(
                        n.peer.ownership.token(c).generation > generations[c]
                        for n in nodes for c in CAMERAS if before[c] == n.peer.node_id
                    ) and found,
                    "the same cameras claimed again under new generations",
                    WITHIN_S,
                )  # fmt: skip
                assert after == before
                assert all(n.peer.ownership.database_reachable() for n in nodes)
            assert sampler.doubles == []
        finally:
            for node in nodes:
                await node.stop()
    finally:
        database.stop()


async def test_partitioned_node_stops_reading_and_its_peer_takes_over(
    simulator: Simulator, postgres: PostgresCluster, tmp_path: Path
) -> None:
    """Node a reaches the database through a relay the test cuts; b reaches it directly.
    a asks b, b says the database is fine: a stops reading its cameras at its deadline
    (shown "database unreachable ..."), and b takes them over a lease later."""
    url = postgres.new_database()
    upgrade(create_db_engine(url))
    relay = Relay(postgres.port)
    relayed = url.replace(f":{postgres.port}/", f":{await relay.start()}/")
    config = cluster_config(simulator, url, tmp_path)
    nodes = [await start_node(config, relayed, "a"), await start_node(config, url, "b")]
    a, b = nodes
    try:
        before = await eventually(lambda: settled(nodes), "both nodes hold cameras", WITHIN_S)
        assert before is not None
        mine = [c for c in CAMERAS if before[c] == "a"]
        async with sampling(nodes) as sampler:
            relay.cut()
            await eventually(lambda: not a.peer.running(), "a stops reading", WITHIN_S)
            assert not a.peer.ownership.database_reachable()
            shown = {a.peer.ingest.stream(c).health.last_error for c in mine}
            assert shown == {DB_UNREACHABLE}
            # b says the database is fine; a node that cannot be asked is no proof either.
            assert not await nobody_can_claim([b.url])
            assert not await nobody_can_claim([a.url, f"http://127.0.0.1:{free_port()}"])
            assert await nobody_can_claim([a.url])
            await eventually(
                lambda: all(b.peer.ownership.holds(c) for c in CAMERAS), "b holds all", WITHIN_S
            )
            await eventually(lambda: all(live(b, c) for c in mine), "b reads a's", WITHIN_S)
        assert sampler.doubles == []
    finally:
        for node in nodes:
            await node.stop()
