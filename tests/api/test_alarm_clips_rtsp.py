"""An alarm keeps its clip, against the real RTSP simulator: with a ring far shorter than
the clip, an alarm handled after the ring has moved on still gets the footage around its
moment (kept on the node's disk when it was raised, 0600, listed as ``has_clip``, served at
``/api/events/{id}/clip.mp4`` in scope and audited, attached to the case with its hash,
removed with its event by retention). A write that fails leaves nothing behind, logs why,
and the case says the clip is missing."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import time
from collections.abc import Iterator

import av
import pytest
from fastapi.testclient import TestClient

from surveillance.api.app import create_app
from surveillance.api.node import Node
from surveillance.auth.audit import AuditAction
from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from surveillance.events.records import EventPicture
from surveillance.events.store import EventStore
from surveillance.services.alarm_clips import CLIP_DIR
from surveillance.simulator import Simulator
from tests.api.test_event_cases_rtsp import (
    TINY_JPEG_SIZE,
    audit_entries,
    node_of,
    raise_alarm,
    tiny_jpeg,
)
from tests.auth_helpers import bearer
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

RING_SECONDS = 2.0  # far shorter than the alarm's clip: only what was kept can serve it
PRE_S, POST_S = 3.0, 3.0
GOP_S = 1.0  # the simulator's small clips: a keyframe a second
KEPT_WITHIN_S = PRE_S + POST_S + 20  # the window's end, the grace, a loaded machine


@pytest.fixture(scope="module")
def served(simulator: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(tmp_path_factory.mktemp("alarm-clips"))},
            "ingest": {"ring_seconds": RING_SECONDS, "backoff_initial_s": 0.2},
            "events": {"alarm_clip_pre_s": PRE_S, "alarm_clip_post_s": POST_S},
            "platforms": [{"id": "town", "name": "Town"}],
            "cameras": [
                {"id": "gate", "name": "North gate", "platform": "town",
                 "url": simulator.url("cam05")},
                {"id": "yard", "name": "Yard", "platform": "town", "url": simulator.url("cam06")},
                {"id": "lot", "name": "Car park", "platform": "town",
                 "url": simulator.url("cam07"), "recording": {"mode": "continuous"}},
            ],
            "recording": {"segment_s": 5},
        }
    )  # fmt: skip
    with TestClient(create_app(config), base_url="http://localhost") as client:
        node = node_of(client)
        for camera in ("gate", "yard", "lot"):
            ring = node.ingest.stream(camera).ring
            wait_until(lambda r=ring: r.duration_s() >= RING_SECONDS - GOP_S, 30, camera)
        yield client


def picture() -> EventPicture:
    """The event's own snapshot: the ring will not hold its picture either."""
    return EventPicture(tiny_jpeg(), *TINY_JPEG_SIZE, captured_at=time.time())


def ring_moved_on(node: Node, camera: str, started: float) -> None:
    """Wait until the camera's ring starts after the alarm's window."""
    end = started + POST_S
    wait_until(lambda: not node.footage.ring_holds(camera, end), 30, "the ring moving on")


def test_an_alarm_handled_after_the_ring_moved_on_gets_its_kept_clip(served: TestClient) -> None:
    node = node_of(served)
    handler = bearer(node, "handler1", Role.HANDLER)
    started = time.time()
    event_id = raise_alarm(node, "gate", started, picture())

    def has_clip() -> bool:
        answer = served.get(f"/api/events/{event_id}", headers=handler).json()
        return bool(answer["has_clip"])

    wait_until(has_clip, KEPT_WITHIN_S, "the alarm's clip kept")
    clips = node.config.server.data_dir / CLIP_DIR
    kept = clips / f"{event_id}.mp4"
    assert kept.stat().st_mode & 0o777 == 0o600 and clips.stat().st_mode & 0o777 == 0o700
    assert not [p for p in clips.iterdir() if p.name.startswith(".tmp-")]
    # The ring holds nothing of the window now: without the kept clip there is none.
    ring_moved_on(node, "gate", started)

    played = served.get(f"/api/events/{event_id}/clip.mp4", headers=handler)
    assert played.status_code == 200 and played.headers["content-type"] == "video/mp4"
    assert played.content == kept.read_bytes()
    with av.open(io.BytesIO(played.content)) as container:
        frames = sum(1 for _ in container.decode(video=0))
        length = float(container.duration or 0) / av.time_base
    assert frames > 0 and PRE_S + POST_S - GOP_S - 0.5 <= length <= PRE_S + POST_S + GOP_S
    [play] = [e for e in audit_entries(node, AuditAction.RECORDINGS_PLAY) if e.user == "handler1"]
    assert (play.camera_id, play.detail["event"]) == ("gate", event_id)

    # Scope and permissions: another camera's handler reads "no such event"; a viewer
    # (no recorded footage) may not; an operator may.
    elsewhere = bearer(node, "handler-yard", Role.HANDLER, cameras=["yard"])
    hidden = served.get(f"/api/events/{event_id}/clip.mp4", headers=elsewhere)
    assert hidden.status_code == 404 and f"no event {event_id}" in hidden.text
    viewer = bearer(node, "viewer1", Role.VIEWER)
    assert served.get(f"/api/events/{event_id}/clip.mp4", headers=viewer).status_code == 403
    operator = bearer(node, "operator1", Role.OPERATOR)
    assert served.get(f"/api/events/{event_id}/clip.mp4", headers=operator).status_code == 200

    answer = served.post(f"/api/events/{event_id}/case", json={}, headers=handler)
    assert answer.status_code == 201, answer.text
    made = answer.json()
    assert made["missing"] == [] and made["event"]["has_clip"] is True
    [clip] = [item for item in made["items"] if item["kind"] == "clip"]
    assert clip["note"].startswith("kept by the node when the alarm was raised")
    assert clip["sha256"] == hashlib.sha256(kept.read_bytes()).hexdigest()
    assert PRE_S + POST_S - GOP_S - 0.5 <= clip["duration_s"] <= PRE_S + POST_S + GOP_S

    # Retention removes the event, and its clip goes with it.
    node.events.end_event("motion:gate:7")
    assert EventStore(node.engine).prune(time.time() + 1) >= 1  # as the hourly pass does
    assert node.alarm_clips.sweep() == [event_id]
    assert not kept.exists() and not (clips / f"{event_id}.json").exists()


def test_a_failed_write_leaves_nothing_and_the_case_says_missing(
    served: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    node = node_of(served)
    handler = bearer(node, "handler2", Role.HANDLER)
    caplog.set_level(logging.ERROR, logger="surveillance.services.alarm_clips")
    clips = node.config.server.data_dir / CLIP_DIR
    before = set(os.listdir(clips))
    started = time.time()
    event_id = raise_alarm(node, "yard", started, picture())
    # Something in the way of the clip's name: its write fails at the last step. (Not a
    # read-only directory: the tests may run as root, whom permission bits do not stop.)
    blocker = clips / f"{event_id}.mp4"
    blocker.mkdir()

    def failure() -> list[str]:
        return [r.getMessage() for r in caplog.records if f"event {event_id}:" in r.getMessage()]

    [logged] = wait_until(failure, KEPT_WITHIN_S, "the failed write logged")
    assert "could not be written" in logged and "Is a directory" in logged
    assert set(os.listdir(clips)) - before == {blocker.name}  # no temporary file, no facts
    assert not any(blocker.iterdir())
    assert served.get(f"/api/events/{event_id}", headers=handler).json()["has_clip"] is False
    assert served.get(f"/api/events/{event_id}/clip.mp4", headers=handler).status_code == 404

    ring_moved_on(node, "yard", started)
    answer = served.post(f"/api/events/{event_id}/case", json={}, headers=handler)
    assert answer.status_code == 201, answer.text
    made = answer.json()
    [missing] = made["missing"]
    assert missing.startswith("No clip of the event attached: ") and "yard" in missing
    assert [item["kind"] for item in made["items"]] == ["snapshot"]
    blocker.rmdir()


def test_a_recorded_camera_keeps_no_clip_its_case_takes_the_recording(
    served: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    node = node_of(served)
    handler = bearer(node, "handler3", Role.HANDLER)
    caplog.set_level(logging.INFO, logger="surveillance.services.alarm_clips")

    def recorded_since(seconds: float) -> bool:
        now = time.time()
        return node.recorded.covers("lot", now - seconds, now - seconds + 0.5)

    wait_until(lambda: recorded_since(PRE_S + GOP_S), PRE_S + 30, "the car park recorded")
    started = time.time()
    event_id = raise_alarm(node, "lot", started, picture())

    def outcome() -> list[str]:
        return [r.getMessage() for r in caplog.records if f"event {event_id}:" in r.getMessage()]

    assert wait_until(outcome, KEPT_WITHIN_S, "the keeper's verdict") == [
        f"event {event_id}: the recordings hold its window, no clip kept"
    ]
    clips = node.config.server.data_dir / CLIP_DIR
    assert not node.alarm_clips.shelf.has(event_id)
    assert not (clips / f"{event_id}.mp4").exists()

    ring_moved_on(node, "lot", started)
    answer = served.post(f"/api/events/{event_id}/case", json={}, headers=handler)
    assert answer.status_code == 201, answer.text
    made = answer.json()
    assert made["missing"] == [] and made["event"]["has_clip"] is False
    [clip] = [item for item in made["items"] if item["kind"] == "clip"]
    assert clip["note"].startswith("from the recording")
