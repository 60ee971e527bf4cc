"""`surveillance demo` refuses a busy port before anything starts or is printed, and the
cluster demo tells a node's clean stop from a failure (real commands and processes)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from surveillance.demo_cluster import DemoNode, NodeProcesses
from surveillance.demo_onvif import DEMO_ONVIF_WSD_PORT
from tests.conftest import CLIP_CACHE

TIMEOUT_S = 60


def _demo(*options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "surveillance.cli", "demo", *options,
               "--cache-dir", str(CLIP_CACHE / "demo")]  # fmt: skip
    return subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT_S, env=os.environ, check=False
    )


def _listening_after_a_free_port() -> socket.socket:
    """A listener on a port whose port below is free (for a second node's port)."""
    for _ in range(50):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        with socket.socket() as below:
            try:
                below.bind(("127.0.0.1", int(listener.getsockname()[1]) - 1))
            except OSError:
                listener.close()
                continue
        listener.listen()
        return listener
    raise AssertionError("no free port below a free port")


def test_a_busy_port_is_one_line_before_any_url_or_password() -> None:
    with _listening_after_a_free_port() as listener:
        busy = int(listener.getsockname()[1])
        # The second node's port taken (the first is free), and the one-node demo's.
        for options in (("--nodes", "2", "--port", str(busy - 1)), ("--port", str(busy))):
            done = _demo(*options)
            assert done.returncode == 2, done
            assert done.stdout == "", done.stdout  # no sign-in line, no node URLs
            errors = [line for line in done.stderr.splitlines() if " INFO " not in line]
            assert errors == [
                f"demo: port {busy} on 127.0.0.1 is in use by another program; "
                "choose free ones with --port"
            ], done.stderr
            assert "PostgreSQL on" not in done.stderr and "preparing" not in done.stderr


def test_a_busy_onvif_camera_port_is_one_line_before_any_password() -> None:
    # The second ONVIF camera's WS-Discovery port, on a subnet of this test's own (the demo
    # test's cameras, or a demo someone runs, use others).
    subnet = "127.0.92"
    address = f"{subnet}.2"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind((address, DEMO_ONVIF_WSD_PORT))
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            port = int(free.getsockname()[1])
        done = _demo("--port", str(port), "--onvif-subnet", subnet)
    assert done.returncode == 2, done
    assert done.stdout == "", done.stdout  # no sign-in line, no ONVIF password
    errors = [line for line in done.stderr.splitlines() if " INFO " not in line]
    assert errors == [
        f"demo: {address}:{DEMO_ONVIF_WSD_PORT}/udp (the ONVIF cameras') in use by another program"
    ], done.stderr
    assert "preparing" not in done.stderr
    refused = _demo("--onvif-subnet", "10.0.0")
    assert refused.returncode == 2 and "--onvif-subnet" in refused.stderr, refused


def _node(node_id: str) -> DemoNode:
    return DemoNode(node_id, "http://127.0.0.1:1", 1, Path("unused.yaml"))


def test_a_clean_stop_is_no_error_and_a_failure_is(caplog: pytest.LogCaptureFixture) -> None:
    # Real child processes standing in for nodes: what is watched is only how they exit.
    processes = NodeProcesses([_node("node-a"), _node("node-b")])
    for node_id in ("node-a", "node-b"):
        processes.children[node_id] = subprocess.Popen([sys.executable, "-c", "pass"])
    with caplog.at_level(logging.INFO, "surveillance.demo_cluster"):
        assert processes.watch() == 0
    assert [r.levelname for r in caplog.records] == ["INFO", "INFO", "INFO"]
    assert "every node stopped" in caplog.records[-1].getMessage()
    caplog.clear()
    failing = NodeProcesses([_node("node-a"), _node("node-b")])
    failing.children["node-a"] = subprocess.Popen([sys.executable, "-c", "pass"])
    failing.children["node-b"] = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    # Nodes that died leave the demo up (nodes started again by hand may use its database)
    # until Ctrl-C: a real SIGINT to this process, a second after they are gone.
    # (Python's own SIGINT handler for the while: a pytest-xdist worker ignores SIGINT.)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupt = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    interrupt.start()
    try:
        with caplog.at_level(logging.INFO, "surveillance.demo_cluster"):
            assert failing.watch() == 0
    finally:
        interrupt.join()
        signal.signal(signal.SIGINT, previous)
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    errors = [message for level, message in said if level == "ERROR"]
    assert len(errors) == 1 and errors[0].startswith("demo: node node-b (pid ")
    assert "status 3" in errors[0] and "serve --config unused.yaml" in errors[0]
    assert ("WARNING", "demo: every node it started has exited; the database and the "
            "simulator stay up until Ctrl-C") in said  # fmt: skip
    assert said[-1] == ("INFO", "demo: stopping the nodes")
