"""Which node ingests which camera, read from outside the nodes.

The simulator reports each client's TCP port per mount (``peer_ports``), and /proc tells
which process holds the socket with that port (``/proc/net/tcp`` maps a local port to a
socket inode, ``/proc/PID/fd`` an inode to a process). That is the truth a buggy node could
not misreport. :class:`IngestWatch` samples it over and over and keeps every double ingest.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cluster_nodes import ClusterNode, LocalCluster

ESTABLISHED = "01"  # /proc/net/tcp "st" column (include/net/tcp_states.h, TCP_ESTABLISHED)


def _socket_ports() -> dict[int, int]:
    """Socket inode -> local port, of every established TCP connection on this machine."""
    ports: dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == ESTABLISHED:
                ports[int(fields[9])] = int(fields[1].rsplit(":", 1)[1], 16)
    return ports


def _group_members(group: int) -> list[int]:
    """Processes whose process group is ``group`` (a node and anything it forked)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after its ')'.
        after = stat.rsplit(")", 1)[-1].split()
        if len(after) > 2 and after[2] == str(group):
            members.append(int(entry))
    return members


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    fd_dir = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return inodes
    for name in names:
        try:
            target = os.readlink(f"{fd_dir}/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def ports_by_node(nodes: Iterable[ClusterNode]) -> dict[int, str]:
    """Local TCP port -> node id, for every established connection of running nodes."""
    ports = _socket_ports()
    owner: dict[int, str] = {}
    for node in nodes:
        if not node.running:
            continue
        for pid in _group_members(node.pid):
            for inode in _socket_inodes(pid):
                if inode in ports:
                    owner[ports[inode]] = node.node_id
    return owner


def ingest_by_camera(
    simulator_status: Mapping[str, Any], nodes: Iterable[ClusterNode]
) -> dict[str, list[str]]:
    """Camera (mount) id -> the node ids holding an RTSP connection to it now (a node twice
    if it holds two); connections of other processes are left out."""
    owner = ports_by_node(nodes)
    return {
        path: sorted(owner[port] for port in mount.get("peer_ports", ()) if port in owner)
        for path, mount in simulator_status.items()
    }


# -- watching for a camera ingested twice ---------------------------------------------------

SAMPLE_EVERY_S = 0.25


@dataclass(frozen=True)
class DoubleIngest:
    at: float  # time.time()
    camera_id: str
    node_ids: tuple[str, ...]


class IngestWatch:
    """Samples who ingests what, over and over, in a thread, and keeps every sample where
    a camera had connections from two live nodes (or two from one node).

    A node frozen with SIGSTOP is not live (it runs no code: its sockets stay open until it
    runs again). Nor, for ``resume_grace_s`` after its SIGCONT, is a node resuming: it finds
    its local deadlines passed at its next loop and closes its sockets; how long that takes
    is for the test that thaws it to check, not for every sample.
    """

    def __init__(self, simulator: Any, cluster: LocalCluster, resume_grace_s: float) -> None:
        self._simulator = simulator
        self._cluster = cluster
        self._grace_s = resume_grace_s
        self._thawed: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-watch", daemon=True)
        self.doubles: list[DoubleIngest] = []
        self.samples = 0
        self.last: dict[str, list[str]] = {}

    def thawed(self, node: ClusterNode) -> None:
        """Call right after ``node.thaw()``."""
        self._thawed[node.node_id] = time.monotonic()

    def start(self) -> IngestWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def sample(self, also: Iterable[ClusterNode] = ()) -> dict[str, list[str]]:
        """Camera -> live node ids ingesting it now (see the class docstring); nodes in
        ``also`` are counted whatever their state (a node resuming, a frozen one)."""
        now = time.monotonic()
        counted = {
            node.node_id: node
            for node in self._cluster.nodes.values()
            if node.live and now - self._thawed.get(node.node_id, -1e9) > self._grace_s
        }
        counted.update((node.node_id, node) for node in also)
        return ingest_by_camera(self._simulator.status(), counted.values())

    def episodes(self) -> int:
        """Distinct (camera, nodes) double ingests seen: one however many samples it lasts."""
        return len({(d.camera_id, d.node_ids) for d in self.doubles})

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            try:
                seen = self.sample()
            except Exception:  # a node's /proc entry gone mid-read, say: the next sample counts
                continue
            self.last = seen
            self.samples += 1
            for camera_id, node_ids in seen.items():
                if len(node_ids) > 1:
                    self.doubles.append(DoubleIngest(time.time(), camera_id, tuple(node_ids)))
