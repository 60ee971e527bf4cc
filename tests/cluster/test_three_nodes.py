"""Three real nodes over one PostgreSQL share twelve simulated cameras (issue 15).

One cluster for the whole module (nodes a and b of capacity 1, c of capacity 2; leases of
5 s renewed every second); the tests run in order, each leaving the cluster working for the
next. Who ingests which camera is read from the simulator and /proc, never asked of the
nodes; a watch samples it all along and every test checks that no camera had connections
from two live nodes at any sample so far.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from bench.cluster_nodes import SEGMENT_S, NodePlan
from surveillance.cluster.rendezvous import assign
from tests.cluster.harness import CAMERAS, Cluster, running_cluster
from tests.waits import wait_until

pytestmark = [pytest.mark.rtsp, pytest.mark.postgresql]

PLANS = [NodePlan("a", 1.0), NodePlan("b", 1.0), NodePlan("c", 2.0)]
SETTLE_S = 90.0  # all cameras placed and online after a start or a change, loaded machine
MOVE_S = 60.0  # a lost node's cameras online elsewhere (lease 5 s + claim + RTSP connect)
# A segment's end is its last frame's arrival, the next one's start its first frame's: a
# clean hand-off leaves a gap (stop, release, claim, connect), never an overlap this long.
OVERLAP_TOLERANCE_S = 0.5


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(PLANS) as running:
        yield running


def one_owner_each(cluster: Cluster) -> dict[str, str] | None:
    """Camera -> its one ingesting node, when every camera has exactly one (else None)."""
    seen = cluster.owners()
    if all(len(seen.get(camera, ())) == 1 for camera in CAMERAS):
        return {camera: seen[camera][0] for camera in CAMERAS}
    return None


def settled_owners(cluster: Cluster, what: str) -> dict[str, str]:
    """Camera -> node once the running nodes hold what rendezvous hashing over them prefers
    (each camera ingested by its preferred node alone): where each test starts."""
    running = [n for n in cluster.nodes.nodes.values() if n.running]
    expected = assign(CAMERAS, [(n.node_id, n.plan.capacity) for n in running])
    wait_until(lambda: one_owner_each(cluster) == expected, SETTLE_S, what)
    return expected


def listed_nodes(cluster: Cluster, via: str) -> dict[str, Any]:
    """GET /api/cluster/nodes through ``via``: node id -> its entry."""
    answer = cluster.node(via).get_json("/api/cluster/nodes")
    assert answer["enabled"] is True and answer["node"] == via, answer
    return {entry["id"]: entry for entry in answer["nodes"]}


def all_online_through(cluster: Cluster, node_ids: list[str]) -> bool | dict[str, list[str]]:
    """True when every camera shows online through each of these nodes' /api/cameras, else
    (falsy when empty, so wait_until keeps polling) what shows otherwise, by node."""
    missing = {n: sorted(set(CAMERAS) - cluster.node(n).online_cameras()) for n in node_ids}
    return not any(missing.values()) or NotYet(missing)


class NotYet(dict[str, list[str]]):
    """What is not there yet: falsy, so a wait goes on, and shown when it gives up."""

    def __bool__(self) -> bool:
        return False


def no_double_ingest_so_far(cluster: Cluster) -> None:
    assert cluster.watch.samples > 0, "the ingest watch never sampled"
    assert cluster.watch.doubles == [], f"double ingest: {cluster.watch.doubles[:5]}"


def assert_one_writer_at_a_time(camera: str, segments: list[Any]) -> None:
    """A camera's segments, by start, never overlap: two writers of one camera would show
    as one's segment starting before the other's ended. A segment left open (end NULL)
    before the last is one whose writer died (SIGKILL): it has no end to compare."""
    spans = [
        (start, time.time() if end is None else end)
        for i, (start, end) in enumerate(segments)
        if end is not None or i == len(segments) - 1
    ]
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end - OVERLAP_TOLERANCE_S, (camera, segments)


def test_cameras_spread_by_capacity_each_ingested_once(cluster: Cluster) -> None:
    wait_until(lambda: all_online_through(cluster, ["a", "b", "c"]), SETTLE_S, "all online")
    # Settled: the preferred owner of every camera holds it (hand-offs wait lease_s).
    owners = settled_owners(cluster, "each camera ingested by its preferred node alone")
    counts = Counter(owners.values())
    assert counts["c"] > max(counts["a"], counts["b"]), counts  # capacity 2 takes more
    assert set(counts) == {"a", "b", "c"}, counts

    for via in ("a", "b", "c"):
        listed = listed_nodes(cluster, via)
        assert set(listed) == {"a", "b", "c"}
        for plan in PLANS:
            entry = listed[plan.node_id]
            assert entry["live"] is True and entry["capacity"] == plan.capacity
            assert entry["url"] == cluster.node(plan.node_id).url
            assert entry["cameras"] == counts[plan.node_id], (via, entry)
    no_double_ingest_so_far(cluster)


def test_second_node_with_a_live_id_is_refused(cluster: Cluster) -> None:
    # The same id as node a, its own port and directory: started by mistake twice.
    twin = cluster.nodes.add(NodePlan("a-twin", 1.0))
    text = twin.config.read_text(encoding="utf-8").replace("node_id: a-twin", "node_id: a")
    twin.config.write_text(text, encoding="utf-8")
    twin.start()
    assert twin.proc is not None
    try:
        status = twin.proc.wait(timeout=SETTLE_S)
    except subprocess.TimeoutExpired:
        twin.stop()
        raise AssertionError(f"a second node 'a' kept running:\n{twin.log_tail()}") from None
    finally:
        del cluster.nodes.nodes["a-twin"]
    said = twin.log_tail()
    assert status != 0
    assert re.search(r"(node|id)\W+a\b", said, re.IGNORECASE) or "'a'" in said, said
    assert cluster.node("a").url in said, said  # names the live node holding the id
    assert "Traceback" not in said, said  # a clear message, not a crash
    # Node a is untouched: still live, still ingesting its cameras.
    listed = listed_nodes(cluster, "b")
    assert listed["a"]["live"] is True
    assert settled_owners(cluster, "one owner each")
    no_double_ingest_so_far(cluster)


def test_snapshot_and_clip_through_any_node(cluster: Cluster) -> None:
    owners = settled_owners(cluster, "one owner each")
    camera = next(c for c in CAMERAS if owners[c] == "b")
    for via in ("a", "b", "c"):
        shot = cluster.node(via).request("GET", f"/api/cameras/{camera}/snapshot.jpg")
        assert shot.status_code == 200, (via, shot.status_code, shot.text[:300])
        assert shot.content[:2] == b"\xff\xd8" and len(shot.content) > 1000
    # A clip of b's camera's live footage asked through a; read back through c.
    case = cluster.node("a").request(
        "POST", "/api/cases", json={"title": "Cluster clip", "cameras": [camera]}
    )
    assert case.status_code == 201, case.text
    number = case.json()["number"]
    clip = cluster.node("a").request(
        "POST", f"/api/cases/{number}/items/clip", json={"camera": camera, "pre_s": 3.0}
    )
    assert clip.status_code == 201, clip.text
    item = clip.json()
    body = cluster.node("c").request("GET", item["content_url"])
    assert body.status_code == 200, body.text[:300]
    assert body.headers["x-content-sha256"] == item["sha256"] and len(body.content) > 1000
    no_double_ingest_so_far(cluster)


def test_frozen_node_loses_its_cameras_and_writes_nothing_after(cluster: Cluster) -> None:
    owners = settled_owners(cluster, "one owner each")
    moved = sorted(c for c, n in owners.items() if n == "b")
    assert moved
    b = cluster.node("b")
    frozen_at = time.time()
    b.freeze()
    try:
        # Past the lease, a and c take b's cameras (b still holds its sockets, frozen).
        def taken_over() -> bool:
            seen = cluster.owners()
            return all(len(seen[c]) == 1 and seen[c][0] in ("a", "c") for c in moved)

        wait_until(taken_over, MOVE_S, "b's cameras ingested by a or c")
        wait_until(lambda: all_online_through(cluster, ["a", "c"]), MOVE_S, "online via a, c")
    finally:
        b.thaw()
        cluster.watch.thawed(b)
    # Resumed, b finds its leases gone: it drops its connections to those cameras...
    wait_until(
        lambda: not any("b" in cluster.watch.sample(also=[b])[c] for c in moved),
        MOVE_S,
        "b dropped its stale connections",
    )
    # ...and wrote nothing for them: give it time to try (a few segments' worth).
    time.sleep(3 * SEGMENT_S + cluster.nodes.renew_s)
    stale_events = cluster.query(
        "SELECT id, camera_id, type FROM events WHERE node_id = 'b' AND started_at >= :t "
        "AND camera_id = ANY(:cameras)",
        t=frozen_at,
        cameras=moved,
    )
    assert stale_events == []
    for camera in moved:
        segments = cluster.query(
            "SELECT start_at, end_at FROM recording_segments "
            "WHERE camera_id = :camera AND stream = 'main' ORDER BY start_at",
            camera=camera,
        )
        assert any(start >= frozen_at for start, _ in segments), f"{camera}: no footage after"
        assert_one_writer_at_a_time(camera, segments)
    # b is live again: the cluster settles with b back, once each.
    settled_owners(cluster, "b's cameras back on b")
    no_double_ingest_so_far(cluster)


def test_killed_node_cameras_come_back_online_elsewhere(cluster: Cluster) -> None:
    owners = settled_owners(cluster, "one owner each")
    lost = sorted(c for c, n in owners.items() if n == "c")
    assert lost
    c = cluster.node("c")
    c.kill()
    try:

        def elsewhere() -> bool:
            seen = cluster.owners()
            return all(len(seen[cam]) == 1 and seen[cam][0] in ("a", "b") for cam in lost)

        wait_until(elsewhere, MOVE_S, "c's cameras ingested by a or b")
        wait_until(lambda: all_online_through(cluster, ["a", "b"]), MOVE_S, "online via a, b")
        listed = listed_nodes(cluster, "a")
        assert listed["c"]["live"] is False
        no_double_ingest_so_far(cluster)
    finally:
        c.start()  # back for the next test, with its old id (the row is dead, so taken over)
    c.wait_ready(SETTLE_S)
    settled_owners(cluster, "c's cameras back on c")
    for camera in lost:  # c's last segments were left open; none overlaps the next owner's
        segments = cluster.query(
            "SELECT start_at, end_at FROM recording_segments "
            "WHERE camera_id = :camera AND stream = 'main' ORDER BY start_at",
            camera=camera,
        )
        assert_one_writer_at_a_time(camera, segments)
    no_double_ingest_so_far(cluster)  # c taking its cameras back: each let go first


def test_postgresql_restart_keeps_video_and_leases(cluster: Cluster) -> None:
    before = settled_owners(cluster, "one owner each")
    samples_before = cluster.watch.samples
    cluster.pg.restart()
    # Live video went on: the same node ingests each camera as before, all along.
    during = cluster.owners()
    assert {c: n[0] for c, n in during.items() if len(n) == 1} == before, during

    # Leases resume: heartbeats fresh again, every node live, and nothing moved.
    def nodes_fresh() -> bool:
        listed = listed_nodes(cluster, "a").values()
        return all(n["live"] and n["age_s"] < cluster.nodes.lease_s for n in listed)

    wait_until(nodes_fresh, SETTLE_S, "heartbeats resume after the restart")
    time.sleep(2 * cluster.nodes.lease_s)  # past any lease that was not renewed
    assert one_owner_each(cluster) == before
    assert all_online_through(cluster, ["a", "b", "c"])
    assert cluster.watch.samples > samples_before
    no_double_ingest_so_far(cluster)
