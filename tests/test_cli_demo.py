"""`surveillance demo` on a machine with no cameras: the API serves simulated cameras online.

Runs the real command as a subprocess (simulator process + uvicorn), as a user would.
"""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from surveillance.auth.roles import Role
from surveillance.auth.store import AuthStore
from surveillance.config.models import AppConfig
from surveillance.db import create_db_engine, database_url, upgrade
from surveillance.demo import (
    DEMO_ADMIN,
    DEMO_GB_CHANNELS,
    DEMO_GB_PLATFORM,
    DEMO_GB_RTP_PORTS,
    DEMO_PLATFORMS,
    demo_admin,
    demo_gb,
    demo_gb_config,
)
from surveillance.demo_onvif import DEMO_ONVIF_CAMERAS
from tests.conftest import CLIP_CACHE
from tests.waits import wait_until

SETTLE_S = 20.0  # how long a camera may take to come online once the API answers
GB_WAIT_S = 60.0  # the county platform registers, its catalog is read, a channel plays
# The tags the demo's tag rules give each GB channel (by business group or civil code).
GB_TAGS = {
    "33052300001320000001": ["traffic"],
    "33052300001320000002": ["traffic"],
    "33052300001310000003": ["forest-fire"],
    "33052300001320000004": ["forest-fire"],
    "33052300001320000005": ["school-gate", "public-order"],
    "33052300001320000006": ["geological-hazard"],
}
H265_CHANNEL = f"{DEMO_GB_PLATFORM}.33052300001320000002"
ONVIF_LINE = re.compile(
    r"^demo: ONVIF PTZ cameras on \S+: discover (?P<range>\S+) as (?P<name>\S+) "
    r"with password (?P<password>\S+)$",
    re.MULTILINE,
)
ONVIF_IDS = {camera_id for camera_id, *_ in DEMO_ONVIF_CAMERAS}
# Not the default 127.0.90: a demo someone runs on the same machine may hold its ports, and
# the refusal test (tests/test_cli_demo_refusals.py) holds one of 127.0.92's.
ONVIF_SUBNET = "127.0.91"
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
               "--data-dir", str(tmp_path / "data"), "--onvif-subnet", ONVIF_SUBNET]  # fmt: skip
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
            # The simulated RTSP cameras; the GB platform's channels and the ONVIF PTZ
            # cameras are checked below.
            cameras = [
                c for c in response.json()
                if c["platform"] != DEMO_GB_PLATFORM and c["id"] not in ONVIF_IDS
            ]  # fmt: skip
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
        online = [str(camera) for camera, state in states.items() if state == "online"]
        assert len(online) >= 4, states
        for camera in cameras:
            if camera["state"] != "online":
                assert camera["state"] == "stalled", states
                assert camera["health"]["last_error"], camera  # type: ignore[index]
        assert all(c["has_sub_stream"] for c in cameras)
        codecs = {c["health"]["codec"] for c in cameras}  # type: ignore[index]
        assert codecs == {"h264", "hevc"}
        platforms = client.get("/api/platforms").json()
        assert isinstance(platforms, list)
        # The three RTSP platforms, and the GB/T 28181 county platform.
        assert {p["id"]: p["vendor"] for p in platforms} == {
            **{platform_id: None for platform_id, _ in DEMO_PLATFORMS},
            DEMO_GB_PLATFORM: "GB/T 28181",
        }
        response = client.get("/api/cameras/cam1/snapshot.jpg")
        assert response.headers["Content-Type"] == "image/jpeg"
        assert response.content[:2] == b"\xff\xd8"
        # The demo records every camera: an online one is recording within a segment's
        # first fragment or so.
        recording = wait_for_recording(client, online[0])
        assert recording["state"] == "recording", recording
        _check_gb_platform(client)
        _check_onvif_cameras(client, log_path)
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
    # On the way out the county platform de-registered, and the node heard it.
    text = log_path.read_text()
    assert re.search(rf"GB platform {DEMO_GB_PLATFORM} \(\S+\) unregistered", text), text[-3000:]


def _check_gb_platform(client: httpx.Client) -> None:
    """The demo's GB/T 28181 county platform registered, its channels are cameras with the
    tag rules' tags, and one (H.265) plays on demand: its snapshot is a decoded picture."""

    def registered() -> list[dict[str, object]]:
        [platform] = client.get("/api/gb/platforms").json()
        return [platform] if platform["online"] and platform["channels"] == 6 else []

    [platform] = wait_until(registered, GB_WAIT_S, "the GB platform registered, 6 channels")
    assert platform["platform_id"] == DEMO_GB_PLATFORM and platform["transport"] == "udp"

    def gb_cameras() -> list[dict[str, object]]:
        found = [c for c in client.get("/api/cameras").json() if c["platform"] == DEMO_GB_PLATFORM]
        return found if len(found) == len(GB_TAGS) else []

    cameras = wait_until(gb_cameras, GB_WAIT_S, "the GB channels are cameras")
    by_channel = {str(c["id"]).removeprefix(f"{DEMO_GB_PLATFORM}."): c for c in cameras}
    assert {k: c["tags"] for k, c in by_channel.items()} == GB_TAGS
    names = {c.channel_id: c.name for c in DEMO_GB_CHANNELS}
    assert {k: c["name"] for k, c in by_channel.items()} == names
    assert "递铺收费站" in str(by_channel["33052300001320000002"]["name"])
    # GCJ-02 from the platform, WGS-84 on the map: a few hundred metres apart.
    location = by_channel["33052300001310000003"]["location"]
    assert isinstance(location, dict)
    assert 0.001 < abs(location["lon"] - 119.4321) < 0.01, location
    # Not recorded, on demand: nothing plays before somebody asks.
    assert {c["recording"]["state"] for c in cameras} == {"off"}  # type: ignore[index]

    def snapshot() -> bytes:
        response = client.get(f"/api/cameras/{H265_CHANNEL}/snapshot.jpg", timeout=30)
        return response.content if response.status_code == 200 else b""

    jpeg = wait_until(snapshot, GB_WAIT_S, "a snapshot of the H.265 GB channel")
    with av.open(io.BytesIO(jpeg), mode="r") as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (640, 360)
    camera = client.get(f"/api/cameras/{H265_CHANNEL}").json()
    assert camera["health"]["codec"] == "hevc", camera


def _check_onvif_cameras(client: httpx.Client, log: Path) -> None:
    """The two simulated ONVIF PTZ cameras come online as cameras the wall can steer, and
    the admin's discovery of their /24 finds both, inspected with the printed password,
    as cameras the catalog already has."""

    def online() -> list[dict[str, object]]:
        found = [c for c in client.get("/api/cameras").json() if c["id"] in ONVIF_IDS]
        return found if all(c["state"] == "online" for c in found) else []

    cameras = wait_until(online, SETTLE_S * 3, "the ONVIF PTZ cameras online")
    assert {c["id"] for c in cameras} == ONVIF_IDS
    assert all(c["ptz"] is True and c["has_sub_stream"] for c in cameras), cameras
    match = ONVIF_LINE.search(log.read_text())
    assert match is not None and match["range"] == f"{ONVIF_SUBNET}.0/24"
    body = {"targets": [match["range"]], "multicast": False, "username": match["name"],
            "password": match["password"]}  # fmt: skip
    # Signed in with a session cookie: a write carries its CSRF token, as the pages send it.
    csrf = {"X-CSRF-Token": client.cookies["surveillance_csrf"]}
    response = client.post("/api/onvif/discovery", json=body, headers=csrf)
    assert response.status_code == 202, response.text
    run_id = response.json()["id"]

    def done() -> dict[str, Any]:
        run: dict[str, Any] = client.get(f"/api/onvif/discovery/{run_id}").json()
        return run if run["state"] == "done" else {}

    run = wait_until(done, 60, "the discovery of the demo's ONVIF cameras")
    hosts = {httpx.URL(d["device_url"]).host: d for d in run["devices"]}
    found = {host: d for host, d in hosts.items() if host.startswith(f"{ONVIF_SUBNET}.")}
    assert sorted(found) == [f"{ONVIF_SUBNET}.1", f"{ONVIF_SUBNET}.2"], run
    assert {d["outcome"] for d in found.values()} == {"ok"}, found
    assert {(d["catalog_status"], d["camera_id"]) for d in found.values()} == {
        ("same", camera_id) for camera_id in ONVIF_IDS
    }, found
    assert match["password"] not in response.text + str(run)


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


def test_demo_gb_password_is_new_each_run_and_kept_secret() -> None:
    first, second = demo_gb(), demo_gb()
    assert first.password != second.password and len(second.password) >= 20
    assert second.password not in repr(second)
    config = AppConfig.model_validate({"gb28181": demo_gb_config(second)})
    gb = config.gb28181
    assert gb.enabled and gb.listen == gb.media_host == "127.0.0.1"
    assert gb.sip_port == second.sip_port
    assert (gb.rtp_port_min, gb.rtp_port_max) == DEMO_GB_RTP_PORTS
    [platform] = gb.platforms
    assert platform.password.get_secret_value() == second.password
    assert second.password not in config.model_dump_json()
