"""The service under test, run the way users run it: ``surveillance serve --config FILE``.

Every route but ``/api/health`` needs a signed-in user, and there is no default account,
so each run makes its own, as an operator would: :func:`create_bench_credentials` runs
``surveillance user add`` (an admin with a random password, on stdin) and ``surveillance
token create`` on the configuration before the service starts. HTTP clients send the token
(``Authorization: Bearer svt_...``); browsers sign in with the name and password.
"""

from __future__ import annotations

import http.client
import json
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.procs import Children, python_env

HOST = "127.0.0.1"
HTTP_TIMEOUT_S = 30.0  # one request; a snapshot of a cold camera may take seconds
POLL_S = 0.5
LOG_TAIL_CHARS = 3000
BENCH_USER = "bench"
BENCH_TOKEN_LABEL = "benchmark"
CLI_TIMEOUT_S = 120.0  # migrations on a fresh database, then one argon2 hash


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


@dataclass(frozen=True)
class BenchCredentials:
    """The benchmark's own admin: name and password for browsers, an API token for HTTP."""

    name: str
    password: str = field(repr=False)
    token: str = field(repr=False)

    def headers(self) -> dict[str, str]:
        """The header that authenticates an API request as this user."""
        return {"Authorization": f"Bearer {self.token}"}


def create_bench_credentials(config: Path, name: str = BENCH_USER) -> BenchCredentials:
    """An admin ``name`` and an API token for it, made with the real command line on the
    database of ``config``; run it after writing the config and before ``serve``."""
    password = secrets.token_urlsafe(16)
    _surveillance_cli(
        ["user", "add", name, "--role", "admin", "--config", str(config)], stdin=password + "\n"
    )
    token = _surveillance_cli(
        ["token", "create", name, "--label", BENCH_TOKEN_LABEL, "--config", str(config)]
    ).strip()
    if not token.startswith("svt_"):
        raise ServiceError(f"surveillance token create printed no token for {name}")
    return BenchCredentials(name, password, token)


def _surveillance_cli(args: Sequence[str], stdin: str = "") -> str:
    """Run ``surveillance ARGS``; its stdout, or ServiceError with its stderr."""
    command = [_console_script(), *args]
    done = subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        text=True,
        env=python_env(),
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise ServiceError(
            f"surveillance {' '.join(args[:2])} exited with status {done.returncode}: "
            f"{done.stderr.strip()[-LOG_TAIL_CHARS:]}"
        )
    return done.stdout


class Http:
    """A keep-alive HTTP/1.1 client for one loopback port (stdlib only, so timings are lean).

    With ``token``, every request carries it (``Authorization: Bearer``).
    """

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port = port
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._conn: http.client.HTTPConnection | None = None

    def get(self, path: str) -> tuple[int, bytes]:
        status, body, _ = self.get_with_headers(path)
        return status, body

    def get_with_headers(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        """Status, body and headers (names in lower case)."""
        # One retry on a fresh connection: the server may have closed an idle keep-alive one.
        for attempt in range(2):
            conn = self._conn or http.client.HTTPConnection(HOST, self.port, timeout=HTTP_TIMEOUT_S)
            try:
                conn.request("GET", path, headers=self._headers)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                self._conn = None
                if attempt == 1:
                    raise
                continue
            self._conn = conn
            headers = {k.lower(): v for k, v in response.getheaders()}
            return response.status, body, headers
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
    """``surveillance serve`` in its own process, with its log kept for error messages.

    Before it starts, the benchmark's user and token are made on its configuration
    (:func:`create_bench_credentials`); ``credentials`` holds them and ``http`` sends the
    token.
    """

    def __init__(self, children: Children, config: Path, port: int, log: Path) -> None:
        self._children = children
        self._log = log
        self.port = port
        self.credentials = create_bench_credentials(config)
        self.http = Http(port, self.credentials.token)
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
    return (_console_script(), "serve")


def _console_script() -> str:
    return str(Path(sys.executable).with_name("surveillance"))


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
