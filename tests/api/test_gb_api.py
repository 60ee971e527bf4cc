"""GB/T 28181 over the API, the CLI and the metrics: platforms' status and channels for
admins, overrides of a channel camera's name and tags (audited, checked, kept apart from
RTSP cameras), ``surveillance gb status`` reading the same database, and the per-platform
metrics. The channels are stored before the node starts, as a node that ran before finds
them: they are cameras at once, unreachable until their platform registers again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from surveillance.api.app import create_app
from surveillance.api.node import Node
from surveillance.auth.audit import AuditQuery
from surveillance.auth.roles import Role
from surveillance.cli import main
from surveillance.config import load_config
from surveillance.config.models import AppConfig
from surveillance.db import create_db_engine, database_url, upgrade
from surveillance.events.records import EventSpec, EventType, Severity
from surveillance.events.store import EventStore
from surveillance.gb28181.records import GbChannelRecord, GbRegistration
from surveillance.gb28181.store import GbStore
from surveillance.services.gb_cameras import NOT_REGISTERED
from tests.auth_helpers import bearer

DEVICE = "34020000002000000002"
PASSWORD = "api-Secret-5150"
CHANNELS = [f"340200000013200{n:05d}" for n in range(3)]


def write_config(tmp_path: Path) -> Path:
    document = {
        "server": {"data_dir": str(tmp_path / "data")},
        "tags": [{"id": "north", "name": "North"}],
        "platforms": [{"id": "town", "name": "Town"}],
        "cameras": [
            {"id": "gate", "name": "Gate", "platform": "town", "mode": "on-demand",
             "url": "rtsp://127.0.0.1:9/never"},
        ],
        "gb28181": {
            "enabled": True,
            "sip_port": 5060,  # replaced by a free port below (the node) or unused (the CLI)
            "platforms": [
                {"id": "city", "name": "City platform", "device_id": DEVICE,
                 "password": PASSWORD, "coordinates": "wgs84", "tags": ["north"]},
            ],
        },
    }  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def store_a_past_run(config: AppConfig, *, registered_at: float, keepalive_at: float) -> None:
    engine = create_db_engine(database_url(config))
    upgrade(engine)
    store = GbStore(engine)
    store.record_registration(
        GbRegistration("city", DEVICE, "192.0.2.7", 5070, "udp", registered_at,
                       registered_at + 3600, "Platform/2.0")
    )  # fmt: skip
    store.record_keepalive("city", keepalive_at)
    channels = [
        GbChannelRecord("city", c, f"Channel {n}", status="OFF" if n == 2 else "ON",
                        longitude=117.2, latitude=31.8, updated_at=registered_at)
        for n, c in enumerate(CHANNELS)
    ]  # fmt: skip
    store.replace_channels("city", channels, at=registered_at)
    engine.dispose()


def node_heartbeat(config: AppConfig, *, seen_at: float, ended: bool) -> None:
    """The node's heartbeat as services/node_heartbeat.py writes it: last seen at
    ``seen_at``, ended by a clean stop or left open (a node killed, or running)."""
    engine = create_db_engine(database_url(config))
    events = EventStore(engine)
    spec = EventSpec(type=EventType.NODE_RUNNING, severity=Severity.INFO, key="node.running",
                     summary="node running")  # fmt: skip
    events.raise_event(spec, at=seen_at)
    if ended:
        events.end_event("node.running", at=seen_at)
    engine.dispose()


@pytest.fixture
def node_client(tmp_path: Path) -> Iterator[tuple[Node, TestClient]]:
    config = load_config(write_config(tmp_path))
    config = config.model_copy(
        update={"gb28181": config.gb28181.model_copy(update={"sip_port": 0})}
    )
    # A registration that expired while the node was down (one still valid is taken over
    # as online at start: tests/services/test_gb_registry.py).
    past = time.time() - 4000
    store_a_past_run(config, registered_at=past, keepalive_at=past + 30)
    app = create_app(config)
    with TestClient(app, base_url="http://localhost") as client:
        yield app.state.node, client


def test_platforms_channels_and_overrides_over_the_api(
    node_client: tuple[Node, TestClient],
) -> None:
    node, client = node_client
    admin = bearer(node)
    viewer = bearer(node, "vic", Role.VIEWER)
    platforms = client.get("/api/gb/platforms", headers=admin)
    assert platforms.status_code == 200, platforms.text
    [city] = platforms.json()
    # This run has not heard from it yet: offline, why, and its stored channels counted.
    assert (city["platform_id"], city["online"], city["reason"]) == ("city", False, NOT_REGISTERED)
    assert (city["channels"], city["channels_online"], city["streams"]) == (3, 0, 0)
    assert PASSWORD not in platforms.text
    assert client.get("/api/gb/platforms", headers=viewer).status_code == 403

    page = client.get("/api/gb/platforms/city/channels?offset=1&limit=1", headers=admin).json()
    assert (page["total"], page["offset"], page["limit"]) == (3, 1, 1)
    [one] = page["channels"]
    assert (one["camera_id"], one["name"], one["tags"]) == (f"city.{CHANNELS[1]}", "Channel 1",
                                                            ["north"])  # fmt: skip
    assert client.get("/api/gb/platforms/nope/channels", headers=admin).status_code == 404

    camera_id = f"city.{CHANNELS[0]}"
    listed = client.get("/api/cameras", headers=admin).json()
    assert camera_id in [c["id"] for c in listed]
    url = f"/api/cameras/{camera_id}/override"
    saved = client.put(url, json={"name": "Main gate", "tags": ["north"]}, headers=admin)
    assert saved.status_code == 200, saved.text
    assert saved.json()["name"] == "Main gate" and saved.json()["updated_by"] == "admin"
    cameras = {c["id"]: c for c in client.get("/api/cameras", headers=admin).json()}
    assert cameras[camera_id]["name"] == "Main gate"
    unknown_tag = client.put(url, json={"tags": ["no-such-tag"]}, headers=admin)
    assert unknown_tag.status_code == 422 and "no-such-tag" in unknown_tag.text
    rtsp = client.put("/api/cameras/gate/override", json={"name": "x"}, headers=admin)
    assert rtsp.status_code == 404 and "not a GB/T 28181 channel" in rtsp.text
    assert client.put(url, json={"name": "x"}, headers=viewer).status_code == 403
    assert client.delete(url, headers=admin).status_code == 204
    cameras = {c["id"]: c for c in client.get("/api/cameras", headers=admin).json()}
    assert cameras[camera_id]["name"] == "Channel 0"
    entries = node.audit.query(AuditQuery(action="gb.override"))
    assert [(e.camera_id, e.detail.get("cleared")) for e in reversed(entries)] == [
        (camera_id, None), (camera_id, True),
    ]  # fmt: skip

    metrics = client.get("/metrics", headers=admin).text
    assert 'surveillance_gb_platform_online{platform="city"} 0.0' in metrics
    assert 'surveillance_gb_channels{platform="city"} 3.0' in metrics
    assert 'surveillance_gb_sip_dropped_total{reason="flood"} 0.0' in metrics
    assert "surveillance_gb_keepalive_age_seconds" in metrics


def test_gb_status_command_reads_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path)
    assert main(["gb", "status", "--config", str(path)]) == 2  # no database yet: says so
    assert "no database" in capsys.readouterr().err
    config = load_config(path)
    now = time.time()
    store_a_past_run(config, registered_at=now - 60, keepalive_at=now - 30)
    # No heartbeat: the node never ran on this database; nothing is online.
    assert main(["gb", "status", "--config", str(path)]) == 0
    text = capsys.readouterr().out
    assert "node not running (it never ran" in text and "city (34020000002000000002) last" in text
    node_heartbeat(config, seen_at=now - 10, ended=False)  # the node runs
    assert main(["gb", "status", "--config", str(path), "--json"]) == 0
    [city] = json.loads(capsys.readouterr().out)
    assert city["node_running"] is True
    assert city["online"] is True  # registered until now + 3540 s, heard 30 s ago (< 180 s)
    assert (city["address"], city["channels"], city["channels_on"], city["streams"]) == (
        "192.0.2.7:5070/udp", 3, 2, 0,
    )  # fmt: skip
    # Heard of 200 s ago: three keepalives of 60 s missed, offline whatever its Expires.
    store_a_past_run(config, registered_at=now - 400, keepalive_at=now - 200)
    assert main(["gb", "status", "--config", str(path)]) == 0
    text = capsys.readouterr().out
    assert "city (34020000002000000002) offline" in text and "channels 2/3 on" in text
    assert PASSWORD not in text
    # The node stopped (cleanly, or killed: its heartbeat left open goes stale) while the
    # platform was alive: not online now, online as last known, at the last heartbeat.
    for ended, seen_at in ((True, now - 5), (False, now - 400)):
        store_a_past_run(config, registered_at=seen_at - 60, keepalive_at=seen_at - 30)
        node_heartbeat(config, seen_at=seen_at, ended=ended)
        assert main(["gb", "status", "--config", str(path), "--json"]) == 0
        [city] = json.loads(capsys.readouterr().out)
        assert (city["node_running"], city["online"], city["streams"]) == (False, False, 0)
        assert city["last_known_online"] is True
        assert main(["gb", "status", "--config", str(path)]) == 0
        text = capsys.readouterr().out
        assert text.startswith("node not running (last heartbeat ")
        assert " online " not in text.replace("last known online", "")
