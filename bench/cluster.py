"""Cluster benchmark: failover time, double ingest, cameras moved when a node joins, and
the cost of a request forwarded to a camera's owner, against the owner answering it itself.

Usage::

    python -m bench.cluster --quick --json /tmp/cluster-quick.json      # about three minutes
    python -m bench.cluster --nodes 3 --cameras 24 --json /tmp/cluster.json

Method
------
A throwaway PostgreSQL, the RTSP simulator with ``--cameras`` small cameras (640x360 H.264,
25 fps, 800 kbit/s) and ``--nodes`` real nodes (``surveillance serve --config``, each its own
configuration, capacity 1, leases of 5 s renewed every second), as the cluster tests start
them (bench/cluster_run.py). Which node ingests which camera is read from the simulator and
/proc (bench/cluster_ingest.py), never asked of the nodes; a watch samples it every 0.25 s
for the whole run.

1. **forwarding** -- ``--snapshots`` snapshots of one camera through its owner and as many
   through another node (which forwards them), taken in turns after two warm-ups each:
   ``snapshot_owner_ms`` and ``snapshot_forwarded_ms`` are medians (the baseline and the
   figure), ``api_forward_overhead_ms`` their difference.
2. **failover** -- ``--repeats`` times: SIGKILL one node holding cameras (each in turn),
   time until every camera it ingested is ingested by one live node and shown online by
   that node's /api/cameras; the node is started again and the cluster left to settle.
   ``failover_s`` is the p95 (with few repeats, about the worst); its floor is lease_s
   (5 s), the time a dead node's lease takes to expire, plus a renew period and an RTSP
   connect.
3. **join** -- one more node joins a settled cluster ("settled": each camera ingested,
   alone, by the node rendezvous hashing prefers among the running nodes):
   ``moved_fraction_on_join`` is the share of cameras whose ingesting node changed once
   settled again; the ideal of rendezvous hashing is 1/(nodes+1) (printed beside), and
   only onto the new node.

``double_ingest_events`` counts (camera, nodes) pairs the watch ever saw ingested by two live
nodes at once over the whole run: it must be 0. A node frozen or killed is not live.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cluster_nodes import NodePlan
from bench.cluster_run import ClusterRun, running_cluster
from bench.harness import (
    CLIP_CACHE,
    Report,
    add_run_options,
    progress,
    run_benchmark,
    wait_quiet,
)
from bench.harness import settings_from as settings_of
from bench.stats import median, percentile, rounded
from surveillance.cluster.rendezvous import assign
from surveillance.simulator import ClipSpec

NAME = "bench.cluster"
CLIP = ClipSpec(
    codec="h264", profile="main", width=640, height=360, fps=25, bitrate_kbps=800, gop_s=1.0,
    seconds=4.0,
)  # fmt: skip
SETTLE_S = 120.0
POLL_S = 0.1
WARM_UP = 2


@dataclass(frozen=True)
class Settings:
    nodes: int = 3
    cameras: int = 24
    repeats: int = 5
    snapshots: int = 60
    quick: bool = False
    json_path: Path | None = None
    cache_dir: Path | None = None
    wait_quiet_s: float | None = 0.0


QUICK = Settings(nodes=3, cameras=12, repeats=3, snapshots=20, quick=True)


def camera_ids(count: int) -> list[str]:
    return [f"cam{i:03d}" for i in range(count)]


def one_owner_each(cluster: ClusterRun, cameras: Sequence[str]) -> dict[str, str] | None:
    seen = cluster.owners()
    if all(len(seen.get(camera, ())) == 1 for camera in cameras):
        return {camera: seen[camera][0] for camera in cameras}
    return None


def settle(cluster: ClusterRun, cameras: Sequence[str]) -> dict[str, str]:
    """Owners once each camera is ingested by the node rendezvous hashing prefers among the
    running nodes, alone (hand-offs to a node wait until it has been live lease_s)."""
    running = [(n.node_id, n.plan.capacity) for n in cluster.nodes.nodes.values() if n.running]
    expected = assign(cameras, running)
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        if one_owner_each(cluster, cameras) == expected:
            return expected
        time.sleep(POLL_S)
    raise RuntimeError(f"the cluster did not settle within {SETTLE_S:g} s: {cluster.owners()}")


def snapshot_ms(cluster: ClusterRun, via: str, camera: str) -> float:
    started = time.perf_counter()
    response = cluster.node(via).request("GET", f"/api/cameras/{camera}/snapshot.jpg")
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"snapshot via {via}: HTTP {response.status_code}")
    return elapsed


def forwarding(cluster: ClusterRun, owners: dict[str, str], settings: Settings) -> Report:
    """Snapshots of one camera through its owner and through another node, taken in turns
    (so a change of the machine's load meanwhile weighs on both alike)."""
    camera, owner = next(iter(sorted(owners.items())))
    other = next(n for n in cluster.nodes.nodes if n != owner)
    direct: list[float] = []
    forwarded: list[float] = []
    for i in range(WARM_UP + settings.snapshots):
        pair = (snapshot_ms(cluster, owner, camera), snapshot_ms(cluster, other, camera))
        if i >= WARM_UP:
            direct.append(pair[0])
            forwarded.append(pair[1])
    return {"camera": camera, "owner": owner, "via": other, "owner_ms": direct,
            "forwarded_ms": forwarded}  # fmt: skip


def failover_once(cluster: ClusterRun, turn: int, cameras: Sequence[str]) -> float:
    """SIGKILL the ``turn``-th node holding cameras (in turn), time its cameras' move."""
    owners = settle(cluster, cameras)
    holders = sorted(set(owners.values()))
    victim = holders[turn % len(holders)]
    lost = [c for c, n in owners.items() if n == victim]
    node = cluster.node(victim)
    started = time.monotonic()
    node.kill()
    deadline = started + SETTLE_S
    while time.monotonic() < deadline:
        seen = cluster.owners()
        if all(len(seen[c]) == 1 for c in lost):
            # Online as its new owner reports it (what it serves live from).
            taken = {seen[c][0] for c in lost}
            online = set().union(*(cluster.node(n).online_cameras() for n in taken))
            if online >= set(lost):
                break
        time.sleep(POLL_S)
    else:
        raise RuntimeError(f"{victim}'s cameras not back within {SETTLE_S:g} s")
    took = time.monotonic() - started
    progress(NAME, f"{victim} killed: its {len(lost)} cameras online elsewhere in {took:.1f} s")
    node.start()
    node.wait_ready(SETTLE_S)
    return took


def join(cluster: ClusterRun, cameras: Sequence[str], nodes: int) -> Report:
    before = settle(cluster, cameras)
    joining = cluster.nodes.add(NodePlan(f"n{nodes}", 1.0))
    joining.start()
    joining.wait_ready(SETTLE_S)
    after = settle(cluster, cameras)
    moved = [c for c in cameras if before[c] != after[c]]
    return {"moved": len(moved), "to_new_node": sum(after[c] == joining.node_id for c in moved)}


def run_phases(settings: Settings) -> Report:
    wait_quiet(NAME, settings.wait_quiet_s or 0.0)
    cameras = camera_ids(settings.cameras)
    plans = [NodePlan(f"n{i}", 1.0) for i in range(settings.nodes)]
    progress(NAME, f"starting PostgreSQL, {len(cameras)} cameras and {len(plans)} nodes")
    clip_dir = settings.cache_dir or CLIP_CACHE
    with running_cluster(plans, cameras, CLIP, clip_dir) as cluster:
        owners = settle(cluster, cameras)
        progress(NAME, "settled; forwarding")
        phases: Report = {"forwarding": forwarding(cluster, owners, settings)}
        failovers = []
        for i in range(settings.repeats):
            failovers.append(failover_once(cluster, i, cameras))
        phases["failover_s"] = failovers
        progress(NAME, "one more node joins")
        phases["join"] = join(cluster, cameras, settings.nodes)
        phases["double_ingest"] = [
            {"at": d.at, "camera": d.camera_id, "nodes": list(d.node_ids)}
            for d in cluster.watch.doubles
        ]
        phases["double_ingest_events"] = cluster.watch.episodes()
        phases["samples"] = cluster.watch.samples
    return phases


def summarize(settings: Settings, phases: Report) -> Report:
    forwarding = phases["forwarding"]
    owner_ms = median(forwarding["owner_ms"])
    forwarded_ms = median(forwarding["forwarded_ms"])
    overhead = None if owner_ms is None or forwarded_ms is None else forwarded_ms - owner_ms
    return {
        "failover_s": rounded(percentile(phases["failover_s"], 95), 2),
        "double_ingest_events": phases["double_ingest_events"],
        "moved_fraction_on_join": round(phases["join"]["moved"] / settings.cameras, 3),
        "moved_fraction_ideal": round(1 / (settings.nodes + 1), 3),
        "moved_to_new_node": phases["join"]["to_new_node"],
        "api_forward_overhead_ms": rounded(overhead, 1),
        "snapshot_owner_ms": rounded(owner_ms, 1),
        "snapshot_forwarded_ms": rounded(forwarded_ms, 1),
        "ingest_samples": phases["samples"],
    }


def print_table(report: Report) -> None:
    rows: list[tuple[str, Any]] = [
        ("failover, SIGKILL -> cameras online elsewhere, p95 (s)", report["failover_s"]),
        ("double ingest events (must be 0)", report["double_ingest_events"]),
        ("moved fraction on join", report["moved_fraction_on_join"]),
        ("  ideal 1/(nodes+1)", report["moved_fraction_ideal"]),
        ("snapshot through the owner, median (ms) [baseline]", report["snapshot_owner_ms"]),
        ("snapshot through another node, median (ms)", report["snapshot_forwarded_ms"]),
        ("forwarding overhead (ms)", report["api_forward_overhead_ms"]),
    ]
    for label, value in rows:
        print(f"{label:<56} {value}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {NAME}", description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, help="nodes at the start (one more joins)")
    parser.add_argument("--cameras", type=int, help="simulated cameras")
    parser.add_argument("--repeats", type=int, help="SIGKILL failovers timed")
    parser.add_argument("--snapshots", type=int, help="snapshots timed each way")
    add_run_options(
        parser,
        quick="3 nodes, 12 cameras, 3 failovers, 20 snapshots each way",
        wait_quiet="wait this long (s) for an idle machine before starting",
    )
    args = parser.parse_args(argv)
    settings = settings_of(args, Settings(), QUICK)
    return run_benchmark(
        NAME,
        sys.argv[1:] if argv is None else argv,
        settings,
        versions=dict,
        run_phases=run_phases,
        summarize=summarize,
        print_table=print_table,
    )


if __name__ == "__main__":
    raise SystemExit(main())
