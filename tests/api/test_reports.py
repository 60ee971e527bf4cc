"""The availability report through the API, from events on a real node's bus: a past day
the node ran twelve hours with two cameras down for a while, as JSON and as CSV (header,
a formula-looking platform name made harmless), scoped to what the caller sees, refused
to roles without reports.read and for dates that make no sense. The node's own heartbeat
event is the monitored time of today.

Cameras are on-demand and never asked for, so the node connects to nothing: the only
events are the ones this test raises (and the heartbeat)."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from surveillance.api.app import create_app
from surveillance.api.node import Node
from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from surveillance.events.records import EventFilter, EventSpec, EventType, Severity
from surveillance.services.node_heartbeat import NODE_RUNNING_KEY
from tests.auth_helpers import bearer

DAY = date.today() - timedelta(days=3)  # a past day, whatever the time of the test
HOUR = 3600.0


def at(hour: float) -> float:
    return datetime.combine(DAY, datetime.min.time(), UTC).timestamp() + hour * HOUR


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    # Days are the node's local days: UTC here, so the hours above are the day's.
    patch = pytest.MonkeyPatch()
    patch.setenv("TZ", "UTC")
    time.tzset()
    cameras = [
        ("a", "town"), ("b", "town"), ("c", "town"), ("off", "town"), ("far1", "far"),
    ]  # fmt: skip
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(Path(tmp_path_factory.mktemp("reports")))},
            "platforms": [{"id": "town", "name": "=Town"}, {"id": "far", "name": "Far"}],
            "cameras": [
                {"id": cid, "name": cid, "platform": platform, "mode": "on-demand",
                 "enabled": cid != "off", "url": f"rtsp://127.0.0.1:9/{cid}"}
                for cid, platform in cameras
            ],
        }
    )  # fmt: skip
    try:
        with TestClient(create_app(config), base_url="http://localhost") as served:
            node: Node = served.app.state.node  # type: ignore[attr-defined]
            history(node)
            yield served
    finally:
        patch.undo()
        time.tzset()


def span(node: Node, spec: EventSpec, end: float) -> None:
    node.events.raise_event(spec)
    node.events.end_event(spec.key, at=end)


def history(node: Node) -> None:
    """The node ran 08:00-20:00 of DAY; a was down 10:00-13:00, b 19:00-21:00 (one hour
    of it monitored) in a storm, the disabled camera all day (it does not count)."""
    span(node, EventSpec(EventType.NODE_RUNNING, Severity.INFO, "node.running:past",
                         "node ran", at=at(8)), at(20))  # fmt: skip
    # b's outage was part of a storm: folded under a platform event, it counts all the same.
    storm = node.events.raise_event(
        EventSpec(EventType.PLATFORM_OFFLINE, Severity.WARNING, "platform.offline:town",
                  "town offline", platform_id="town", at=at(19))
    )  # fmt: skip
    for camera, start, end in (("a", 10, 13), ("b", 19, 21), ("off", 0, 24)):
        spec = EventSpec(
            EventType.CAMERA_OFFLINE, Severity.WARNING, f"camera.offline:{camera}",
            f"{camera} offline", camera_id=camera, platform_id="town", at=at(start),
        )  # fmt: skip
        node.events.raise_event(spec, parent_id=storm.id if camera == "b" else None)
        node.events.end_event(spec.key, at=at(end))
    node.events.end_event(storm.key, at=at(21))


def test_availability_json_and_csv(client: TestClient) -> None:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    handler = bearer(node, "handler1", Role.HANDLER)
    today = date.today()
    answer = client.get(
        "/api/reports/availability",
        params={"from": DAY.isoformat(), "to": today.isoformat()},
        headers=handler,
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["time_zone"].startswith("UTC")
    rows = {(r["platform"], r["date"]): r for r in report["days"]}
    assert len(rows) == 2 * ((today - DAY).days + 1)
    town = rows[("town", DAY.isoformat())]
    assert town["platform_name"] == "=Town" and town["cameras"] == 3  # not the disabled one
    assert town["monitored_hours"] == pytest.approx(12.0)
    assert town["online_rate"] == pytest.approx((9 / 12 + 11 / 12 + 1) / 3, abs=1e-5)
    assert town["offline_events"] == 2
    far = rows[("far", DAY.isoformat())]
    assert (far["online_rate"], far["offline_events"]) == (1.0, 0)
    # The day after: not monitored at all, so no rate rather than 100 %.
    after = rows[("town", (DAY + timedelta(days=1)).isoformat())]
    assert (after["online_rate"], after["monitored_hours"]) == (None, 0.0)
    # Today the node runs now: its heartbeat event is monitored time.
    running = node.events.search(
        EventFilter(types=[EventType.NODE_RUNNING], active=True, limit=5)
    ).events
    assert [e.key for e in running] == [NODE_RUNNING_KEY]
    assert rows[("town", today.isoformat())]["online_rate"] == 1.0  # monitored, not null

    sheet = client.get(
        "/api/reports/availability.csv",
        params={"from": DAY.isoformat(), "to": DAY.isoformat(), "platform": "town"},
        headers=handler,
    )
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
    assert f'filename="availability-{DAY}-{DAY}.csv"' in sheet.headers["content-disposition"]
    header, *lines = list(csv.reader(io.StringIO(sheet.text)))
    assert header == [
        "platform", "platform_name", "date", "cameras", "online_rate", "monitored_hours",
        "offline_events",
    ]  # fmt: skip
    assert lines == [
        ["town", "'=Town", DAY.isoformat(), "3", str(round((9 / 12 + 11 / 12 + 1) / 3, 6)),
         "12.0", "2"],
    ]  # fmt: skip


def test_scope_permissions_and_bad_dates(client: TestClient) -> None:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    url = "/api/reports/availability"
    day = {"from": DAY.isoformat(), "to": DAY.isoformat()}
    scoped = bearer(node, "handler-a", Role.HANDLER, cameras=["a"])
    answer = client.get(url, params=day, headers=scoped)
    assert answer.status_code == 200, answer.text
    [row] = answer.json()["days"]  # only its platform, only its camera
    assert (row["platform"], row["cameras"]) == ("town", 1)
    assert row["online_rate"] == pytest.approx(9 / 12, abs=1e-5)
    hidden = client.get(url, params={**day, "platform": "far"}, headers=scoped)
    unknown = client.get(url, params={**day, "platform": "nowhere"}, headers=scoped)
    assert hidden.status_code == unknown.status_code == 404
    assert "'far'" in hidden.json()["detail"]

    for role in (Role.VIEWER, Role.OPERATOR):
        headers = bearer(node, f"no-reports-{role.value}", role)
        assert client.get(url, params=day, headers=headers).status_code == 403
    admin = bearer(node, "admin1", Role.ADMIN)
    for params, named in (
        ({"from": "2026-13-01", "to": "2026-12-01"}, "from"),
        ({"from": "2026-12-02", "to": "2026-12-01"}, "to"),
        ({"from": "2020-01-01", "to": "2026-12-01"}, "366"),
        ({"from": "1700000000", "to": "2026-12-01"}, "from"),
        ({"to": "2026-12-01"}, "from"),
    ):
        refused = client.get(url, params=params, headers=admin)
        assert refused.status_code == 422, (params, refused.text)
        assert named in refused.text
