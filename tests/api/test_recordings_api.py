"""Recorded footage over HTTP, against one real node recording the simulator's cameras in
2 s segments: spans and gaps, export across segment boundaries, playback windows, a past
picture, every bad input, the audit log; and for cases, clips older than the ring, several
cameras at once, holds that keep footage from retention until the case is archived, and a
bundle of recorded evidence that verifies offline."""

from __future__ import annotations

import io
import itertools
import json
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import pytest
from fastapi.testclient import TestClient

from surveillance.api.app import create_app
from surveillance.api.node import Node
from surveillance.auth.audit import AuditQuery
from surveillance.auth.roles import Permission, Role
from surveillance.config.models import AppConfig
from surveillance.services.footage_times import iso as api_iso
from surveillance.simulator import Simulator
from surveillance.simulator.clips import read_frame_number
from tests.auth_helpers import bearer, ensure_user
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

SEGMENT_S = 2.0
RING_S = 2.0  # shorter than every past window below: those come from the recordings
MAX_EXPORT_S = 60
FPS = 25  # the simulator's small clips (tests/conftest.py)
LOOP_FRAMES = 100  # they are 4 s long and loop: frame numbers count 0..99 again
CAMERAS = {"gate": "cam04", "yard": "cam05", "lane": "cam06"}
RECORDED_S = 9.0  # footage every test may take for granted: several segments


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recordings-data")


@pytest.fixture(scope="module")
def client(simulator: Simulator, data_dir: Path) -> Iterator[TestClient]:
    cameras: list[dict[str, Any]] = [
        {"id": cid, "name": cid, "platform": "town", "url": simulator.url(mount)}
        for cid, mount in CAMERAS.items()
    ]
    cameras += [
        {"id": "away", "name": "away", "platform": "far", "url": simulator.url("cam07")},
        {"id": "dead", "name": "dead", "platform": "town",
         "url": f"rtsp://127.0.0.1:{closed_port()}/x", "recording": {"mode": "off"}},
    ]  # fmt: skip
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(data_dir)},
            "ingest": {
                "ring_seconds": RING_S,
                "stall_after_s": 1.0,
                "read_timeout_s": 2.0,
                "backoff_initial_s": 0.2,
                "backoff_max_s": 1.0,
            },
            "recording": {
                "segment_s": SEGMENT_S,
                "max_export_s": MAX_EXPORT_S,
                "default": {"mode": "continuous", "stream": "main", "retain_days": 7},
            },
            "platforms": [{"id": "town", "name": "Town"}, {"id": "far", "name": "Far"}],
            "cameras": cameras,
        }
    )
    app = create_app(config)
    with TestClient(app, base_url="http://localhost") as test_client:
        node: Node = app.state.node
        test_client.headers.update(bearer(node, "handler1", Role.HANDLER))
        wait_until(
            lambda: all(_recorded_s(test_client, c) >= RECORDED_S for c in CAMERAS),
            RECORDED_S + 30,
            f"every camera with {RECORDED_S} s recorded",
        )
        yield test_client


def node_of(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


def listing(client: TestClient, camera: str, since_s: float = 3600) -> dict[str, Any]:
    now = time.time()
    response = client.get(
        f"/api/cameras/{camera}/recordings", params={"from": iso(now - since_s), "to": iso(now)}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _recorded_s(client: TestClient, camera: str) -> float:
    spans = listing(client, camera)["spans"]
    return sum(epoch(s["end"]) - epoch(s["start"]) for s in spans)


def frames_of(data: bytes) -> list[tuple[bool, int | None, float]]:
    """(keyframe, drawn frame number, pts in s) of every decoded frame, in display order."""
    out = []
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            number = read_frame_number(frame.to_ndarray(format="bgr24"))
            out.append((bool(frame.key_frame), number, float(frame.time or 0.0)))
    return out


def consecutive(numbers: list[int | None]) -> bool:
    """Whether drawn frame numbers follow one another (the clip loops at LOOP_FRAMES)."""
    known = [n for n in numbers if n is not None]
    return len(known) == len(numbers) and all(
        (b - a) % LOOP_FRAMES == 1 for a, b in itertools.pairwise(known)
    )


def audit_actions(client: TestClient, action: str) -> list[Any]:
    return node_of(client).audit.query(AuditQuery(action=action))


def test_spans_gaps_export_playback_and_a_past_picture(client: TestClient) -> None:
    spans = listing(client, "gate")
    assert spans["camera_id"] == "gate" and spans["recording"]["state"] == "recording"
    assert spans["recording"]["stream"] == "main" and spans["from"] < spans["to"]
    # The camera list tells who records, which stream, and why not.
    states = {c["id"]: c["recording"] for c in client.get("/api/cameras").json()}
    assert (states["gate"]["state"], states["gate"]["stream"]) == ("recording", "main")
    assert states["dead"]["state"] == "off" and states["dead"]["detail"]
    # Segments of 2 s touch: one span, not one per segment.
    assert len(spans["spans"]) == 1, spans
    first = epoch(spans["spans"][0]["start"])

    # An export across at least two segment boundaries: every frame, from a keyframe.
    start, end = first + 1.3, first + 1.3 + 2 * SEGMENT_S + 0.5
    response = client.get(
        "/api/cameras/gate/recordings/export.mp4", params={"start": iso(start), "end": iso(end)}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["content-disposition"].startswith("attachment;")
    decoded = frames_of(response.content)
    assert decoded[0][0], "an export starts at a keyframe"
    assert len(decoded) >= (end - start) * FPS - 2
    assert consecutive([n for _, n, _ in decoded]), "no frame lost at a segment boundary"
    assert epoch(response.headers["x-first-at"]) <= start + 0.05

    # Playback: fragmented MP4 with its codec and its moments in the headers.
    played = client.get(
        "/api/cameras/gate/recordings/play.mp4",
        params={"start": iso(first + 2.5), "end": iso(first + 6)},
    )
    assert played.status_code == 200, played.text
    assert played.headers["content-type"] == "video/mp4"
    assert played.headers["x-codec"].startswith("avc1.")
    first_at, end_at = epoch(played.headers["x-first-at"]), epoch(played.headers["x-end-at"])
    assert first_at <= first + 2.5 < first + 6 <= end_at + 0.1
    assert b"moof" in played.content[:4096] or b"moov" in played.content[:4096]
    frames = frames_of(played.content)
    assert frames[0][0] and consecutive([n for _, n, _ in frames])

    # A picture of the past: the frame the export shows at that moment, exactly (one
    # clock, the recording's), decoded from the keyframe before it.
    first_at, pts0 = epoch(response.headers["x-first-at"]), decoded[0][2]
    for k in (0, 37, len(decoded) - 1):
        moment = first_at + (decoded[k][2] - pts0) + 0.01  # inside frame k's 40 ms
        past = client.get("/api/cameras/gate/snapshot.jpg", params={"at": iso(moment)})
        assert past.status_code == 200, past.text
        assert past.headers["x-snapshot-mode"] == "recorded"
        assert abs(epoch(past.headers["x-captured-at"]) - (moment - 0.01)) < 0.002
        assert _number(past.content) == decoded[k][1]
    # And the frame a live snapshot showed is the one recorded then (the live picture is
    # dated by its packet's arrival, the recording by the connection's clock: close).
    live = client.get("/api/cameras/gate/snapshot.jpg")
    assert live.status_code == 200
    shown_at, shown = epoch(live.headers["x-captured-at"]), _number(live.content)
    wait_until(lambda: _recorded_until(client, "gate") > shown_at + 1, 10, "the moment recorded")
    past = client.get("/api/cameras/gate/snapshot.jpg", params={"at": iso(shown_at)})
    assert past.status_code == 200, past.text
    recorded = _number(past.content)
    assert shown is not None and recorded is not None
    assert min((recorded - shown) % LOOP_FRAMES, (shown - recorded) % LOOP_FRAMES) <= 12

    # Every look at the past is in the audit log, with the window asked for.
    exports = audit_actions(client, "recordings.export")
    assert exports and exports[0].camera_id == "gate" and exports[0].user == "handler1"
    assert exports[0].detail["start"].startswith(iso(start)[:19])
    plays = audit_actions(client, "recordings.play")
    assert plays and plays[0].camera_id == "gate"


def _number(jpeg: bytes) -> int | None:
    with av.open(io.BytesIO(jpeg)) as container:
        frame = next(container.decode(video=0))
        return read_frame_number(frame.to_ndarray(format="bgr24"))


def _recorded_until(client: TestClient, camera: str) -> float:
    spans = listing(client, camera, since_s=120)["spans"]
    return epoch(spans[-1]["end"]) if spans else 0.0


def test_a_camera_that_drops_leaves_a_gap_with_its_reason(
    client: TestClient, simulator: Simulator
) -> None:
    before = _recorded_until(client, "lane")
    simulator.fault("cam06", "refuse")
    try:
        simulator.fault("cam06", "drop")
        gap = wait_until(
            lambda: _gap_after(listing(client, "lane", 120), before),
            15,
            "a gap while the camera is gone",
        )
        # Gone long enough that the footage on either side cannot be one span (1.5 s).
        began = epoch(gap["start"])
        wait_until(lambda: time.time() > began + 3 * 1.5, 10, "a gap longer than a join")
    finally:
        simulator.fault("cam06", "resume")

    def recording_again() -> dict[str, Any] | None:
        body = listing(client, "lane", 120)
        gap = _gap_after(body, before)
        after = gap and [s for s in body["spans"] if epoch(s["start"]) >= epoch(gap["start"])]
        return body if gap and gap["end"] is not None and after else None

    body = wait_until(recording_again, 30, "recording again")
    gap = _gap_after(body, before)
    assert gap is not None
    assert gap["reason"], "a gap says why"
    assert gap["end"] is not None and epoch(gap["end"]) - epoch(gap["start"]) > 1.5
    spans = body["spans"]
    ahead = [s for s in spans if epoch(s["start"]) < epoch(gap["start"])]
    behind = [s for s in spans if epoch(s["start"]) >= epoch(gap["start"])]
    assert ahead and behind, (gap, spans)
    assert epoch(ahead[-1]["end"]) <= epoch(gap["start"]) + 1.0
    assert epoch(behind[0]["start"]) >= epoch(gap["start"])


def _gap_after(body: dict[str, Any], recorded_until: float) -> dict[str, Any] | None:
    """The gap a drop caused once the camera had been recorded until ``recorded_until``,
    found by its time: the first that did not end before it and begins at most a segment
    earlier (the index dates a gap from the last whole segment written). On a loaded
    machine the camera may also stall before the drop, or drop again after it recovers:
    those gaps end before it, or are newer ones after it."""
    for gap in body["gaps"]:
        ended_before = gap["end"] is not None and epoch(gap["end"]) <= recorded_until
        if epoch(gap["start"]) >= recorded_until - SEGMENT_S and not ended_before:
            found: dict[str, Any] = gap
            return found
    return None


def test_every_bad_input_is_refused_naming_the_problem(client: TestClient) -> None:
    node = node_of(client)
    now = time.time()
    base = "/api/cameras/gate/recordings"

    def export(start: str, end: str, **headers: str) -> Any:
        return client.get(
            f"{base}/export.mp4", params={"start": start, "end": end}, headers=headers
        )

    cases = {
        "time zone": export("2026-01-01T10:00:00", iso(now)),
        "ISO 8601": export("yesterday", iso(now)),
        "future": export(iso(now + 3600), iso(now + 3700)),
        "must lie after": export(iso(now - 10), iso(now - 20)),
        "at most 60 s": export(iso(now - 100), iso(now - 30)),
        "outside retention": export(iso(now - 86400), iso(now - 86390)),
    }
    for words, response in cases.items():
        assert response.status_code == 422, (words, response.text)
        assert words in response.json()["detail"], (words, response.text)
    unknown = client.get(
        "/api/cameras/nope/recordings", params={"from": iso(now - 60), "to": iso(now)}
    )
    assert unknown.status_code == 404
    scoped = bearer(node, "town-handler", Role.HANDLER, platforms=["town"])
    hidden = client.get(
        "/api/cameras/away/recordings",
        params={"from": iso(now - 60), "to": iso(now)},
        headers=scoped,
    )
    # Out of scope answers in the words of a camera that does not exist.
    assert hidden.status_code == 404
    assert hidden.json()["detail"] == unknown.json()["detail"].replace("nope", "away")
    viewer = bearer(node, "vera", Role.VIEWER)
    refused = client.get(f"{base}", params={"from": iso(now - 60), "to": iso(now)}, headers=viewer)
    assert refused.status_code == 403 and "recordings.view" in refused.json()["detail"]
    # A token that may take live pictures but not look back: the past is refused.
    ensure_user(node, "olga", Role.OPERATOR)
    _, secret = node.auth.create_token("olga", "stills", [Permission.SNAPSHOT_TAKE])
    limited = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/cameras/gate/snapshot.jpg", headers=limited).status_code == 200
    past = client.get(
        "/api/cameras/gate/snapshot.jpg", params={"at": iso(now - 3)}, headers=limited
    )
    assert past.status_code == 403 and "recordings.view" in past.json()["detail"]
    denied = audit_actions(client, "access.denied")
    assert any(e.user == "vera" for e in denied) and any(e.user == "olga" for e in denied)


def test_exports_are_limited_per_user_and_node_and_spooled_in_the_data_dir(
    client: TestClient, data_dir: Path
) -> None:
    node = node_of(client)
    scratch = data_dir / "tmp"
    assert scratch.is_dir() and scratch.stat().st_mode & 0o777 == 0o700
    assert node.exports.scratch == scratch and not list(scratch.iterdir())
    start = epoch(listing(client, "yard")["spans"][0]["start"]) + 0.5
    params = {"start": iso(start), "end": iso(start + 3)}
    url = "/api/cameras/yard/recordings/export.mp4"
    # Two exports of handler1 running (slots held as a running export holds them): a
    # third is refused, another user's is not, until the node's four are taken.
    held = [node.exports.claim("handler1") for _ in range(2)]
    try:
        refused = client.get(url, params=params)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "5"
        assert "2 exports" in refused.json()["detail"]
        other = bearer(node, "otto", Role.OPERATOR)
        assert client.get(url, params=params, headers=other).status_code == 200
        held.append(node.exports.claim("someone"))
        held.append(node.exports.claim("someone"))
        full = client.get(url, params=params, headers=other)
        assert full.status_code == 429 and "this node runs 4 exports" in full.json()["detail"]
    finally:
        for slot in held:
            slot.release()
    done = client.get(url, params=params)
    assert done.status_code == 200 and frames_of(done.content)
    # Sent and gone: no place held, no file left behind in the scratch directory.
    assert node.exports.running() == 0 and not list(scratch.iterdir())


def new_case(client: TestClient) -> str:
    response = client.post("/api/cases", json={"title": "Collision at the crossroads"})
    assert response.status_code == 201, response.text
    number: str = response.json()["number"]
    return number


def test_case_clips_from_the_recordings_holds_and_a_bundle_that_verifies(
    client: TestClient, data_dir: Path, tmp_path: Path
) -> None:
    node = node_of(client)
    number = new_case(client)
    at = time.time() - 5  # older than the 2 s ring: only the recordings hold it
    clip = client.post(
        f"/api/cases/{number}/items/clip",
        json={"camera": "gate", "at": iso(at), "pre_s": 2, "post_s": 1},
    )
    assert clip.status_code == 201, clip.text
    item = clip.json()
    assert "from the recording" in item["note"]
    # Its facts are the footage's: the first frame's moment (a keyframe at or before).
    assert at - 2 - 1.1 <= epoch(item["captured_at"]) <= at - 2 + 0.05
    assert item["duration_s"] >= 3 - 0.1 and item["codec"] == "h264"
    data = client.get(item["content_url"]).content
    assert consecutive([n for _, n, _ in frames_of(data)])

    # Several cameras in one request: each one's clip on its own, a failure loses nothing.
    several = client.post(
        f"/api/cases/{number}/items/clips",
        json={"camera_ids": ["gate", "yard", "dead"], "at": iso(at), "pre_s": 1, "post_s": 1},
    )
    assert several.status_code == 200, several.text
    results = {r["camera"]: r for r in several.json()["results"]}
    assert results["gate"]["status"] == results["yard"]["status"] == 201
    assert results["yard"]["item"]["camera"] == "yard"
    assert results["dead"]["status"] == 503 and results["dead"]["item"] is None
    assert "nothing was stored" in results["dead"]["error"]["detail"]
    items = client.get(f"/api/cases/{number}/items").json()
    assert sorted(i["camera"] for i in items) == ["gate", "gate", "yard"]

    # A past picture as evidence.
    shot = client.post(
        f"/api/cases/{number}/items/snapshot", json={"camera": "yard", "at": iso(at)}
    )
    assert shot.status_code == 201, shot.text
    assert abs(epoch(shot.json()["captured_at"]) - at) < 0.1
    # Each attach's audit entry says from when to when, in the API's one time format.
    clips = audit_actions(client, "evidence.clip")
    windows = {(e.camera_id, e.detail["start"], e.detail["end"]) for e in clips}
    assert ("gate", api_iso(at - 2), api_iso(at + 1)) in windows
    assert ("yard", api_iso(at - 1), api_iso(at + 1)) in windows
    assert ("dead", api_iso(at - 1), api_iso(at + 1)) in windows  # the failed one too
    assert all(e.detail["at"] == api_iso(at) for e in clips)
    (picture,) = audit_actions(client, "evidence.snapshot")
    assert picture.detail["at"] == picture.detail["start"] == picture.detail["end"]
    assert picture.detail["at"] == api_iso(at)

    # A hold keeps the window from retention until the case is archived.
    hold = client.post(
        f"/api/cases/{number}/holds",
        json={"camera_id": "gate", "start": iso(at - 2), "end": iso(at + 1)},
    )
    assert hold.status_code == 201, hold.text
    held = hold.json()
    assert client.get(f"/api/cases/{number}/holds").json() == [held]
    # One let go by hand: released once, then it is a conflict.
    other = client.post(
        f"/api/cases/{number}/holds",
        json={"camera_id": "yard", "start": iso(at - 2), "end": iso(at + 1)},
    ).json()
    let_go = client.delete(f"/api/cases/{number}/holds/{other['id']}")
    assert let_go.status_code == 200 and let_go.json()["released_by"] == "handler1"
    assert client.delete(f"/api/cases/{number}/holds/{other['id']}").status_code == 409
    assert client.delete(f"/api/cases/{number}/holds/999999").status_code == 404

    # The bundle of recorded evidence verifies offline, and so does the node's store.
    bundle = client.get(f"/api/cases/{number}/export.zip")
    assert bundle.status_code == 200, bundle.text
    path = tmp_path / "case.zip"
    path.write_bytes(bundle.content)
    with zipfile.ZipFile(path) as archive:
        assert sum(name.endswith(".mp4") for name in archive.namelist()) == 3
    checked = _cli("verify-bundle", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = tmp_path / "verify.yaml"
    config.write_text(json.dumps({"server": {"data_dir": str(data_dir)}}))
    verified = _cli("verify", "--config", str(config))
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # Retention as if every segment were a month old: the held window stays, the rest
    # of the window goes; once the case is archived, the held window goes too.
    recorder = node.recorder
    removed = recorder.run_retention(time.time() + 30 * 86400)
    assert _overlapping(removed, "yard", at - 2, at + 1), "what no hold keeps goes"
    assert not _overlapping(removed, "gate", at - 2, at + 1), "the hold keeps it"
    assert listing(client, "gate", 120)["spans"], "held footage still listed"
    # What went is listed as removed, with why and when: not as footage never recorded.
    yard_gone = _removed_gaps(client, "yard", at - 2, at + 1)
    assert yard_gone and all(
        g["reason"].startswith("removed (retention period over) at ") for g in yard_gone
    ), yard_gone
    gate = listing(client, "gate", 120)
    held_spans = [(epoch(s["start"]), epoch(s["end"])) for s in gate["spans"]]
    for gap in (g for g in gate["gaps"] if g["removed_at"] is not None):
        start, end = epoch(gap["start"]), epoch(gap["end"])
        assert not any(s < end and e > start for s, e in held_spans), (gap, held_spans)
    for state in ("closed", "archived"):  # a report dismissed, then archived
        moved = client.post(f"/api/cases/{number}/transitions", json={"to": state})
        assert moved.status_code == 200, moved.text
    released = client.get(f"/api/cases/{number}/holds").json()
    assert all(h["released_at"] is not None for h in released) and len(released) == 2
    removed = recorder.run_retention(time.time() + 30 * 86400)
    assert _overlapping(removed, "gate", at - 2, at + 1), "archived: the hold let go"
    assert _removed_gaps(client, "gate", at - 2, at + 1), listing(client, "gate", 120)
    holds = [e.detail["hold"] for e in audit_actions(client, "recordings.hold")]
    assert holds == [other["id"], held["id"]]  # newest first
    release = audit_actions(client, "recordings.release")
    assert [(e.detail["hold"], e.detail.get("archived")) for e in release] == [
        (held["id"], True),
        (other["id"], None),
    ]
    deleted = audit_actions(client, "recordings.delete")
    assert {e.camera_id for e in deleted} >= {"gate", "yard"}
    assert all(epoch(e.detail["from"]) <= epoch(e.detail["to"]) for e in deleted)
    assert all(e.detail["from"].endswith("Z") and e.detail["to"].endswith("Z") for e in deleted)
    # The items stay whole: evidence is a copy, retention never touches it.
    assert client.get(item["content_url"]).content == data


def _removed_gaps(client: TestClient, camera: str, start: float, end: float) -> list[Any]:
    """The listing's removed-footage gaps that cover [start, end] whole."""
    return [
        g
        for g in listing(client, camera, 120)["gaps"]
        if g["removed_at"] is not None
        and epoch(g["start"]) <= start
        and g["end"] is not None
        and epoch(g["end"]) >= end
    ]


def _overlapping(segments: list[Any], camera: str, start: float, end: float) -> list[Any]:
    return [
        s
        for s in segments
        if s.camera_id == camera and s.start_at < end and (s.end_at or s.start_at) > start
    ]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "surveillance.cli", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_several_camera_clips_are_refused_whole_for_a_bad_window(client: TestClient) -> None:
    number = new_case(client)
    now = time.time()
    too_long = client.post(
        f"/api/cases/{number}/items/clips",
        json={"camera_ids": ["gate", "yard"], "at": iso(now - 10), "pre_s": MAX_EXPORT_S + 1},
    )
    assert too_long.status_code == 422 and "at most 60 s" in too_long.json()["detail"]
    before = datetime.now(UTC) - timedelta(days=1)
    old = client.post(
        f"/api/cases/{number}/items/clip",
        json={"camera": "gate", "at": before.isoformat(), "pre_s": 1},
    )
    assert old.status_code == 422 and "outside retention" in old.json()["detail"]
    assert client.get(f"/api/cases/{number}/items").json() == []


def test_a_segment_file_deleted_by_hand_is_a_gap_not_a_missing_camera(
    client: TestClient,
) -> None:
    # Last in this module: it deletes a file of the node's recordings.
    node = node_of(client)

    def closed() -> list[Any]:
        now = time.time()
        return node.recordings.segments("lane", "main", now - 60, now)

    wait_until(lambda: len(closed()) >= 3, 20, "three closed segments of lane")
    before, lost, after = closed()[-3:]
    assert lost.end_at is not None and after.end_at is not None
    (node.recorder.root / lost.path).unlink()

    export = client.get(
        "/api/cameras/lane/recordings/export.mp4",
        params={"start": iso(before.start_at + 0.1), "end": iso(after.end_at)},
    )
    assert export.status_code == 200, export.text
    assert "segment file missing" in export.headers["x-note"]
    assert len(frames_of(export.content)) >= (after.end_at - after.start_at) * FPS
    inside = {"start": iso(lost.start_at + 0.2), "end": iso(lost.end_at - 0.2)}
    played = client.get("/api/cameras/lane/recordings/play.mp4", params=inside)
    assert played.status_code == 409 and "missing" in played.json()["detail"], played.text
    snapshot = client.get("/api/cameras/lane/snapshot.jpg", params={"at": iso(lost.start_at + 0.5)})
    assert snapshot.status_code == 409, snapshot.text
    assert snapshot.json()["detail"] == "the segment file holding that moment is missing"
