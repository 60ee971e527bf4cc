"""The whole cluster set-up of the cluster tests and ``bench.cluster``: a throwaway
PostgreSQL, the RTSP simulator with a few small cameras, real nodes on them, and the watch for
double ingest, all stopped on the way out."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.cluster_ingest import IngestWatch
from bench.cluster_nodes import ClusterNode, LocalCluster, NodePlan
from bench.procs import Children
from surveillance.local_postgres import LocalPostgres
from surveillance.simulator import ClipSpec, MountSpec, Simulator

NODE_START_S = 120.0  # three nodes starting at once on a loaded 2-core machine
SIMULATOR_START_S = 180.0  # clips are encoded on the first run


@dataclass
class ClusterRun:
    pg: LocalPostgres
    simulator: Simulator
    nodes: LocalCluster
    watch: IngestWatch

    def node(self, node_id: str) -> ClusterNode:
        return self.nodes.nodes[node_id]

    def owners(self) -> dict[str, list[str]]:
        """Camera -> live nodes ingesting it now, read from the simulator and /proc."""
        return self.watch.sample()

    def query(self, sql: str, **params: Any) -> list[Any]:
        """Rows of ``sql`` on the cluster's database (a connection of the caller's own)."""
        engine = create_engine(self.nodes.database_url)
        try:
            with engine.connect() as connection:
                return list(connection.execute(text(sql), params))
        finally:
            engine.dispose()


@contextmanager
def running_cluster(
    plans: Sequence[NodePlan], cameras: Sequence[str], clip: ClipSpec, clip_dir: Path
) -> Iterator[ClusterRun]:
    """PostgreSQL, the simulator (``cameras`` all playing ``clip``) and these nodes started;
    everything stopped afterwards. PostgresMissing when PostgreSQL is not installed."""
    pg = LocalPostgres()
    mounts = [
        MountSpec(camera, clip, start_offset_s=(i * 0.37) % clip.seconds)
        for i, camera in enumerate(cameras)
    ]
    simulator = Simulator(mounts, clip_dir=clip_dir)
    work = Path(tempfile.mkdtemp(prefix="surveillance-cluster-"))
    with Children() as children:
        pg.start()
        try:
            simulator.start(timeout_s=SIMULATOR_START_S)
            urls = {camera: simulator.url(camera) for camera in cameras}
            nodes = LocalCluster(children, work, pg.new_database("cluster"), urls)
            nodes.start(plans, timeout_s=NODE_START_S)
            watch = IngestWatch(simulator, nodes, resume_grace_s=nodes.renew_s + 2.0).start()
            try:
                yield ClusterRun(pg, simulator, nodes, watch)
            finally:
                watch.stop()
                children.stop_all()
        finally:
            simulator.stop()
            pg.stop()
            shutil.rmtree(work, ignore_errors=True)
