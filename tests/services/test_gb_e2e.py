"""End to end: simulated GB/T 28181 platforms register to a real node and their channels are
cameras like any other: catalog across pages, snapshots (INVITE on demand, BYE when idle),
PTZ, alarms, continuous recording and a clip into a case, keepalive loss and recovery, a
platform that stops sending (re-INVITE), and bad media (wrong SSRC, garbage RTP, no PSM).

Everything is real: the node (its SIP server, player, ingest, recorder, database) in
process under the ASGI test client, and the simulator's own SIP and PS-over-RTP code
(surveillance/simulator/gb_platform.py) on a loop of its own, over loopback sockets.
The tests run in order and share the node; each leaves the platforms without faults.
"""

from __future__ import annotations

import io
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import av
import pytest
from fastapi.testclient import TestClient

from surveillance.api.app import create_app
from surveillance.api.node import Node
from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from surveillance.gb28181 import ptz
from surveillance.simulator.gb_platform import GbChannelSpec, GbPlatformSimulator
from surveillance.simulator.gb_runner import GbPlatformThread
from tests.auth_helpers import bearer
from tests.waits import wait_until

pytestmark = pytest.mark.integration

OUR_ID = "34020000002000000001"
DOMAIN = "3402000000"
CITY_DEVICE = "34020000002000000002"
DEPOT_DEVICE = "34020000002000000003"
PASSWORD = "gb-Pa55word"
CITY_CHANNELS = 300  # 15 pages of 20
READ_TIMEOUT_S = 3.0
WAIT_S = 40.0  # generous: CI is a loaded 2-core machine


def channel_id(n: int) -> str:
    """A camera channel (type 131) id of the test domain: 10 + 3 + 7 digits."""
    return f"{DOMAIN}131{n:07d}"


def free_port_pair() -> int:
    """A port free for both UDP and TCP now (the SIP server binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise AssertionError("no free port pair")


def rtp_range() -> tuple[int, int]:
    base = free_port_pair() // 2 * 2
    base = min(base, 65000)
    return base, base + 40


@dataclass
class Rig:
    client: TestClient
    node: Node
    city: GbPlatformThread
    depot: GbPlatformThread

    @property
    def city_sim(self) -> GbPlatformSimulator:
        return self.city.simulator

    @property
    def depot_sim(self) -> GbPlatformSimulator:
        return self.depot.simulator

    def health(self, camera_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/cameras/{camera_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def state(self, camera_id: str) -> str:
        return str(self.health(camera_id)["health"]["state"])


CITY = f"city.{channel_id(0)}"
DEPOT = f"depot.{channel_id(900)}"


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    data_dir = tmp_path_factory.mktemp("gb-node")
    sip_port = free_port_pair()
    first, last = rtp_range()
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(data_dir)},
            "ingest": {
                "ring_seconds": 8,
                "stall_after_s": 1.0,
                "read_timeout_s": READ_TIMEOUT_S,
                "connect_timeout_s": 6.0,
                "backoff_initial_s": 0.2,
                "backoff_max_s": 1.0,
                "on_demand_idle_s": 2.0,
            },
            "recording": {"segment_s": 2},
            "platforms": [{"id": "town", "name": "Town"}],
            "cameras": [
                {
                    "id": "gate",
                    "name": "Gate",
                    "platform": "town",
                    "url": "rtsp://127.0.0.1:9/gate",
                    "mode": "on-demand",
                }
            ],
            "gb28181": {
                "enabled": True,
                "sip_id": OUR_ID,
                "domain": DOMAIN,
                "listen": "127.0.0.1",
                "sip_port": sip_port,
                "rtp_port_min": first,
                "rtp_port_max": last,
                "keepalive_interval_s": 1,
                "keepalive_missed": 3,
                "platforms": [
                    {
                        "id": "city",
                        "name": "City platform",
                        "device_id": CITY_DEVICE,
                        "password": PASSWORD,
                        "transport": "udp",
                    },
                    {
                        "id": "depot",
                        "name": "Bus depot NVR",
                        "device_id": DEPOT_DEVICE,
                        "password": PASSWORD,
                        "transport": "tcp-passive",
                        "recording": {"mode": "continuous"},
                    },
                ],
            },
        }
    )

    def simulator(device: str, channels: list[GbChannelSpec]) -> GbPlatformThread:
        return GbPlatformThread(
            GbPlatformSimulator(
                device_id=device,
                password=PASSWORD,
                server_host="127.0.0.1",
                server_port=sip_port,
                server_id=OUR_ID,
                domain=DOMAIN,
                channels=channels,
                keepalive_s=1,
                page_size=20,
            )
        )

    city_channels = [
        GbChannelSpec(channel_id(n), f"City camera {n}", clip="h264") for n in range(CITY_CHANNELS)
    ]
    app = create_app(config)
    with TestClient(app, base_url="http://localhost") as client:
        node: Node = app.state.node
        client.headers.update(bearer(node, "admin1", Role.ADMIN))
        city = simulator(CITY_DEVICE, city_channels)
        depot = simulator(DEPOT_DEVICE, [GbChannelSpec(channel_id(900), "Depot yard", clip="h264")])
        city.start()
        depot.start()
        try:
            yield Rig(client, node, city, depot)
        finally:
            city.stop()
            depot.stop()


def _gb_cameras(rig: Rig) -> list[dict[str, Any]]:
    response = rig.client.get("/api/cameras")
    assert response.status_code == 200
    return [c for c in response.json() if c["id"].startswith(("city.", "depot."))]


def test_registered_platforms_channels_become_cameras(rig: Rig) -> None:
    cameras = wait_until(
        lambda: (found := _gb_cameras(rig)) and len(found) == CITY_CHANNELS + 1 and found,
        WAIT_S,
        "every channel of both platforms in /api/cameras",
    )
    by_id = {c["id"]: c for c in cameras}
    assert by_id[CITY]["name"] == "City camera 0"
    assert (
        by_id[f"city.{channel_id(CITY_CHANNELS - 1)}"]["name"] == f"City camera {CITY_CHANNELS - 1}"
    )
    assert by_id[DEPOT]["name"] == "Depot yard"
    assert rig.city_sim.registered and rig.depot_sim.registered


def _jpeg_size(data: bytes) -> tuple[int, int]:
    with av.open(io.BytesIO(data)) as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


def test_snapshot_invites_on_demand_and_byes_when_idle(rig: Rig) -> None:
    invites, byes = rig.city_sim.invites, rig.city_sim.byes
    response = rig.client.get(f"/api/cameras/{CITY}/snapshot.jpg")
    assert response.status_code == 200, response.text
    assert _jpeg_size(response.content) == (640, 360)
    assert rig.city_sim.invites == invites + 1
    player = rig.node.gb_player
    assert player is not None
    [session] = player.streams("city")
    assert session.camera_id == CITY and session.transport == "udp"
    # Nobody watches (the snapshot's warm decoder lets go after 15 s): after
    # on_demand_idle_s the stream parks and its dialog ends with BYE.
    wait_until(
        lambda: not player.streams("city") and rig.state(CITY) == "idle",
        WAIT_S,
        "the city stream parked, its session gone",
    )
    assert rig.city_sim.byes - byes == rig.city_sim.invites - invites >= 1
    assert player.ports_in_use == len(player.streams())  # the depot's, recording


def test_ptz_reaches_the_channel_and_is_audited(rig: Rig) -> None:
    answer = rig.client.post(
        f"/api/cameras/{CITY}/ptz", json={"pan": 0.5, "tilt": -0.25, "zoom": 0}
    )
    assert answer.status_code == 204, answer.text
    answer = rig.client.post(
        f"/api/cameras/{CITY}/ptz", json={"preset": {"action": "goto", "number": 7}}
    )
    assert answer.status_code == 204, answer.text
    assert rig.city_sim.ptz_commands[-2:] == [
        (channel_id(0), ptz.ptz_command(pan=0.5, tilt=-0.25, zoom=0)),
        (channel_id(0), ptz.preset_command("goto", 7)),
    ]
    refused = rig.client.post("/api/cameras/gate/ptz", json={"pan": 1, "tilt": 0, "zoom": 0})
    assert refused.status_code == 409 and "not a GB/T 28181 channel" in refused.json()["detail"]
    both = rig.client.post(
        f"/api/cameras/{CITY}/ptz", json={"pan": 1, "preset": {"action": "set", "number": 1}}
    )
    assert both.status_code == 422

    def audited() -> list[dict[str, Any]]:
        answer = rig.client.get("/api/audit", params={"action": "camera.ptz"})
        found: list[dict[str, Any]] = answer.json()["entries"]
        return found if len(found) == 3 else []

    entries = wait_until(audited, WAIT_S, "three camera.ptz entries (written in the background)")
    assert {e["camera_id"] for e in entries} == {CITY, "gate"}
    assert {e["outcome"] for e in entries if e["camera_id"] == "gate"} == {"failed"}


def test_alarm_notification_becomes_an_event_on_its_camera(rig: Rig) -> None:
    rig.city.call(lambda: rig.city_sim.send_alarm(channel_id(0), 1, 5, "intruder at the fence"))

    def found() -> list[dict[str, Any]]:
        events = rig.client.get("/api/events", params={"type": "device.alarm"}).json()["events"]
        return [e for e in events if e["camera_id"] == CITY]

    [event] = wait_until(found, WAIT_S, "a device.alarm event on the channel's camera")
    assert event["severity"] == "alarm" and "intruder at the fence" in event["summary"]


def _recorded_s(rig: Rig, camera: str) -> float:
    now = time.time()
    spans = rig.client.get(
        f"/api/cameras/{camera}/recordings", params={"from": _iso(now - 600), "to": _iso(now)}
    ).json()["spans"]
    return sum(_epoch(s["end"]) - _epoch(s["start"]) for s in spans)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_platform_recording_and_a_clip_into_a_case(rig: Rig) -> None:
    """The depot platform records continuously (its channel over TCP passive media)."""
    wait_until(lambda: _recorded_s(rig, DEPOT) >= 4, WAIT_S, "4 s of the depot recorded")
    [session] = rig.node.gb_player.streams("depot")
    assert session.transport == "tcp-passive"
    case = rig.client.post("/api/cases", json={"title": "GB clip", "cameras": [DEPOT]})
    assert case.status_code == 201, case.text
    number = case.json()["number"]
    clip = rig.client.post(
        f"/api/cases/{number}/items/clip", json={"camera": DEPOT, "pre_s": 3, "post_s": 0.5}
    )
    assert clip.status_code == 201, clip.text
    item = clip.json()
    assert item["camera"] == DEPOT and item["kind"] == "clip" and len(item["sha256"]) == 64


def test_stop_media_stalls_then_a_new_invite_recovers(rig: Rig) -> None:
    """A platform that stops sending while the dialog stays: stalled, BYE after the read
    time-out, a new INVITE (which streams again), online."""
    wait_until(lambda: rig.state(DEPOT) == "online", WAIT_S, "the depot online")
    invites, byes = rig.depot_sim.invites, rig.depot_sim.byes
    rig.depot.fault("stop-media")
    try:
        wait_until(lambda: rig.state(DEPOT) == "stalled", WAIT_S, "the depot stalled")
        wait_until(lambda: rig.depot_sim.invites > invites, WAIT_S, "a new INVITE")
        assert rig.depot_sim.byes > byes  # the silent dialog was ended
    finally:
        rig.depot.fault("reset")
    wait_until(lambda: rig.state(DEPOT) == "online", WAIT_S, "the depot online again")


def test_keepalive_loss_marks_channels_offline_and_recovery_brings_them_back(rig: Rig) -> None:
    rig.city.fault("stop-keepalive")
    try:
        wait_until(lambda: rig.state(CITY) == "offline", WAIT_S, "the city channel offline")
        reason = rig.health(CITY)["health"]["last_error"] or ""
        assert "keepalive" in reason, reason
        refused = rig.client.get(f"/api/cameras/{CITY}/snapshot.jpg")
        assert refused.status_code == 503 and "keepalive" in refused.json()["detail"]
    finally:
        rig.city.fault("resume-keepalive")
    wait_until(lambda: rig.state(CITY) == "idle", WAIT_S, "the city channel reachable again")
    again = rig.client.get(f"/api/cameras/{CITY}/snapshot.jpg")
    assert again.status_code == 200, again.text


def test_bad_media_is_dropped_logged_and_never_sticks(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """Wrong SSRC: every packet dropped, no picture, said so; garbage RTP between the real
    packets and PS without a stream map: the picture still comes. After each, the channel
    plays normally again."""
    caplog.set_level(logging.WARNING, logger="surveillance.media.gb_worker")
    camera = f"city.{channel_id(1)}"
    rig.city.fault("wrong-ssrc")
    try:
        refused = rig.client.get(f"/api/cameras/{camera}/snapshot.jpg")
        assert refused.status_code == 503
        assert any("another SSRC" in r.getMessage() for r in caplog.records)
    finally:
        rig.city.fault("reset")
    for fault, camera in (("garbage-rtp", channel_id(2)), ("no-psm", channel_id(3))):
        rig.city.fault(fault)
        try:
            answer = rig.client.get(f"/api/cameras/city.{camera}/snapshot.jpg")
            assert answer.status_code == 200, (fault, answer.text)
            assert _jpeg_size(answer.content) == (640, 360)
        finally:
            rig.city.fault("reset")
    assert any("malformed RTP" in r.getMessage() for r in caplog.records)
    # A stream that was playing when the faults came (the first channel's, kept warm by the
    # snapshots before) recovers too.
    wait_until(
        lambda: rig.client.get(f"/api/cameras/{CITY}/snapshot.jpg").status_code == 200,
        WAIT_S,
        "the first channel's snapshot again",
    )


def test_a_platform_going_away_ends_its_plays_with_bye(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """Last: the city platform stops (it BYEs its plays, then de-registers). Its BYE ends
    the session at once (RFC 3261 s.15.1.2): over UDP nothing else would tell the node
    before the read time-out."""
    caplog.set_level(logging.INFO, logger="surveillance.services.gb_play")
    camera = f"city.{channel_id(5)}"
    assert rig.client.get(f"/api/cameras/{camera}/snapshot.jpg").status_code == 200
    player = rig.node.gb_player
    assert player is not None
    assert camera in {s.camera_id for s in player.streams("city")}
    rig.city.stop()
    wait_until(lambda: not player.streams("city"), WAIT_S, "the city's sessions ended")
    ended = [r.getMessage() for r in caplog.records if "ended the stream (BYE)" in r.getMessage()]
    assert any(camera in message for message in ended), ended
    assert not any("BYE refused" in r.getMessage() for r in caplog.records)
