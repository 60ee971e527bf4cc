"""`surveillance demo` on a machine with no cameras: the API serves simulated cameras online.

Runs the real command as a subprocess (simulator process + uvicorn), as a user would.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from surveillance.auth.roles import Role
from surveillance.auth.store import AuthStore
from surveillance.config.models import AppConfig
from surveillance.db import create_db_engine, database_url, upgrade
from surveillance.demo import DEMO_ADMIN, demo_admin
from tests.conftest import CLIP_CACHE

SETTLE_S = 20.0  # how long a camera may take to come online once the API answers
SIGN_IN_LINE = re.compile(
    r"^demo: sign in at (?P<url>http://\S+/login) as (?P<name>\S+) "
    r"with password (?P<password>\S+) \(made for this run\)$",
    re.MULTILINE,
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def simulator_pids(parent: int | None = None) -> set[int]:
    """Running simulator processes; with ``parent``, only that process's children.

    Other simulators come and go on the same machine meanwhile (other test workers' session
    fixtures, other users): the demo's own are told apart as its children while it runs,
    and then watched by pid.
    """
    command = ["pgrep", "-f", "gst_server.py"]
    if parent is not None:
        command[1:1] = ["-P", str(parent)]
    found = subprocess.run(command, capture_output=True, text=True)
    return {int(pid) for pid in found.stdout.split()}


def sign_in_line(log: Path) -> re.Match[str] | None:
    return SIGN_IN_LINE.search(log.read_text())


@pytest.mark.rtsp
def wait_for_recording(client: httpx.Client, camera_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 20
    while True:
        recording: dict[str, object] = client.get(f"/api/cameras/{camera_id}").json()["recording"]
        if recording["state"] == "recording" or time.monotonic() > deadline:
            return recording
        time.sleep(0.5)


def test_demo_serves_simulated_cameras_online(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "surveillance.cli", "demo", "--cameras", "5",
               "--port", str(port), "--cache-dir", str(CLIP_CACHE / "demo"),
               # A node of its own: the cached clips are shared, a database is not.
               "--data-dir", str(tmp_path / "data")]  # fmt: skip
    log_path = tmp_path / "demo.log"
    log = log_path.open("w+")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ
    )
    base = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=base, timeout=10)
    try:
        deadline = time.monotonic() + 150  # first run generates the demo clips
        cameras: list[dict[str, object]] = []
        api_up: float | None = None
        signed_in = False
        while time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            try:
                if not signed_in:
                    signed_in = _sign_in(client, log_path, base)
                    if not signed_in:
                        time.sleep(0.5)
                        continue
                response = client.get("/api/cameras")
            except httpx.TransportError:
                time.sleep(0.5)
                continue
            assert response.status_code == 200, response.text
            cameras = response.json()
            api_up = api_up or time.monotonic()
            settled = all(c["state"] in ("online", "stalled") for c in cameras)
            if cameras and (
                all(c["state"] == "online" for c in cameras)
                or (settled and time.monotonic() - api_up > SETTLE_S)
            ):
                break
            time.sleep(0.5)
        own_simulators = simulator_pids(parent=process.pid)
        assert own_simulators, "the demo runs no simulator process"
        assert len(cameras) == 5
        states = {c["id"]: c["state"] for c in cameras}
        # The simulator occasionally opens a session that never sends video (see the note
        # in tests/conftest.py); the service must then say so. Everything else is online.
        online = [camera for camera, state in states.items() if state == "online"]
        assert len(online) >= 4, states
        for camera in cameras:
            if camera["state"] != "online":
                assert camera["state"] == "stalled", states
                assert camera["health"]["last_error"], camera  # type: ignore[index]
        assert all(c["has_sub_stream"] for c in cameras)
        codecs = {c["health"]["codec"] for c in cameras}  # type: ignore[index]
        assert codecs == {"h264", "hevc"}
        platforms = client.get("/api/platforms").json()
        assert isinstance(platforms, list) and len(platforms) == 3
        response = client.get("/api/cameras/cam1/snapshot.jpg")
        assert response.headers["Content-Type"] == "image/jpeg"
        assert response.content[:2] == b"\xff\xd8"
        # The demo records every camera: an online one is recording within a segment's
        # first fragment or so.
        recording = wait_for_recording(client, online[0])
        assert recording["state"] == "recording", recording
        # There is no way in without the password: the same requests, anonymous, are refused.
        assert httpx.get(f"{base}/api/cameras", timeout=10).status_code == 401
        assert httpx.get(f"{base}/api/health", timeout=10).status_code == 200
        # The password is in the printed line only, never in a log line.
        match = sign_in_line(log_path)
        assert match is not None
        assert log_path.read_text().count(match["password"]) == 1
    finally:
        client.close()
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
    # The simulator is a child of the demo: it must be gone too.
    deadline = time.monotonic() + 5
    while simulator_pids() & own_simulators and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not simulator_pids() & own_simulators, "the demo left its simulator running"


def _sign_in(client: httpx.Client, log: Path, base: str) -> bool:
    """Sign in as the printed line says, once the line is there and the service answers."""
    match = sign_in_line(log)
    if match is None:
        return False
    assert match["url"] == f"{base}/login" and match["name"] == DEMO_ADMIN
    assert client.get("/login").status_code == 200
    response = client.post(
        "/api/auth/login", json={"name": match["name"], "password": match["password"]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "admin"
    return True


def test_each_demo_run_makes_a_new_admin_password(tmp_path: Path) -> None:
    config = AppConfig.model_validate({"server": {"data_dir": str(tmp_path / "data")}})
    first = demo_admin(config)
    second = demo_admin(config)
    assert first != second and len(second) >= 16
    engine = create_db_engine(database_url(config))
    try:
        upgrade(engine)
        store = AuthStore(engine)
        user = store.check_password(DEMO_ADMIN, second)
        assert user is not None and user.role is Role.ADMIN and not user.scope.limited
        assert store.check_password(DEMO_ADMIN, first) is None  # last run's is gone
        assert [u.name for u in store.users()] == [DEMO_ADMIN]
    finally:
        engine.dispose()
