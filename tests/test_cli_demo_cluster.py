"""`surveillance demo --nodes 3`: a throwaway PostgreSQL, the simulator and three real
node processes on consecutive loopback ports; the printed admin signs in on any node (one
shared database); each node lists the three in ``/api/cluster/nodes``; SIGINT stops every
child and the database and removes the work files.

Runs the real command as a subprocess, as a user would.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psycopg

from surveillance.demo import DEMO_ADMIN
from tests.conftest import CLIP_CACHE
from tests.test_cli_demo import sign_in_line
from tests.waits import wait_until

NODES = 3
START_S = 180.0  # first run makes the demo clips; three nodes start on a loaded machine
STOP_S = 90.0  # each node shuts down cleanly (streams, recordings), then the database


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive loopback ports free right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1])
        if first + count > 65535:
            continue
        try:
            for port in range(first + 1, first + count):
                with socket.socket() as other:
                    other.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise AssertionError("no run of free ports")


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children, their children), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_demo_runs_three_nodes_over_one_database_and_stops_them_all(tmp_path: Path) -> None:
    first = free_ports(NODES)
    bases = [f"http://127.0.0.1:{first + i}" for i in range(NODES)]
    node_ids = [f"node-{letter}" for letter in "abc"]
    command = [sys.executable, "-m", "surveillance.cli", "demo", "--nodes", str(NODES),
               "--cameras", "2", "--port", str(first),
               "--cache-dir", str(CLIP_CACHE / "demo")]  # fmt: skip
    log_path = tmp_path / "demo.log"
    log = log_path.open("w+")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ
    )
    try:

        def printed_sign_in() -> re.Match[str] | None:
            assert process.poll() is None, log_path.read_text()[-3000:]
            return sign_in_line(log_path)

        match = wait_until(printed_sign_in, START_S, "the sign-in line")
        assert match is not None
        assert match["url"] == f"{bases[0]}/login" and match["name"] == DEMO_ADMIN
        text = log_path.read_text()
        for index, base in enumerate(bases):
            assert f"demo: node {node_ids[index]} at {base}" in text

        def every_node_answers() -> bool:
            assert process.poll() is None, log_path.read_text()[-3000:]
            try:
                return all(
                    httpx.get(f"{b}/api/health", timeout=5).status_code == 200 for b in bases
                )
            except httpx.TransportError:
                return False

        wait_until(every_node_answers, START_S, "the three nodes answer")
        # One database: the admin the demo made signs in on every node.
        for base in bases:
            with httpx.Client(base_url=base, timeout=10) as client:
                response = client.post(
                    "/api/auth/login", json={"name": DEMO_ADMIN, "password": match["password"]}
                )
                assert response.status_code == 200, (base, response.text)
                assert client.get("/api/cameras").status_code == 200

                def sees_all(client: httpx.Client = client) -> dict[str, Any] | None:
                    answer: dict[str, Any] = client.get("/api/cluster/nodes").json()
                    live = {n["id"]: n["url"] for n in answer["nodes"] if n["live"]}
                    return answer if len(live) == NODES else None

                # Each node sees the three (heartbeats in the one database), itself among them.
                answer = wait_until(sees_all, START_S, f"{base} lists three live nodes")
                assert answer is not None and answer["enabled"]
                assert {n["id"]: n["url"] for n in answer["nodes"]} == dict(
                    zip(node_ids, bases, strict=True)
                )
                assert [n["id"] for n in answer["nodes"] if n["this"]] == [answer["node"]]
                assert answer["node"] == node_ids[bases.index(base)]
        children = descendants(process.pid)
        serving = [p for p in children if b"\0serve\0" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(serving) == NODES, children
        config = Path(Path(f"/proc/{serving[0]}/cmdline").read_bytes().split(b"\0")[-2].decode())
        work_dir = config.parent
        assert (work_dir / "shared").is_dir() and config.stat().st_mode & 0o077 == 0
        pg_port = int(log_path.read_text().split("PostgreSQL on 127.0.0.1:")[1].split()[0])
        assert match["password"] not in config.read_text()

        # A node that dies is reported; the demo and the other nodes run on.
        victim = next(
            p for p in serving if b"node-c.yaml" in Path(f"/proc/{p}/cmdline").read_bytes()
        )
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: f"node node-c (pid {victim}) exited with status -9" in log_path.read_text(),
            30,
            "the dead node reported",
        )
        assert process.poll() is None
        assert httpx.get(f"{bases[0]}/api/health", timeout=10).status_code == 200

        process.send_signal(signal.SIGINT)  # the demo alone, as a terminal's Ctrl-C
        assert process.wait(STOP_S) == 0, log_path.read_text()[-3000:]
    finally:
        if process.poll() is None:
            # A failed test: the demo's own way out first (it stops the database, which
            # runs detached), then the whole group (the nodes are in the demo's group).
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()
    wait_until(lambda: not any(alive(p) for p in children), 10, "every child process gone")
    assert not work_dir.exists()
    try:
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{pg_port}/postgres", connect_timeout=5)
    except psycopg.OperationalError:
        pass
    else:
        raise AssertionError("the demo's PostgreSQL still runs")
    text = log_path.read_text()
    assert text.count("exited with status") == 1  # the one killed; the others were stopped
    assert "every node exited" not in text
    # Each node names itself on its lines, in UTC whatever the machine's zone.
    for node_id in node_ids:
        assert re.search(rf"^\d{{4}}-\d\d-\d\dT[\d:.]+Z \w+ +\[{node_id}\] ", text, re.M), node_id
    assert text.count(match["password"]) == 1  # printed once, never logged
