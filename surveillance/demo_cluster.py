"""``surveillance demo --nodes N``: the demo as a cluster of N nodes on this machine.

A throwaway PostgreSQL (:mod:`.local_postgres`), the demo's simulated cameras, and N
``serve`` processes on loopback ports ``port``, ``port+1``, ... each with a config file
of its own in a temporary directory: the demo's config (:func:`.demo.demo_config_data`)
plus the database URL, the node's id, URL, port and data directory, and one shared
directory. The configs hold no secret: the database trusts loopback connections and the
simulated cameras ask for no password. The GB/T 28181 platform is left out (its channels
are pinned to the node they register to; the one-node demo shows them).

Each node names itself on its log lines (``[node-a]``, see :mod:`.logs`). The ports are
checked before anything starts or is printed: a busy one is a one-line error. A node that
exits is reported and the others run on (kill one to watch its cameras move); one that
stops cleanly (status 0: a Ctrl-C reached it) is no error. Ctrl-C or SIGTERM stops every
node, then the database, and removes the temporary directory. The nodes stay in the demo's
process group, so whatever signals the group (a terminal's Ctrl-C, a supervisor's kill of
the group) reaches them too: a terminal's Ctrl-C gives a node SIGINT and then the demo's
SIGTERM, and uvicorn takes only a second SIGINT to mean "exit at once, skip the clean
shutdown".
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

log = logging.getLogger(__name__)

NODE_IDS = tuple(f"node-{letter}" for letter in "abcdefghi")
MAX_NODES = len(NODE_IDS)
CONFIG_MODE = 0o600
POLL_S = 0.5  # how often the children are looked at
STOP_WAIT_S = 30.0  # a node's clean shutdown (streams, leases, database) before SIGKILL


@dataclass(frozen=True)
class DemoNode:
    node_id: str
    url: str
    port: int
    config: Path


def node_count(text: str) -> int:
    """``--nodes``: 1 to :data:`MAX_NODES` (an argparse type: a usage error otherwise)."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= count <= MAX_NODES:
        raise argparse.ArgumentTypeError(f"takes 1 to {MAX_NODES}, not {count}")
    return count


def busy_ports(host: str, ports: range) -> list[int]:
    """The ports of ``ports`` another process listens on at ``host`` now. Bound as uvicorn
    binds (SO_REUSEADDR), so a port left in TIME_WAIT by a previous run is not busy."""
    busy = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                busy.append(port)
    return busy


def write_node_configs(
    base: dict[str, Any], work_dir: Path, database_url: str, first_port: int, count: int
) -> list[DemoNode]:
    """One config file per node under ``work_dir`` (0600); ``base`` is the demo's config
    data, shared by every node but for ``server`` and ``cluster``."""
    if not 1 <= count <= MAX_NODES:
        raise ValueError(f"--nodes takes 1 to {MAX_NODES}")
    shared = work_dir / "shared"
    shared.mkdir(mode=0o700, parents=True, exist_ok=True)
    nodes = []
    for index, node_id in enumerate(NODE_IDS[:count]):
        port = first_port + index
        url = f"http://127.0.0.1:{port}"
        data = {
            **base,
            "server": {
                **base.get("server", {}),
                "host": "127.0.0.1",
                "port": port,
                "data_dir": str(work_dir / node_id / "data"),
                "allowed_hosts": ["127.0.0.1", "localhost"],
            },
            "database": {"url": database_url},
            "cluster": {
                "enabled": True,
                "node_id": node_id,
                "url": url,
                "shared_dir": str(shared),
            },
        }
        path = work_dir / f"{node_id}.yaml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, CONFIG_MODE)
        with os.fdopen(fd, "w") as handle:
            yaml.safe_dump(data, handle, sort_keys=False)
        nodes.append(DemoNode(node_id, url, port, path))
    return nodes


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the demo as Ctrl-C does (the nodes, the simulator and the database
    are stopped on the way out), whenever it comes. SIGINT too, even when the shell that
    started the demo in the background had it ignored: the nodes (uvicorn) still stop on
    it, and the demo must not watch them go one by one as if they had failed."""
    previous = {
        signum: signal.signal(signum, _interrupt) for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class NodeProcesses:
    """The nodes as child processes: started, watched, stopped."""

    def __init__(self, nodes: list[DemoNode]) -> None:
        self.nodes = nodes
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self._reported: set[str] = set()

    def start(self) -> None:
        for node in self.nodes:
            self.children[node.node_id] = subprocess.Popen(
                [sys.executable, "-m", "surveillance.cli", "serve", "--config", str(node.config)]
            )

    def watch(self) -> int:
        """Until Ctrl-C (0, see :func:`sigterm_as_interrupt`), or until every node stopped
        cleanly (0: a Ctrl-C reached them first); each exit is reported once. Nodes that
        died leave the database and the simulator up until Ctrl-C: nodes started again by
        hand (the command is logged) may still be using them."""
        told_all_gone = False
        try:
            while True:
                for node_id, child in self.children.items():
                    code = child.poll()
                    if code is not None and node_id not in self._reported:
                        self._reported.add(node_id)
                        self._report(node_id, child.pid, code)
                if len(self._reported) == len(self.children):
                    if all(child.returncode == 0 for child in self.children.values()):
                        log.info("demo: every node stopped")
                        return 0
                    if not told_all_gone:
                        told_all_gone = True
                        log.warning(
                            "demo: every node it started has exited; the database and the "
                            "simulator stay up until Ctrl-C"
                        )
                time.sleep(POLL_S)
        except KeyboardInterrupt:
            log.info("demo: stopping the nodes")
            return 0

    def _report(self, node_id: str, pid: int, code: int) -> None:
        if code == 0:  # a clean stop: a Ctrl-C or SIGTERM reached the node
            log.info("demo: node %s (pid %d) stopped", node_id, pid)
            return
        config = next(node.config for node in self.nodes if node.node_id == node_id)
        log.error(
            "demo: node %s (pid %d) exited with status %d; the others run on. To start it "
            "again: %s -m surveillance.cli serve --config %s",
            node_id, pid, code, sys.executable, config,
        )  # fmt: skip

    def stop(self) -> None:
        """SIGTERM to every running node, then wait; SIGKILL what is left after
        :data:`STOP_WAIT_S`."""
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        for node_id, child in self.children.items():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("demo: node %s did not stop in %.0f s: killed", node_id, STOP_WAIT_S)
                child.kill()
                child.wait()


def new_work_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="surveillance-demo-"))


def remove_work_dir(work_dir: Path) -> None:
    shutil.rmtree(work_dir, ignore_errors=True)
