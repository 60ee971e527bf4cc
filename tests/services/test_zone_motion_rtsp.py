"""Zone motion end to end: the real RTSP simulator's intruder camera, the node's API, its
event bus on SQLite. Someone walking into an armed zone raises one zone.motion ALARM with a
snapshot showing the zone; a zone where nobody walks and a disarmed zone raise nothing and
a camera with only a disarmed zone is not decoded at all; disarming stops the decoding."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from surveillance.api.app import create_app
from surveillance.api.node import Node
from surveillance.config.models import AppConfig
from surveillance.events.records import EventFilter, EventRecord, EventType
from surveillance.simulator import Simulator
from tests.auth_helpers import bearer
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

PATH = [[0.55, 0.45], [0.85, 0.45], [0.85, 0.85], [0.55, 0.85]]  # where the intruder walks
LEFT = [[0.05, 0.3], [0.45, 0.3], [0.45, 0.9], [0.05, 0.9]]
LOOP_S = 20.0  # the intruder mount's clip: someone walks in 6 s into each loop


@pytest.fixture
def node_client(simulator: Simulator, tmp_path: Any) -> Iterator[tuple[Node, TestClient]]:
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(tmp_path / "data")},
            "platforms": [{"id": "town", "name": "Town"}],
            "cameras": [
                {"id": camera, "name": camera, "platform": "town", "url": simulator.url("intruder")}
                for camera in ("yard", "gate")
            ],
            "events": {"zones": {"hold_s": 1.0, "clear_s": 2.0, "cooldown_s": 60}},
        }
    )
    app = create_app(config)
    with TestClient(app, base_url="http://localhost") as client:
        yield app.state.node, client


def motion_events(node: Node) -> list[EventRecord]:
    return list(node.events.search(EventFilter(types=[EventType.ZONE_MOTION])).events)


def test_motion_in_an_armed_zone_raises_one_alarm_with_its_picture(
    node_client: tuple[Node, TestClient],
) -> None:
    node, client = node_client
    admin = bearer(node)
    wait_until(lambda: all(h.state == "online" for h in node.ingest.all_health()), 20, "online")
    later = datetime.now() + timedelta(hours=2)
    disarmed = {"windows": [{"from": later.strftime("%H:00"), "to": later.strftime("%H:30")}]}

    def save(camera: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = client.post(f"/api/cameras/{camera}/zones", json=body, headers=admin)
        assert answer.status_code == 201, answer.text
        saved: dict[str, Any] = answer.json()
        return saved

    path = save("yard", {"name": "path", "points": PATH})
    left = save("yard", {"name": "left", "points": LEFT, "sensitivity": 100})
    gate = save("gate", {"name": "path", "points": PATH, "schedule": disarmed})
    assert path["armed_now"] and left["armed_now"] and not gate["armed_now"]
    wait_until(lambda: node.zone_motion.decoding() == ["yard"], 5, "yard decoded, gate not")
    # The same picture from the same mount: the yard has one consumer more (its watcher) than
    # the gate, whose disarmed zone decodes nothing (the other consumers are the same).
    yard, gate_stream = node.ingest.stream("yard"), node.ingest.stream("gate")
    wait_until(lambda: yard.consumers == gate_stream.consumers + 1, 5, "one watcher, the yard's")
    metrics = client.get("/metrics", headers=admin).text
    assert 'surveillance_zone_armed{camera="yard"} 2.0' in metrics
    assert 'camera="gate"' not in metrics.split("surveillance_zone_armed", 1)[1].split("#")[0]
    assert "surveillance_zone_motion_decoding_cameras 1.0" in metrics

    # The intruder walks in within a loop (the first one may fall in the warm-up).
    raised = wait_until(lambda: motion_events(node), LOOP_S + 10, "a zone.motion event")
    alarm = raised[0]
    assert alarm.camera_id == "yard" and alarm.zone_id == path["id"]
    assert alarm.severity == "alarm" and alarm.key == f"motion:yard:{path['id']}"
    assert alarm.summary == "Motion in zone path" and alarm.detail["zone"] == "path"
    assert alarm.has_snapshot
    picture = node.events.snapshot(alarm.id)
    assert picture is not None
    bgr = cv2.imdecode(np.frombuffer(picture.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert bgr.shape == (picture.height, picture.width, 3) == (360, 640, 3)
    # The zone's outline is drawn in red on the picture (BGR), along its left edge.
    x = round(0.55 * 640)
    edge = bgr[round(0.5 * 360) : round(0.8 * 360), x - 1 : x + 2].reshape(-1, 3).astype(int)
    assert np.median(edge[:, 2] - edge[:, 1]) > 100
    # It ends clear_s after the intruder walked out, and stays the only one: the left zone
    # sees nothing, the gate's zone is disarmed (same camera picture, same intruder).
    ended = wait_until(
        lambda: [e for e in motion_events(node) if e.ended_at is not None], 40, "the alarm ended"
    )
    assert [e.id for e in ended] == [alarm.id] and len(motion_events(node)) == 1
    assert ended[0].state == "open"  # an alarm stays open until someone acknowledges it

    # Disarming stops the decoding.
    for zone in (path, left):
        body = {"name": zone["name"], "points": zone["points"], "enabled": False}
        answer = client.put(f"/api/cameras/yard/zones/{zone['id']}", json=body, headers=admin)
        assert answer.status_code == 200 and answer.json()["armed_now"] is False
    # Generous waits: the watcher's thread finishes the picture it is decoding first, which
    # on a loaded CI machine took over 5 s once.
    wait_until(lambda: node.zone_motion.decoding() == [], 20, "no camera decoded")
    wait_until(lambda: yard.consumers == gate_stream.consumers, 20, "the watcher unsubscribed")
    assert node.zone_motion.armed() == {}
