"""The service under test, run the way users run it: ``surveillance serve --config FILE``."""

from __future__ import annotations

import http.client
import json
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.procs import Children, python_env

HOST = "127.0.0.1"
HTTP_TIMEOUT_S = 30.0  # one request; a snapshot of a cold camera may take seconds
POLL_S = 0.5
LOG_TAIL_CHARS = 3000


class ServiceError(RuntimeError):
    """The service did not start or did not answer."""


@dataclass(frozen=True)
class CameraEntry:
    id: str
    url: str
    on_demand: bool = False  # connected only while something (a snapshot) uses it


def free_port() -> int:
    """A TCP port that is free on the loopback now (the service binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(path: Path, cameras: Sequence[CameraEntry], data_dir: Path, port: int) -> None:
    """A service configuration with one platform and these cameras, everything else default."""
    config = {
        "server": {"host": HOST, "port": port, "data_dir": str(data_dir)},
        "platforms": [{"id": "bench", "name": "Benchmark simulator"}],
        "cameras": [
            {
                "id": camera.id,
                "name": f"Benchmark camera {camera.id}",
                "platform": "bench",
                "url": camera.url,
                "mode": "on-demand" if camera.on_demand else "always-on",
            }
            for camera in cameras
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


class Http:
    """A keep-alive HTTP/1.1 client for one loopback port (stdlib only, so timings are lean)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._conn: http.client.HTTPConnection | None = None

    def get(self, path: str) -> tuple[int, bytes]:
        # One retry on a fresh connection: the server may have closed an idle keep-alive one.
        for attempt in range(2):
            conn = self._conn or http.client.HTTPConnection(HOST, self.port, timeout=HTTP_TIMEOUT_S)
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                self._conn = None
                if attempt == 1:
                    raise
                continue
            self._conn = conn
            return response.status, body
        raise AssertionError("unreachable")

    def get_json(self, path: str) -> Any:
        status, body = self.get(path)
        if status != 200:
            raise ServiceError(f"GET {path}: HTTP {status}: {body[:200]!r}")
        return json.loads(body)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class ServiceProcess:
    """``surveillance serve`` in its own process, with its log kept for error messages."""

    def __init__(self, children: Children, config: Path, port: int, log: Path) -> None:
        self._children = children
        self._log = log
        self.port = port
        self.http = Http(port)
        self.proc = children.spawn(_serve_command(config, port), log=log, env=python_env())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        self.http.close()
        self._children.stop([self.proc])

    def log_tail(self) -> str:
        try:
            return self._log.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL_CHARS:]
        except FileNotFoundError:
            return "(no log)"

    def wait_ready(self, timeout_s: float) -> float:
        """Wait until the HTTP API answers; returns the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.proc.poll() is not None:
                raise ServiceError(
                    f"the service exited with status {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                status, _ = self.http.get("/api/health")
            except OSError:
                status = 0
            if status == 200:
                return time.monotonic() - started
            time.sleep(0.2)
        raise ServiceError(f"the service did not answer within {timeout_s:g} s")

    def online_count(self) -> int:
        health = self.http.get_json("/api/health")
        return int(health["cameras_online"])

    def wait_online(self, expected: int, timeout_s: float) -> tuple[int, float]:
        """Poll until ``expected`` cameras are online or time is up: (online, seconds waited)."""
        started = time.monotonic()
        online = self.online_count()
        while online < expected and time.monotonic() - started < timeout_s:
            time.sleep(POLL_S)
            online = self.online_count()
        return online, time.monotonic() - started

    def cameras(self) -> list[dict[str, Any]]:
        cameras: list[dict[str, Any]] = self.http.get_json("/api/cameras")
        return cameras


def _serve_command(config: Path, port: int) -> list[str]:
    return [*serve_prefix(), "--config", str(config), "--host", HOST, "--port", str(port)]


def serve_prefix() -> tuple[str, ...]:
    """The console script users run; it execs Python directly, so its pid is the service's
    pid (no wrapper shell whose CPU would read as zero)."""
    return (str(Path(sys.executable).with_name("surveillance")), "serve")


@dataclass(frozen=True)
class RingFigures:
    online: int
    ring_mb: float  # mean over online cameras
    ring_seconds: float  # mean span of the rings


def ring_figures(cameras: list[dict[str, Any]], exclude: Sequence[str] = ()) -> RingFigures:
    online = [c for c in cameras if c["state"] == "online" and c["id"] not in exclude]
    if not online:
        return RingFigures(0, 0.0, 0.0)
    ring_bytes = sum(int(c["health"]["ring_bytes"]) for c in online) / len(online)
    ring_seconds = sum(float(c["health"]["ring_seconds"]) for c in online) / len(online)
    return RingFigures(len(online), ring_bytes / (1024 * 1024), ring_seconds)
