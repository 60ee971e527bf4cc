"""The availability report with several nodes (cluster mode): monitored time is the time
any node ran (the union of every node's ``node.running:<id>`` runs), not their sum; a node
that crashed and never came back counts up to its last heartbeat (and one interval), not
until now. Real event stores, one per node, over one database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from surveillance import db
from surveillance.catalog import Catalog
from surveillance.config.models import AppConfig
from surveillance.events.records import EventSpec, EventType, Severity
from surveillance.events.store import EventStore
from surveillance.services.availability import AvailabilityService
from surveillance.services.node_heartbeat import HEARTBEAT_S, node_running_key

pytestmark = pytest.mark.unit

DAY = date.today() - timedelta(days=3)
H = 3600.0


def at(hour: float, day: date = DAY) -> float:
    return datetime.combine(day, datetime.min.time(), UTC).timestamp() + hour * H


@pytest.fixture
def utc_days(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Days are the node's local days: UTC here, so the hours above are the day's."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def run(
    store: EventStore, node_id: str, start: float, beats: list[float], end: float | None
) -> None:
    spec = EventSpec(EventType.NODE_RUNNING, Severity.INFO, node_running_key(node_id), "running")
    for moment in [start, *beats]:  # a raise at start, then one per heartbeat
        store.raise_event(spec, moment)
    if end is not None:
        store.end_event(spec.key, end)


def test_monitored_time_is_any_node_running(utc_days: None, tmp_path: Path) -> None:
    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'events.db'}")
    db.upgrade(engine)
    try:
        a, b, c = (EventStore(engine, node_id) for node_id in "abc")
        run(a, "a", at(8), [], at(14))  # a: 08-14
        run(b, "b", at(10), [], at(20))  # b: 10-20, overlapping a
        run(c, "c", at(2), [at(3), at(4)], None)  # c: crashed after its 04:00 beat, gone
        offline = EventSpec(EventType.CAMERA_OFFLINE, Severity.WARNING, "camera.offline:x",
                            "x offline", camera_id="x", platform_id="p")  # fmt: skip
        b.raise_event(offline, at(12))
        b.end_event(offline.key, at(13))
        config = AppConfig.model_validate(
            {
                "platforms": [{"id": "p", "name": "P"}],
                "cameras": [{"id": "x", "name": "x", "platform": "p",
                             "url": "rtsp://127.0.0.1:9/x"}],
            }
        )  # fmt: skip
        cameras = list(Catalog.from_config(config).cameras.values())
        report = AvailabilityService(a).report(DAY, DAY + timedelta(days=1), cameras)

        [day, after] = report
        # 02:00-04:01 (c, up to its last beat and one interval) and 08-20 (a or b).
        monitored_s = 2 * H + HEARTBEAT_S + 12 * H
        assert day.monitored_hours == pytest.approx(monitored_s / H)  # not the sum (18 h)
        assert day.online_rate == pytest.approx(1 - H / monitored_s)
        # The next day nobody ran: c's run left active does not make it monitored.
        assert (after.monitored_hours, after.online_rate) == (0.0, None)
    finally:
        engine.dispose()
