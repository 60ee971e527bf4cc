"""What the cluster test modules share: bench/cluster_run.py's set-up (which ``bench.cluster``
drives the same way) with the tests' small clip, and PostgreSQL missing handled as tests do."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from bench.cluster_nodes import NodePlan
from bench.cluster_run import ClusterRun
from bench.cluster_run import running_cluster as bench_cluster
from surveillance.local_postgres import pg_bin
from tests.conftest import CLIP_CACHE, SMALL_H264, missing

CAMERAS = [f"cam{i:02d}" for i in range(12)]

Cluster = ClusterRun


@contextmanager
def running_cluster(
    plans: Sequence[NodePlan], cameras: Sequence[str] = CAMERAS
) -> Iterator[ClusterRun]:
    if pg_bin() is None:
        missing("PostgreSQL binaries are missing (install Debian's postgresql)")
    with bench_cluster(plans, cameras, SMALL_H264, CLIP_CACHE) as cluster:
        yield cluster
