"""Camera clocks against real simulated ONVIF devices (surveillance/simulator/onvif_fleet.py)
and the real app: a camera whose clock runs 7 s ahead shows it in its health, flagged, with
one camera.clock warning; a camera on time is not flagged; an evidence item made from the
skewed camera records the offset, in the API, and in the exported bundle's manifest."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from surveillance.api.app import create_app
from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from surveillance.simulator import Simulator
from surveillance.simulator.onvif_fleet import OnvifFleet
from tests.auth_helpers import bearer
from tests.onvif_net import test_subnet
from tests.waits import wait_until

pytestmark = [pytest.mark.rtsp, pytest.mark.integration]

SKEW_S = 7.0
WARN_S = 2.0
WAIT_S = 45.0  # generous: a loaded two-core CI machine
FIRST_HOST = 121  # hosts of this module's devices on the worker's subnet


@pytest.fixture(scope="module")
def fleet() -> Iterator[OnvifFleet]:
    # The devices' own pictures are not needed: the cameras stream from the RTSP simulator.
    with OnvifFleet.on_subnet(
        test_subnet(),
        2,
        first_host=FIRST_HOST,
        ptz=False,
        clock_offsets={0: SKEW_S},
        pictures=False,
        discovery=False,
    ) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def client(
    fleet: OnvifFleet, simulator: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    skewed, on_time = fleet.devices
    cameras: list[dict[str, Any]] = [
        {
            "id": camera_id,
            "name": camera_id,
            "platform": "site",
            "url": simulator.url(mount),
            "onvif": {"url": device.url, "events": False},
        }
        for camera_id, device, mount in (("skewed", skewed, "cam05"), ("on-time", on_time, "cam06"))
    ]
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(tmp_path_factory.mktemp("clock-data"))},
            "ingest": {"backoff_initial_s": 0.2},
            "onvif": {"clock_check_s": 10, "clock_offset_warn_s": WARN_S, "request_timeout_s": 5},
            # The devices' user (the platform's, as for a camera's stream).
            "platforms": [
                {
                    "id": "site",
                    "name": "Site",
                    "username": skewed.spec.username,
                    "password": skewed.spec.password,
                }
            ],
            "cameras": cameras,
        }
    )
    app = create_app(config)
    with TestClient(app, base_url="http://localhost") as client:
        client.headers.update(bearer(app.state.node, "handler1", Role.HANDLER))
        # Online before the test: the simulator's clients then belong to this module's node.
        wait_until(lambda: online(client), WAIT_S, "both cameras online")
        yield client


def camera(client: TestClient, camera_id: str) -> dict[str, Any]:
    response = client.get(f"/api/cameras/{camera_id}")
    assert response.status_code == 200, response.text
    out: dict[str, Any] = response.json()
    return out


def online(client: TestClient) -> bool:
    return all(camera(client, c)["state"] == "online" for c in ("skewed", "on-time"))


def clock_read(client: TestClient, camera_id: str) -> dict[str, Any] | None:
    """The camera as the API shows it, once its clock has been read."""
    shown = camera(client, camera_id)
    return shown if shown["clock_offset_s"] is not None else None


def test_a_skewed_clock_is_shown_flagged_raised_and_recorded_on_evidence(
    client: TestClient,
) -> None:
    skewed = wait_until(lambda: clock_read(client, "skewed"), WAIT_S, "skewed clock read")
    on_time = wait_until(lambda: clock_read(client, "on-time"), WAIT_S, "on-time clock read")
    assert skewed is not None and on_time is not None
    # ONVIF's GetSystemDateAndTime has whole seconds: within a second and a half.
    assert abs(skewed["clock_offset_s"] - SKEW_S) < 1.5 and skewed["clock_flagged"] is True
    assert abs(on_time["clock_offset_s"]) < 1.5 and on_time["clock_flagged"] is False
    assert skewed["onvif_events"] is None  # events: false in its configuration
    health = client.get("/api/health").json()
    assert health["clocks_flagged"] == 1 and "skewed" not in json.dumps(health)

    # One warning event, for the skewed camera only, naming the offset.
    events = client.get("/api/events", params={"type": "camera.clock"}).json()["events"]
    assert [(e["camera_id"], e["severity"], e["ended_at"]) for e in events] == [
        ("skewed", "warning", None)
    ]
    assert abs(events[0]["detail"]["offset_s"] - SKEW_S) < 1.5
    assert "ahead" in events[0]["summary"]

    # Evidence records the offset when it is made, shown by the API and the bundle.
    response = client.post("/api/cases", json={"title": "Clock check", "cameras": ["skewed"]})
    assert response.status_code == 201, response.text
    number = response.json()["number"]
    items = {}
    for camera_id in ("skewed", "on-time"):
        shot = client.post(f"/api/cases/{number}/items/snapshot", json={"camera": camera_id})
        assert shot.status_code == 201, shot.text
        items[camera_id] = shot.json()
    assert abs(items["skewed"]["camera_clock_offset_s"] - SKEW_S) < 1.5
    assert abs(items["on-time"]["camera_clock_offset_s"]) < 1.5
    listed = client.get(f"/api/cases/{number}/items").json()
    assert {i["id"]: i["camera_clock_offset_s"] for i in listed} == {
        i["id"]: i["camera_clock_offset_s"] for i in items.values()
    }
    bundle = client.get(f"/api/cases/{number}/export.zip")
    assert bundle.status_code == 200, bundle.text
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(bundle.content)).read("manifest.json"))
    assert {i["camera"]: i["camera_clock_offset_s"] for i in manifest["items"]} == {
        camera_id: item["camera_clock_offset_s"] for camera_id, item in items.items()
    }
