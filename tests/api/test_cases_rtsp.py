"""Cases and evidence through the HTTP API, against the real RTSP server: snapshots and
clips read back with matching hashes, the workflow, refusals that store nothing, a
signed export checked offline by the CLI, and `surveillance verify` naming tampering."""

from __future__ import annotations

import hashlib
import io
import sqlite3
import subprocess
import sys
import threading
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
from surveillance.auth.audit import AuditAction, AuditQuery
from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from surveillance.simulator import Simulator
from tests.auth_helpers import bearer, ensure_user
from tests.cases.test_storage import DiskFullStore
from tests.media.test_clip import nal_units_annexb, nal_units_lengths
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

CAMERAS = {"gate": "cam04", "h265": "h265", "bframes": "bframes", "sdp-only": "sdp-only"}
RING_SECONDS = 20  # long enough to still hold a 10 s clip's packets when the test compares
# The first clip reaches 8 s back, from the keyframe at or before that: one GOP (1 s) more.
FILLED_RING_S = 8 + 1


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cases-data")


@pytest.fixture(scope="module")
def app_client(simulator: Simulator, data_dir: Path) -> Iterator[TestClient]:
    cameras: list[dict[str, Any]] = [
        {"id": cid, "name": cid, "platform": "town", "url": simulator.url(mount)}
        for cid, mount in CAMERAS.items()
    ]
    cameras.append(
        {"id": "dead", "name": "dead", "platform": "town",
         "url": f"rtsp://127.0.0.1:{closed_port()}/x"}
    )  # fmt: skip
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(data_dir)},
            "ingest": {"ring_seconds": RING_SECONDS, "backoff_initial_s": 0.2},
            "platforms": [{"id": "town", "name": "Town"}],
            "cameras": cameras,
        }
    )
    app = create_app(config)
    with TestClient(app, base_url="http://localhost") as client:
        # Cases and evidence are a handler's work; the acting name comes from the token.
        client.headers.update(bearer(app.state.node, "handler1", Role.HANDLER))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            states = {c["id"]: c["state"] for c in client.get("/api/cameras").json()}
            if all(states[c] == "online" for c in CAMERAS):
                break
            time.sleep(0.2)
        streams = [app.state.node.ingest.stream(camera) for camera in CAMERAS]
        wait_until(
            lambda: all(s.ring.duration_s() >= FILLED_RING_S for s in streams),
            FILLED_RING_S + 20,
            f"every camera's ring holding {FILLED_RING_S} s",
        )
        yield client


def node_of(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


def new_case(client: TestClient, **fields: Any) -> str:
    body = {"title": "Flooded underpass", "tags": ["traffic"], "cameras": ["gate"], **fields}
    response = client.post("/api/cases", json=body)
    assert response.status_code == 201, response.text
    number: str = response.json()["number"]
    return number


def content(client: TestClient, item: dict[str, Any], **params: Any) -> bytes:
    response = client.get(item["content_url"], params=params)
    assert response.status_code == 200, response.text
    assert response.headers["x-content-sha256"] == item["sha256"]
    return response.content


def test_snapshot_and_10s_clip_read_back_unaltered(app_client: TestClient) -> None:
    number = new_case(app_client)
    shot = app_client.post(f"/api/cases/{number}/items/snapshot", json={"camera": "gate"})
    assert shot.status_code == 201, shot.text
    snapshot = shot.json()
    assert snapshot["attached_by"] == "handler1" and snapshot["platform"] == "town"
    assert (snapshot["codec"], snapshot["width"], snapshot["height"]) == ("jpeg", 640, 360)
    body = content(app_client, snapshot)
    assert hashlib.sha256(body).hexdigest() == snapshot["sha256"] and body[:2] == b"\xff\xd8"

    asked = time.monotonic()
    response = app_client.post(
        f"/api/cases/{number}/items/clip", json={"camera": "gate", "pre_s": 8, "post_s": 2}
    )
    assert response.status_code == 201, response.text
    assert time.monotonic() - asked >= 1.5  # it waited for the post-event seconds
    clip = response.json()
    assert clip["codec"] == "h264" and clip["note"] is None
    assert 9.5 <= clip["duration_s"] <= 11.5  # from the keyframe at or before the start
    assert abs(clip["frames"] - clip["duration_s"] * 25) <= 3
    data = content(app_client, clip, download="true")
    assert hashlib.sha256(data).hexdigest() == clip["sha256"] and len(data) == clip["size"]
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.width) == ("h264", 640)
        demuxed = [p for p in container.demux(stream) if p.size]
    assert len(demuxed) == clip["frames"] and demuxed[0].is_keyframe
    muxed = [bytes(p) for p in demuxed]
    with av.open(io.BytesIO(data)) as container:
        assert sum(1 for _ in container.decode(video=0)) == clip["frames"]
    # No re-encode: the NAL units are the very ones the camera sent, in order.
    ring = node_of(app_client).ingest.stream("gate").ring.since(0)
    ring_units = [nal_units_annexb(p.data) for p in ring]
    clip_units = [nal_units_lengths(p) for p in muxed]
    start = ring_units.index(clip_units[0])
    assert ring_units[start : start + len(clip_units)] == clip_units
    custody = app_client.get(f"/api/cases/{number}/custody").json()
    assert [e["action"] for e in custody] == ["create", "attach", "view", "attach", "download"]


@pytest.mark.parametrize("camera", ["h265", "bframes", "sdp-only"])
def test_clips_of_other_codecs_and_camera_quirks_decode(
    app_client: TestClient, camera: str
) -> None:
    number = new_case(app_client, cameras=[camera])
    response = app_client.post(
        f"/api/cases/{number}/items/clip", json={"camera": camera, "pre_s": 3}
    )
    assert response.status_code == 201, response.text
    clip = response.json()
    assert clip["codec"] == ("hevc" if camera == "h265" else "h264")
    with av.open(io.BytesIO(content(app_client, clip))) as container:
        first = next(p for p in container.demux(container.streams.video[0]) if p.size)
        assert first.is_keyframe
    with av.open(io.BytesIO(content(app_client, clip))) as container:
        assert sum(1 for _ in container.decode(video=0)) >= clip["frames"] - 2


def test_whole_workflow_and_refusals(app_client: TestClient) -> None:
    number = new_case(app_client)
    states = app_client.get("/api/cases/states").json()
    assert states["transitions"]["closed"] == ["in_progress", "archived"]

    def move(to: str, **extra: Any) -> Any:
        return app_client.post(f"/api/cases/{number}/transitions", json={"to": to, **extra})

    nobody = move("dispatched", assignee="nobody-here")
    assert nobody.status_code == 422, nobody.text
    assert "no user 'nobody-here'" in nobody.json()["detail"]
    edit = app_client.patch(f"/api/cases/{number}", json={"assignee": "nobody-here"})
    assert edit.status_code == 422
    create = app_client.post("/api/cases", json={"title": "x", "assignee": "nobody-here"})
    assert create.status_code == 422
    case = app_client.get(f"/api/cases/{number}").json()
    assert case["state"] == "reported" and case["assignee"] is None
    ensure_user(node_of(app_client), "bob", Role.HANDLER)
    assert move("dispatched", assignee="bob").json()["assignee"] == "bob"
    assert move("in_progress").status_code == 200
    comment = app_client.post(f"/api/cases/{number}/comments", json={"text": "<b>on site</b>"})
    assert comment.status_code == 201 and comment.json()["text"] == "<b>on site</b>"
    assert move("feedback").status_code == 200
    assert move("closed").json()["open"] is False
    refused = app_client.post(f"/api/cases/{number}/items/snapshot", json={"camera": "gate"})
    assert refused.status_code == 409 and "reopen" in refused.json()["detail"]
    assert move("in_progress", comment="reopened").status_code == 200
    assert (
        app_client.post(f"/api/cases/{number}/items/snapshot", json={"camera": "gate"}).status_code
        == 201
    )
    for to in ("feedback", "closed", "archived"):
        assert move(to).status_code == 200, to
    archived = app_client.post(f"/api/cases/{number}/items/snapshot", json={"camera": "gate"})
    assert archived.status_code == 409 and "archived" in archived.json()["detail"]
    assert move("in_progress").status_code == 409
    case = app_client.get(f"/api/cases/{number}").json()
    assert case["state"] == "archived" and case["items"] == 1
    assert [t["kind"] for t in case["timeline"]].count("state") == 8
    listed = app_client.get("/api/cases", params={"state": "archived", "q": number}).json()
    assert [c["number"] for c in listed["cases"]] == [number]
    assert app_client.get("/api/cases", params={"open": "true", "q": number}).json()["total"] == 0

    assert app_client.get("/api/cases/2020-999999").status_code == 404
    missing = app_client.post("/api/cases/2020-999999/items/snapshot", json={"camera": "gate"})
    assert missing.status_code == 404
    assert app_client.post("/api/cases", json={"title": "x", "tags": ["nope"]}).status_code == 422


def test_offline_camera_or_empty_window_stores_nothing(app_client: TestClient) -> None:
    number = new_case(app_client)
    before = app_client.get(f"/api/cases/{number}").json()
    offline = app_client.post(f"/api/cases/{number}/items/clip", json={"camera": "dead"})
    assert offline.status_code == 503 and "nothing was stored" in offline.json()["detail"]
    unknown = app_client.post(f"/api/cases/{number}/items/snapshot", json={"camera": "nope"})
    assert unknown.status_code == 404
    long_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    empty = app_client.post(
        f"/api/cases/{number}/items/clip", json={"camera": "gate", "pre_s": 5, "at": long_ago}
    )
    assert empty.status_code == 409 and "no packets" in empty.json()["detail"]
    after = app_client.get(f"/api/cases/{number}").json()
    assert after["items"] == 0 and after["custody_head"] == before["custody_head"]


def evidence_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "evidence").rglob("*") if p.is_file())


def test_disk_full_during_a_write_leaves_no_item_and_the_case_unchanged(
    app_client: TestClient, data_dir: Path
) -> None:
    cases = node_of(app_client).cases
    number = new_case(app_client)
    before = app_client.get(f"/api/cases/{number}").json()
    files_before = evidence_files(data_dir)
    real = cases.evidence
    cases.evidence = DiskFullStore(data_dir / "evidence")
    try:
        response = app_client.post(
            f"/api/cases/{number}/items/clip", json={"camera": "gate", "pre_s": 2}
        )
    finally:
        cases.evidence = real
    assert response.status_code == 507
    assert "disk is full" in response.json()["detail"]
    assert "unchanged" in response.json()["detail"]
    assert evidence_files(data_dir) == files_before  # no partial item, no temp file
    after = app_client.get(f"/api/cases/{number}").json()
    assert after == before


def test_two_handlers_attaching_at_once_both_succeed(app_client: TestClient) -> None:
    number = new_case(app_client)
    results: list[int] = []
    node = node_of(app_client)
    handlers = {name: bearer(node, name, Role.HANDLER) for name in ("ann", "bob", "carl", "dora")}

    def attach(path: str, body: dict[str, Any], user: str) -> None:
        response = app_client.post(path, json=body, headers=handlers[user])
        results.append(response.status_code)

    threads = [
        threading.Thread(target=attach, args=(f"/api/cases/{number}/items/{kind}", body, user))
        for kind, body, user in (
            ("clip", {"camera": "gate", "pre_s": 1, "post_s": 1}, "ann"),
            ("clip", {"camera": "h265", "pre_s": 1, "post_s": 1}, "bob"),
            ("snapshot", {"camera": "gate"}, "carl"),
            ("snapshot", {"camera": "gate"}, "dora"),
        )
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [201] * 4
    items = app_client.get(f"/api/cases/{number}/items").json()
    assert sorted(i["attached_by"] for i in items) == ["ann", "bob", "carl", "dora"]
    custody = app_client.get(f"/api/cases/{number}/custody").json()
    assert [e["seq"] for e in custody] == list(range(1, 6))


@pytest.mark.parametrize(
    "ref",
    [
        "..%2F..%2Fcases.db",
        "%2e%2e",
        "..%2F..%2Fnode-key.pem",
        "0",
        "99999999",
        "1%2F..%2F..%2Fcases.db",
        "a" * 63,
        "%2Fetc%2Fpasswd",
    ],
)
def test_item_ids_never_reach_files(app_client: TestClient, ref: str) -> None:
    number = new_case(app_client)
    for path in (f"/api/cases/{number}/items/{ref}/content", f"/api/cases/{number}/items/{ref}"):
        response = app_client.get(path)
        assert response.status_code in (404, 405, 422), (path, response.status_code)
        assert b"PRIVATE KEY" not in response.content and b"SQLite" not in response.content


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "surveillance.cli", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_export_verifies_offline_and_one_flipped_byte_fails(
    app_client: TestClient, tmp_path: Path
) -> None:
    number = new_case(app_client)
    for kind, body in (("snapshot", {"camera": "gate"}), ("clip", {"camera": "gate", "pre_s": 2})):
        assert app_client.post(f"/api/cases/{number}/items/{kind}", json=body).status_code == 201
    exporter = bearer(node_of(app_client), "exporter", Role.HANDLER)
    response = app_client.get(f"/api/cases/{number}/export.zip", headers=exporter)
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    bundle = tmp_path / "case.zip"
    bundle.write_bytes(response.content)
    fingerprint = app_client.get("/api/node/key").json()["fingerprint"]
    ok = run_cli("verify-bundle", str(bundle))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert fingerprint in ok.stdout and f"case {number}" in ok.stdout
    assert (
        run_cli("verify-bundle", str(bundle), "--expect-fingerprint", fingerprint).returncode == 0
    )
    custody = app_client.get(f"/api/cases/{number}/custody").json()
    assert custody[-1]["action"] == "export" and custody[-1]["actor"] == "exporter"

    data = bytearray(bundle.read_bytes())
    clip_name = next(n for n in zipfile.ZipFile(bundle).namelist() if n.endswith(".mp4"))
    info = zipfile.ZipFile(bundle).getinfo(clip_name)
    data[info.header_offset + 200 + info.file_size // 2] ^= 0x40
    flipped = tmp_path / "flipped.zip"
    flipped.write_bytes(bytes(data))
    failed = run_cli("verify-bundle", str(flipped))
    assert failed.returncode == 1
    assert "FAILED" in failed.stdout and clip_name in failed.stdout


def test_verify_command_names_tampered_evidence_and_custody(
    app_client: TestClient, data_dir: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"server:\n  data_dir: {data_dir}\n")
    ok = run_cli("verify", "--config", str(config))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OK:")

    number = new_case(app_client)
    item = app_client.post(f"/api/cases/{number}/items/snapshot", json={"camera": "gate"}).json()
    blob = data_dir / "evidence" / item["sha256"][:2] / item["sha256"]
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    with sqlite3.connect(data_dir / "cases.db") as db:
        db.execute(
            "UPDATE custody_entries SET actor = 'mallory' WHERE seq = 1 AND case_id = "
            "(SELECT id FROM cases WHERE number = ?)",
            (number,),
        )
    failed = run_cli("verify", "--config", str(config))
    assert failed.returncode == 1
    assert f"case {number} item {item['id']}" in failed.stdout and "altered" in failed.stdout
    assert f"case {number} custody entry 1 (create)" in failed.stdout


def test_a_changed_item_row_fails_verify_and_its_export_fails_verify_bundle(
    app_client: TestClient, data_dir: Path, tmp_path: Path
) -> None:
    """One SQL UPDATE of an item's camera and attacher, and one of the case's state: the
    node still exports and signs what its rows say, but neither check accepts it."""
    config = tmp_path / "config.yaml"
    config.write_text(f"server:\n  data_dir: {data_dir}\n")
    number = new_case(app_client)
    item = app_client.post(f"/api/cases/{number}/items/snapshot", json={"camera": "gate"}).json()
    # Other tests of this module tamper with their own cases; this one's must be clean.
    assert f"case {number}" not in run_cli("verify", "--config", str(config)).stdout
    with sqlite3.connect(data_dir / "cases.db") as db:
        db.execute(
            "UPDATE evidence_items SET camera_id = 'h265', attached_by = 'mallory' WHERE id = ?",
            (item["id"],),
        )
        db.execute("UPDATE cases SET state = 'closed' WHERE number = ?", (number,))
    db.close()
    failed = run_cli("verify", "--config", str(config))
    assert failed.returncode == 1, failed.stdout
    label = f"case {number} item {item['id']} (snapshot from h265)"
    assert f"{label}: camera is 'h265' in its record but 'gate'" in failed.stdout
    assert f"{label}: attached_by is 'mallory' in its record but 'handler1'" in failed.stdout
    assert f"case {number}: state is 'closed', but its create entry leaves it" in failed.stdout

    fingerprint = app_client.get("/api/node/key").json()["fingerprint"]
    exporter = bearer(node_of(app_client), "exporter", Role.HANDLER)
    response = app_client.get(f"/api/cases/{number}/export.zip", headers=exporter)
    assert response.status_code == 200
    bundle = tmp_path / "tampered.zip"
    bundle.write_bytes(response.content)
    checked = run_cli("verify-bundle", str(bundle), "--expect-fingerprint", fingerprint)
    assert checked.returncode == 1, checked.stdout
    assert "camera is 'h265' in its record but 'gate'" in checked.stdout
    assert "state is 'closed'" in checked.stdout


def private_modes(data_dir: Path) -> dict[str, int]:
    """Every entry under the data directory that group or others could use, with its mode."""
    return {
        str(p.relative_to(data_dir)): p.stat().st_mode & 0o777
        for p in (data_dir, *data_dir.rglob("*"))
        if p.stat().st_mode & 0o077
    }


def test_the_data_directory_and_its_files_are_the_service_users_alone(
    app_client: TestClient, data_dir: Path, tmp_path: Path
) -> None:
    number = new_case(app_client)
    shot = app_client.post(f"/api/cases/{number}/items/snapshot", json={"camera": "gate"})
    assert shot.status_code == 201
    assert app_client.get("/api/node/key").status_code == 200  # the key exists
    assert (data_dir / "node-key.pem").is_file()
    sha256 = shot.json()["sha256"]
    open_to_others = private_modes(data_dir)
    # Other tests of this module loosen their own evidence files to tamper with them.
    tampered = [n for n in open_to_others if n.startswith("evidence/") and sha256 not in n]
    for name in tampered:
        if (data_dir / name).is_file():
            del open_to_others[name]
    assert (data_dir / "evidence" / sha256[:2] / sha256).is_file()
    assert open_to_others == {}

    # A node made before this: a 0755 directory with a 0644 database.
    older = tmp_path / "older"
    older.mkdir(mode=0o755)
    older.chmod(0o755)
    (older / "cases.db").touch(mode=0o644)
    (older / "cases.db").chmod(0o644)
    config = AppConfig.model_validate({"server": {"data_dir": str(older)}})
    with TestClient(create_app(config)):
        assert private_modes(older) == {}


def test_every_read_is_logged_once_per_reader_whatever_the_range(app_client: TestClient) -> None:
    """`Range: bytes=1-` is (nearly) the whole item: it is a view like any other. A player's
    further range requests from the same token within the window are not logged again."""
    node = node_of(app_client)
    number = new_case(app_client)
    item = app_client.post(f"/api/cases/{number}/items/snapshot", json={"camera": "gate"}).json()
    reader = bearer(node, "reader1", Role.HANDLER)

    def read(headers: dict[str, str], byte_range: str, **params: Any) -> None:
        response = app_client.get(
            item["content_url"], params=params, headers={**headers, "Range": byte_range}
        )
        assert response.status_code == 206, response.text

    def logged() -> list[tuple[str, str]]:
        custody = app_client.get(f"/api/cases/{number}/custody").json()
        return [(e["action"], e["actor"]) for e in custody if e["action"] in ("view", "download")]

    read(reader, "bytes=1-")
    assert logged() == [("view", "reader1")]
    read(reader, "bytes=0-")
    read(reader, "bytes=100-200")
    assert logged() == [("view", "reader1")]  # the same reader within the window
    read(bearer(node, "reader1", Role.HANDLER), "bytes=5-")  # another token, same user
    read(reader, "bytes=1-", download="true")
    assert logged() == [("view", "reader1"), ("view", "reader1"), ("download", "reader1")]
    audited = node.audit.query(AuditQuery(user="reader1"))
    actions = sorted(e.action for e in audited if e.detail.get("case") == number)
    assert actions == sorted(
        [AuditAction.EVIDENCE_VIEW, AuditAction.EVIDENCE_VIEW, AuditAction.EVIDENCE_DOWNLOAD]
    )
    # Asking for bytes past the end reads nothing, and logs nothing.
    beyond = app_client.get(
        item["content_url"], headers={**reader, "Range": f"bytes={item['size']}-"}
    )
    assert beyond.status_code == 416 and len(logged()) == 3

    whole = app_client.get(item["content_url"], headers=reader).content
    suffix = app_client.get(item["content_url"], headers={**reader, "Range": "bytes=-500"})
    assert suffix.status_code == 206 and suffix.content == whole[-500:]
    size = item["size"]
    assert suffix.headers["content-range"] == f"bytes {size - 500}-{size - 1}/{size}"
    longer = app_client.get(item["content_url"], headers={**reader, "Range": f"bytes=-{size * 2}"})
    assert longer.status_code == 206 and longer.content == whole
    empty = app_client.get(item["content_url"], headers={**reader, "Range": "bytes=-0"})
    assert empty.status_code == 416
    several = app_client.get(item["content_url"], headers={**reader, "Range": "bytes=0-10,20-30"})
    assert several.status_code == 200 and several.content == whole  # allowed by RFC 9110
    reversed_range = app_client.get(item["content_url"], headers={**reader, "Range": "bytes=5-2"})
    assert reversed_range.status_code == 200 and reversed_range.content == whole  # ignored
    huge = app_client.get(
        item["content_url"], headers={**reader, "Range": "bytes=" + "9" * 5000 + "-"}
    )
    assert huge.status_code == 200


def test_a_failed_export_is_logged_as_failed_with_its_reason(
    app_client: TestClient, data_dir: Path
) -> None:
    """A blob missing from the store: the answer names the file and the item, the custody
    log says the export failed and why (no `export` entry), and so does the audit log."""
    node = node_of(app_client)
    number = new_case(app_client)
    item = app_client.post(f"/api/cases/{number}/items/snapshot", json={"camera": "gate"}).json()
    blob = data_dir / "evidence" / item["sha256"][:2] / item["sha256"]
    kept = blob.read_bytes()
    blob.unlink()
    try:
        exporter = bearer(node, "exporter", Role.HANDLER)
        response = app_client.get(f"/api/cases/{number}/export.zip", headers=exporter)
        viewed = app_client.get(item["content_url"])
    finally:
        node.cases.evidence.put(kept)
    assert viewed.status_code == 500
    assert (
        f"{item['sha256']} (case {number} item {item['id']}, snapshot from gate) is missing"
        in (viewed.json()["detail"])
    )
    assert response.status_code == 500
    detail = response.json()["detail"]
    assert f"case {number} was not exported" in detail and item["sha256"] in detail
    assert f"item {item['id']}, snapshot from gate" in detail
    custody = app_client.get(f"/api/cases/{number}/custody").json()
    assert [e["action"] for e in custody] == ["create", "attach", "export_failed"]
    assert custody[-1]["actor"] == "exporter" and custody[-1]["item_id"] == item["id"]
    assert "is missing from the store" in custody[-1]["detail"]["reason"]
    audited = node.audit.query(AuditQuery(user="exporter", action=AuditAction.CASE_EXPORT))
    failed = [e for e in audited if e.detail.get("case") == number]
    assert [e.outcome for e in failed] == ["failed"]
    assert item["sha256"] in failed[0].detail["reason"]

    # With the file back, the export works and is logged as one.
    assert app_client.get(f"/api/cases/{number}/export.zip", headers=exporter).status_code == 200
    custody = app_client.get(f"/api/cases/{number}/custody").json()
    assert [e["action"] for e in custody][-1] == "export"


def test_a_full_disk_at_the_first_export_answers_507_and_a_broken_key_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key is made at the first signed change (a new case's create entry): a full disk
    then is 507 with the reason and leaves no key file (it left an empty one, and every
    later export answered 500). A broken key file is named, never replaced."""
    from surveillance.cases import signing
    from tests.cases.test_signing import _full_disk_halfway

    data = tmp_path / "node"
    config = AppConfig.model_validate({"server": {"data_dir": str(data)}})
    with TestClient(create_app(config), base_url="http://localhost") as client:
        client.headers.update(bearer(node_of(client), "handler1", Role.HANDLER))
        with monkeypatch.context() as patched:
            patched.setattr(signing, "_write_all", _full_disk_halfway)
            full = client.post("/api/cases", json={"title": "first"})
            key_full = client.get("/api/node/key")
        assert full.status_code == 507 and "disk is full" in full.json()["detail"]
        assert key_full.status_code == 507
        assert not (data / "node-key.pem").exists()
        assert [p.name for p in data.iterdir() if p.name.startswith(".node-key")] == []
        assert client.get("/api/cases").json()["total"] == 0  # nothing was created
        number = new_case(client, cameras=[])  # space freed
        assert client.get(f"/api/cases/{number}/export.zip").status_code == 200

        node_of(client).cases._key = None  # as after a restart
        (data / "node-key.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\nbroken")
        for path in (f"/api/cases/{number}/export.zip", "/api/node/key"):
            broken = client.get(path)
            assert broken.status_code == 500
            assert "node-key.pem cannot be used" in broken.json()["detail"], path
        refused = client.post(f"/api/cases/{number}/comments", json={"text": "x"})
        assert refused.status_code == 500 and "restore it" in refused.json()["detail"]
    config_file = tmp_path / "config.yaml"
    config_file.write_text(f"server:\n  data_dir: {data}\n")
    verified = run_cli("verify", "--config", str(config_file))
    assert verified.returncode == 1
    assert "node-key.pem cannot be used: it holds no readable PEM private key" in verified.stdout


def test_custody_entries_cut_from_the_end_show_against_the_audit_log(
    app_client: TestClient, data_dir: Path, tmp_path: Path
) -> None:
    """The newest entries removed and the head set back: every remaining entry is genuine
    and signed, so only the audit log's record of the same read shows the cut."""
    number = new_case(app_client)
    item = app_client.post(f"/api/cases/{number}/items/snapshot", json={"camera": "gate"}).json()
    reader = bearer(node_of(app_client), "reader2", Role.HANDLER)
    assert app_client.get(item["content_url"], headers=reader).status_code == 200
    node_of(app_client).audit.flush()
    config = tmp_path / "config.yaml"
    config.write_text(f"server:\n  data_dir: {data_dir}\n")
    assert f"case {number}" not in run_cli("verify", "--config", str(config)).stdout
    with sqlite3.connect(data_dir / "cases.db") as db:
        case_id, seq = db.execute(
            "SELECT id, custody_seq FROM cases WHERE number = ?", (number,)
        ).fetchone()
        db.execute("DELETE FROM custody_entries WHERE case_id = ? AND seq = ?", (case_id, seq))
        head = db.execute(
            "SELECT entry_hash FROM custody_entries WHERE case_id = ? AND seq = ?",
            (case_id, seq - 1),
        ).fetchone()[0]
        db.execute(
            "UPDATE cases SET custody_seq = ?, custody_head = ? WHERE id = ?",
            (seq - 1, head, case_id),
        )
    db.close()
    failed = run_cli("verify", "--config", str(config))
    assert failed.returncode == 1
    mine = [line for line in failed.stdout.splitlines() if f"case {number}" in line]
    assert mine == [
        f"FAILED: case {number}: the audit log records 1 successful view action(s), its "
        "custody log only 0 (custody entries removed from its end?)"
    ], failed.stdout
    assert "the database alone cannot show it" in failed.stdout


def test_head_gives_the_contents_headers_without_reading_or_logging(
    app_client: TestClient,
) -> None:
    """A player or download manager asks with HEAD before it reads: size, type and hash,
    no body, and no view in the custody log (no byte was read). Out of scope is 404 as GET."""
    node = node_of(app_client)
    number = new_case(app_client)
    item = app_client.post(f"/api/cases/{number}/items/snapshot", json={"camera": "gate"}).json()
    reader = bearer(node, "header1", Role.HANDLER)
    head = app_client.head(item["content_url"], headers=reader)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(item["size"])
    assert head.headers["content-type"] == "image/jpeg"
    assert head.headers["x-content-sha256"] == item["sha256"]
    ranged = app_client.head(item["content_url"], headers={**reader, "Range": "bytes=0-9"})
    assert ranged.status_code == 206 and ranged.headers["content-length"] == "10"
    beyond = app_client.head(
        item["content_url"], headers={**reader, "Range": f"bytes={item['size']}-"}
    )
    assert beyond.status_code == 416
    custody = app_client.get(f"/api/cases/{number}/custody").json()
    assert not [e for e in custody if e["action"] in ("view", "download")]
    missing = app_client.head(f"/api/cases/{number}/items/999999/content", headers=reader)
    assert missing.status_code == 404
