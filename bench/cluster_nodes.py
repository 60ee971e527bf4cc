"""A cluster of real nodes on this machine, for the cluster tests and ``bench.cluster``.

Each node is ``surveillance serve --config FILE`` in its own process (and session), with a
configuration of its own that differs from the others only in ``cluster.node_id``,
``cluster.url``, ``cluster.capacity`` and ``server.*``, as the cluster's operators write them.
All share one PostgreSQL database and one shared directory. The admin is made once with the
real command line (``surveillance user add`` / ``token create``, bench/service.py) on the
shared database, so every node knows it.

Which node ingests which camera is read from outside the nodes: the simulator reports each
client's TCP port per mount (``peer_ports``), and /proc tells which process holds the socket
with that port (``/proc/net/tcp`` maps a local port to a socket inode, ``/proc/PID/fd`` an
inode to a process). That is the truth a buggy node could not misreport.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.procs import Children, python_env
from bench.service import HOST, BenchCredentials, create_bench_credentials, free_port, serve_prefix

LEASE_S = 5.0  # small, so a dead node's cameras move within seconds
RENEW_S = 1.0
SEGMENT_S = 2.0  # short recording segments: a stale writer shows within seconds
HTTP_TIMEOUT_S = 30.0
LOG_TAIL_CHARS = 3000
ESTABLISHED = "01"  # /proc/net/tcp "st" column (include/net/tcp_states.h, TCP_ESTABLISHED)


class ClusterError(RuntimeError):
    """A node did not start or did not answer."""


@dataclass(frozen=True)
class NodePlan:
    node_id: str
    capacity: float = 1.0


class ClusterNode:
    """One ``surveillance serve`` process, its configuration and an HTTP client for it."""

    def __init__(
        self, children: Children, plan: NodePlan, config: Path, port: int, log: Path
    ) -> None:
        self._children = children
        self.plan = plan
        self.config = config
        self.port = port
        self.log = log
        self.proc: subprocess.Popen[Any] | None = None
        self.frozen = False
        self.credentials: BenchCredentials | None = None

    @property
    def node_id(self) -> str:
        return self.plan.node_id

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"node {self.node_id} was never started"
        return self.proc.pid

    @property
    def running(self) -> bool:
        """Started and not exited (a frozen node is still running)."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def live(self) -> bool:
        """Running and not stopped with SIGSTOP: a node that may ingest."""
        return self.running and not self.frozen

    def start(self) -> None:
        self.frozen = False
        command = [*serve_prefix(), "--config", str(self.config)]
        self.proc = self._children.spawn(command, log=self.log, env=python_env())

    def wait_ready(self, timeout_s: float) -> None:
        """Until /api/health answers; ClusterError with the log's end if the node exits."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running:
                raise ClusterError(f"node {self.node_id} exited:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/api/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise ClusterError(f"node {self.node_id} did not answer within {timeout_s:g} s")

    def kill(self) -> None:
        """SIGKILL: the node dies at once, leaving its leases to expire."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.frozen = False

    def freeze(self) -> None:
        """SIGSTOP: the node keeps its sockets but runs no code (a long GC pause, a VM
        paused by its host): its leases expire under it."""
        os.killpg(self.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        os.killpg(self.pid, signal.SIGCONT)
        self.frozen = False

    def stop(self) -> None:
        """SIGTERM, the clean stop (leaves the cluster)."""
        if self.proc is not None:
            if self.frozen:
                self.thaw()
            self._children.stop([self.proc])

    def log_tail(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL_CHARS:]
        except FileNotFoundError:
            return "(no log)"

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        assert self.credentials is not None
        with httpx.Client(base_url=self.url, timeout=HTTP_TIMEOUT_S) as client:
            return client.request(method, path, headers=self.credentials.headers(), **kwargs)

    def get_json(self, path: str) -> Any:
        response = self.request("GET", path)
        if response.status_code != 200:
            raise ClusterError(
                f"GET {path} on {self.node_id}: HTTP {response.status_code}: {response.text[:300]}"
            )
        return response.json()

    def online_cameras(self) -> set[str]:
        """Camera ids this node's /api/cameras shows online (held here or elsewhere)."""
        return {c["id"] for c in self.get_json("/api/cameras") if c["state"] == "online"}


class LocalCluster:
    """Nodes sharing ``database_url`` and a shared directory under ``work_dir``, all with
    the cameras ``cameras`` (id -> RTSP URL), recorded continuously in short segments."""

    def __init__(
        self,
        children: Children,
        work_dir: Path,
        database_url: str,
        cameras: Mapping[str, str],
        *,
        lease_s: float = LEASE_S,
        renew_s: float = RENEW_S,
    ) -> None:
        self._children = children
        self.work_dir = work_dir
        self.database_url = database_url
        self.cameras = dict(cameras)
        self.lease_s = lease_s
        self.renew_s = renew_s
        self.shared_dir = work_dir / "shared"
        self.shared_dir.mkdir(parents=True, exist_ok=True)
        self.nodes: dict[str, ClusterNode] = {}
        self.credentials: BenchCredentials | None = None

    def add(self, plan: NodePlan, *, port: int | None = None) -> ClusterNode:
        """A node's configuration written (and the admin made on the first), not started."""
        node_dir = self.work_dir / plan.node_id
        node_dir.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        config = node_dir / "config.yaml"
        config.write_text(yaml.safe_dump(self.config_of(plan, port, node_dir)), encoding="utf-8")
        node = ClusterNode(self._children, plan, config, port, node_dir / "serve.log")
        if self.credentials is None:
            self.credentials = create_bench_credentials(config)
        node.credentials = self.credentials
        self.nodes.setdefault(plan.node_id, node)
        return node

    def config_of(self, plan: NodePlan, port: int, node_dir: Path) -> dict[str, Any]:
        return {
            "server": {"host": HOST, "port": port, "data_dir": str(node_dir / "data")},
            "database": {"url": self.database_url},
            "cluster": {
                "enabled": True,
                "node_id": plan.node_id,
                "url": f"http://{HOST}:{port}",
                "capacity": plan.capacity,
                "lease_s": self.lease_s,
                "renew_s": self.renew_s,
                "shared_dir": str(self.shared_dir),
            },
            "recording": {
                "segment_s": SEGMENT_S,
                "min_free_bytes": 0,
                "default": {"mode": "continuous", "retain_days": 1},
            },
            "platforms": [{"id": "sim", "name": "Simulated cameras"}],
            "cameras": [
                {"id": camera_id, "name": f"Camera {camera_id}", "platform": "sim", "url": url}
                for camera_id, url in self.cameras.items()
            ],
        }

    def start(self, plans: Sequence[NodePlan], timeout_s: float = 90) -> list[ClusterNode]:
        """Start these nodes together and wait until each answers."""
        started = [self.add(plan) for plan in plans]
        for node in started:
            node.start()
        for node in started:
            node.wait_ready(timeout_s)
        return started

    def live_nodes(self) -> list[ClusterNode]:
        return [node for node in self.nodes.values() if node.live]

    def any_live(self) -> ClusterNode:
        return self.live_nodes()[0]


# -- who ingests what, read from the simulator and /proc -----------------------------------


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
    inodes = set()
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

    def sample(self) -> dict[str, list[str]]:
        """Camera -> live node ids ingesting it now (see the class docstring)."""
        now = time.monotonic()
        counted = [
            node
            for node in self._cluster.nodes.values()
            if node.live and now - self._thawed.get(node.node_id, -1e9) > self._grace_s
        ]
        return ingest_by_camera(self._simulator.status(), counted)

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


def restart_postgres(pg: Any) -> None:
    """``pg_ctl restart -m fast`` on a LocalPostgres: the same port and data, every
    connection dropped (pg_ctl reuses the options of the last start, postmaster.opts)."""
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(
        [*as_user, str(pg.bin_dir / "pg_ctl"), "-D", str(pg.data), "-m", "fast", "-w",
         "-t", "60", "restart"],
        check=True, capture_output=True, timeout=90,
    )  # fmt: skip
