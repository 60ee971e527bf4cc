"""A cluster of real nodes on this machine, for the cluster tests and ``bench.cluster``.

Each node is ``surveillance serve --config FILE`` in its own process (and session), with a
configuration of its own that differs from the others only in ``cluster.node_id``,
``cluster.url``, ``cluster.capacity`` and ``server.*``, as the cluster's operators write them.
All share one PostgreSQL database and one shared directory. The admin is made once with the
real command line (``surveillance user add`` / ``token create``, bench/service.py) on the
shared database, so every node knows it.

Who ingests which camera: bench/cluster_ingest.py; the whole set-up (PostgreSQL, the
simulator, the nodes): bench/cluster_run.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
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
