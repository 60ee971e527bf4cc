"""ONVIF PullPoint events against real simulated devices (surveillance/simulator/
onvif_fleet.py) and the real app: a camera's motion and tamper open and end events on the
bus; a device without an events service is shown unsupported and not asked again in a
loop; a device that goes away shows failing, its open events end, and it is subscribed
again when it is back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from surveillance.api.app import create_app
from surveillance.api.node import Node
from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from surveillance.simulator.onvif_device import SimulatedDevice
from surveillance.simulator.onvif_fleet import OnvifFleet
from surveillance.simulator.onvif_specs import OnvifDeviceSpec
from tests.auth_helpers import bearer
from tests.onvif_net import test_subnet
from tests.waits import wait_until

pytestmark = [pytest.mark.rtsp, pytest.mark.integration]

WAIT_S = 45.0  # generous: a loaded two-core CI machine
FIRST_HOST = 131  # hosts of this module's devices on the worker's subnet
CAMERAS = ("watched", "no-events", "flaky")  # in the fleet's order


@pytest.fixture(scope="module")
def fleet() -> Iterator[OnvifFleet]:
    subnet = test_subnet()
    specs = [
        OnvifDeviceSpec(address=f"{subnet}.{FIRST_HOST + i}", ptz=False, events=events)
        for i, events in enumerate((True, False, True))
    ]
    # No pictures (the cameras are never watched) and no WS-Discovery: events alone.
    with OnvifFleet(specs, pictures=False, discovery=False) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def client(fleet: OnvifFleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    cameras: list[dict[str, Any]] = [
        {
            "id": camera_id,
            "name": camera_id,
            "platform": "site",
            # Never connected (on demand, nobody watches): these tests are about events.
            "url": f"rtsp://{device.spec.address}:8554/unused",
            "mode": "on-demand",
            "username": device.spec.username,
            "password": device.spec.password,
            "onvif": {"url": device.url},
        }
        for camera_id, device in zip(CAMERAS, fleet.devices, strict=True)
    ]
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(tmp_path_factory.mktemp("events-data"))},
            "onvif": {"clock_check_s": 300, "request_timeout_s": 2},
            "platforms": [{"id": "site", "name": "Site"}],
            "cameras": cameras,
        }
    )
    app = create_app(config)
    with TestClient(app, base_url="http://localhost") as client:
        client.headers.update(bearer(app.state.node, "operator1", Role.OPERATOR))
        yield client


def node_of(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


def events_state(client: TestClient, camera_id: str) -> str | None:
    state: str | None = client.get(f"/api/cameras/{camera_id}").json()["onvif_events"]
    return state


def events_of(client: TestClient, camera_id: str, kind: str) -> list[dict[str, Any]]:
    params = {"camera": camera_id, "type": f"device.{kind}"}
    found: list[dict[str, Any]] = client.get("/api/events", params=params).json()["events"]
    return found


def raised(
    client: TestClient, device: SimulatedDevice, camera_id: str, kind: Any
) -> dict[str, Any]:
    """The camera's one active event of ``kind`` after the device raised it."""
    device.raise_event(kind, True)
    [event] = wait_until(
        lambda: [e for e in events_of(client, camera_id, kind) if e["ended_at"] is None],
        WAIT_S,
        f"an active device.{kind} event of {camera_id}",
    )
    return event


def ended(client: TestClient, camera_id: str, event_id: int) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        event: dict[str, Any] = client.get(f"/api/events/{event_id}").json()
        return event if event["ended_at"] is not None else None

    event = wait_until(done, WAIT_S, f"event {event_id} of {camera_id} ended")
    assert event is not None
    return event


def test_motion_and_tamper_open_and_end_events_and_an_unsupported_device_is_left_alone(
    client: TestClient, fleet: OnvifFleet
) -> None:
    watched = fleet.devices[0]
    wait_until(lambda: events_state(client, "watched") == "subscribed", WAIT_S, "subscribed")

    motion = raised(client, watched, "watched", "motion")
    assert (motion["severity"], motion["state"]) == ("info", "open")
    assert motion["detail"]["topic"] == "VideoSource/MotionAlarm"
    # Motion again while it lasts: the same event, seen later, not a second one.
    again = raised(client, watched, "watched", "motion")
    assert again["id"] == motion["id"] and again["last_seen_at"] >= motion["last_seen_at"]
    watched.raise_event("motion", False)
    over = ended(client, "watched", motion["id"])
    assert over["state"] == "closed"  # info that ends unacknowledged closes by itself
    assert len(events_of(client, "watched", "motion")) == 1

    tamper = raised(client, watched, "watched", "tamper")
    assert (tamper["severity"], tamper["summary"]) == ("alarm", "watched: camera tampered with")
    watched.raise_event("tamper", False)
    over = ended(client, "watched", tamper["id"])
    assert over["state"] == "open"  # an alarm stays open until someone acknowledges it

    # The device without an events service: shown so, tried once, not again and again
    # (the steps above took seconds, with the back-off's first steps at 1 s).
    wait_until(lambda: events_state(client, "no-events") == "unsupported", WAIT_S, "unsupported")
    node = node_of(client)
    assert node.onvif_events.attempts["no-events"] == 1
    assert node.onvif_events.subscriptions["no-events"] == 0
    assert node.onvif_events.subscriptions["watched"] == 1


def test_a_device_that_goes_away_is_subscribed_again_when_it_is_back(
    client: TestClient, fleet: OnvifFleet
) -> None:
    flaky = fleet.devices[2]
    node = node_of(client)
    wait_until(lambda: events_state(client, "flaky") == "subscribed", WAIT_S, "subscribed")
    before = node.onvif_events.subscriptions["flaky"]
    motion = raised(client, flaky, "flaky", "motion")

    flaky.set_fault("malformed")  # it answers nothing ONVIF any more
    # A poll under way when the fault came is answered as before: this ends it at once, so
    # the next one (malformed) is the one waited for, not a long poll more.
    flaky.raise_event("motion", True)
    wait_until(lambda: events_state(client, "flaky") == "failing", WAIT_S, "failing")
    # Nobody can say there is motion any more: its open event ended.
    ended(client, "flaky", motion["id"])

    flaky.set_fault(None)
    wait_until(lambda: events_state(client, "flaky") == "subscribed", WAIT_S, "back")
    assert node.onvif_events.subscriptions["flaky"] == before + 1
    # The new subscription carries the device's events.
    fresh = raised(client, flaky, "flaky", "motion")
    assert fresh["id"] != motion["id"]
    flaky.raise_event("motion", False)
    ended(client, "flaky", fresh["id"])
