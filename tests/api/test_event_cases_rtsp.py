"""An event becomes a case in one call, against the real RTSP simulator and a real event
raised on the node's bus: the case names the camera, time and zone; the picture at the
event's start and the clip around it come from the ring; the event is linked and
acknowledged; a second call is a 409 naming the case; everything is audited. An event of
a camera with no footage still makes a case, with the event's own snapshot and a timeline
comment saying what is missing; scope and permissions hold."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import av
import pytest
from fastapi.testclient import TestClient

from surveillance.api.app import create_app
from surveillance.api.node import Node
from surveillance.auth.audit import AuditAction, AuditQuery
from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig, EventsConfig
from surveillance.events.records import EventPicture, EventSpec, EventType, Severity
from surveillance.simulator import Simulator
from tests.api.test_cases_rtsp import closed_port
from tests.auth_helpers import bearer
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

RING_SECONDS = 60
CLIP_PRE_S = EventsConfig().alarm_clip_pre_s  # the case's clip around the event
CLIP_POST_S = EventsConfig().alarm_clip_post_s
EVENT_AGE_S = 15.0  # the event began this long before the case is asked for
GOP_S = 1.0  # the simulator's small clips: a keyframe a second
TINY_JPEG_SIZE = (64, 36)


@pytest.fixture(scope="module")
def served(simulator: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(tmp_path_factory.mktemp("event-cases"))},
            "ingest": {"ring_seconds": RING_SECONDS, "backoff_initial_s": 0.2},
            "platforms": [{"id": "town", "name": "Town"}],
            "cameras": [
                {"id": "gate", "name": "North gate", "platform": "town",
                 "url": simulator.url("cam05"), "location": {"place": "North gate, pole 3"}},
                {"id": "yard", "name": "Yard", "platform": "town", "url": simulator.url("cam06")},
                {"id": "dead", "name": "Dead", "platform": "town",
                 "url": f"rtsp://127.0.0.1:{closed_port()}/x"},
            ],
        }
    )  # fmt: skip
    with TestClient(create_app(config), base_url="http://localhost") as client:
        stream = node_of(client).ingest.stream("gate")
        # The clip reaches CLIP_PRE_S before an event EVENT_AGE_S old: the ring holds that.
        needed = EVENT_AGE_S + CLIP_PRE_S + GOP_S
        wait_until(lambda: stream.ring.duration_s() >= needed, needed + 20, "the gate's ring")
        yield client


def node_of(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


def tiny_jpeg() -> bytes:
    frame = av.VideoFrame(*TINY_JPEG_SIZE, "yuv420p")
    out = io.BytesIO()
    with av.open(out, "w", format="mjpeg") as container:
        stream = container.add_stream("mjpeg")
        stream.width, stream.height, stream.pix_fmt = *TINY_JPEG_SIZE, "yuvj420p"
        for packet in stream.encode(frame.reformat(format="yuvj420p")):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def raise_alarm(node: Node, camera: str, at: float, picture: EventPicture | None) -> int:
    event = node.events.raise_event(
        EventSpec(
            type=EventType.ZONE_MOTION,
            severity=Severity.ALARM,
            key=f"motion:{camera}:7",
            summary="Motion in Loading bay",
            camera_id=camera,
            platform_id="town",
            zone_id=7,
            detail={"zone": "Loading bay", "tag": None},
            at=at,
        ),
        picture,
    )
    return event.id


def audit_entries(node: Node, action: AuditAction) -> list[Any]:
    node.audit.flush()
    return node.audit.query(AuditQuery(action=action, limit=1000))


def test_an_alarm_becomes_a_case_with_picture_and_clip(served: TestClient) -> None:
    node = node_of(served)
    handler = bearer(node, "handler1", Role.HANDLER)
    started = time.time() - EVENT_AGE_S
    event_id = raise_alarm(node, "gate", started, None)

    asked = time.monotonic()
    answer = served.post(f"/api/events/{event_id}/case", json={}, headers=handler)
    assert answer.status_code == 201, answer.text
    made = answer.json()
    number = made["case_number"]
    # The clip's end lay in the future: the answer waited for it, boundedly.
    assert CLIP_POST_S - EVENT_AGE_S - 1 <= time.monotonic() - asked < CLIP_POST_S + 10
    assert made["missing"] == [] and made["case_url"] == f"/cases/{number}"
    event = made["event"]  # still active, so acknowledged, not closed yet
    assert (event["id"], event["state"], event["case_number"]) == (event_id, "acknowledged", number)

    picture, clip = sorted(made["items"], key=lambda item: item["kind"] != "snapshot")
    assert (picture["kind"], picture["camera"], picture["platform"]) == ("snapshot", "gate", "town")
    assert picture["note"] == "the picture at the event's start"
    captured = _epoch(picture["captured_at"])
    assert started - 0.5 <= captured <= started + 0.1  # the frame on screen then, not later
    assert clip["kind"] == "clip" and clip["media_type"] == "video/mp4"
    assert CLIP_PRE_S + CLIP_POST_S - 1 <= clip["duration_s"] <= CLIP_PRE_S + CLIP_POST_S + GOP_S
    assert _epoch(clip["captured_at"]) <= started - CLIP_PRE_S + 0.1  # from the keyframe before
    for item in made["items"]:
        body = served.get(item["content_url"], headers=handler)
        assert body.status_code == 200 and len(body.content) == item["size"]

    case = served.get(f"/api/cases/{number}", headers=handler).json()
    assert case["title"] == "Motion in Loading bay at North gate"
    assert case["cameras"] == ["gate"] and case["place"] == "North gate, pole 3"
    assert case["reporter"] == "handler1"
    assert "Zone: Loading bay" in case["description"]
    assert _iso_second(started) in case["description"]  # the event's time, to the second

    event = node.events.get(event_id)
    assert (event.case_number, event.acked_by) == (number, "handler1")

    again = served.post(f"/api/events/{event_id}/case", json={}, headers=handler)
    assert again.status_code == 409 and number in again.json()["detail"]

    cased = [e for e in audit_entries(node, AuditAction.EVENTS_CASE) if e.outcome == "ok"]
    assert [(e.user, e.camera_id, e.detail["case"]) for e in cased] == [
        ("handler1", "gate", number)
    ]
    attached = audit_entries(node, AuditAction.EVIDENCE_CLIP) + audit_entries(
        node, AuditAction.EVIDENCE_SNAPSHOT
    )
    assert sorted(e.detail["sha256"] for e in attached if e.detail.get("case") == number) == (
        sorted(item["sha256"] for item in made["items"])
    )


def test_no_footage_never_fails_the_case(served: TestClient) -> None:
    node = node_of(served)
    handler = bearer(node, "handler2", Role.HANDLER)
    jpeg = tiny_jpeg()
    shot_at = time.time() - 1
    picture = EventPicture(jpeg, *TINY_JPEG_SIZE, captured_at=shot_at)
    event_id = raise_alarm(node, "dead", time.time() - 2, picture)

    answer = served.post(
        f"/api/events/{event_id}/case", json={"title": "Dead camera alarm"}, headers=handler
    )
    assert answer.status_code == 201, answer.text
    made = answer.json()
    [item] = made["items"]  # the event's own snapshot, at its own capture time
    assert item["kind"] == "snapshot" and item["note"].startswith("the event's snapshot")
    assert (item["width"], item["height"]) == TINY_JPEG_SIZE
    assert abs(_epoch(item["captured_at"]) - shot_at) < 0.002
    assert served.get(item["content_url"], headers=handler).content == jpeg
    [missing] = made["missing"]
    assert missing.startswith("No clip of the event attached: ") and "dead" in missing
    case = served.get(f"/api/cases/{made['case_number']}", headers=handler).json()
    assert case["title"] == "Dead camera alarm"
    comments = [t["text"] for t in case["timeline"] if t["kind"] == "comment"]
    assert comments == [missing]

    # A storm's platform event: a case about the platform, with nothing to attach.
    storm = node.events.raise_event(
        EventSpec(EventType.PLATFORM_OFFLINE, Severity.WARNING, "platform.offline:town",
                  "3 cameras offline", platform_id="town")
    )  # fmt: skip
    answer = served.post(f"/api/events/{storm.id}/case", json={}, headers=handler)
    assert answer.status_code == 201, answer.text
    made = answer.json()
    assert made["items"] == [] and made["missing"] == [
        "No footage attached: the event names no camera (a platform's event)"
    ]
    case = served.get(f"/api/cases/{made['case_number']}", headers=handler).json()
    assert (case["title"], case["cameras"]) == ("3 cameras offline at Town", [])
    node.events.end_event(storm.key)


def test_who_may_make_a_case_of_which_event(served: TestClient) -> None:
    node = node_of(served)
    event_id = raise_alarm(node, "yard", time.time(), None)
    viewer = bearer(node, "viewer1", Role.VIEWER)
    operator = bearer(node, "operator1", Role.OPERATOR)  # acknowledges, makes no cases
    elsewhere = bearer(node, "handler-gate", Role.HANDLER, cameras=["gate"])
    for headers in (viewer, operator):
        assert (
            served.post(f"/api/events/{event_id}/case", json={}, headers=headers).status_code == 403
        )
    hidden = served.post(f"/api/events/{event_id}/case", json={}, headers=elsewhere)
    assert hidden.status_code == 404
    missing = served.post("/api/events/999999/case", json={}, headers=elsewhere)
    assert missing.status_code == 404 and hidden.json()["detail"] == (
        missing.json()["detail"].replace("999999", str(event_id))
    )  # out of scope reads exactly like no such event
    bad = served.post(
        f"/api/events/{event_id}/case",
        json={"title": ""},
        headers=bearer(node, "handler1", Role.HANDLER),
    )
    assert bad.status_code == 422 and "title" in bad.text
    assert node.events.get(event_id).case_number is None  # nothing refused left a link


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _iso_second(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S")
