"""Camera health into events (services/health_alarms.py) over the real EventBus and SQLite:
graces, quick reconnects, a stall that becomes an outage, storms folded under one platform
event, and the cameras that never count; then what a restart does to events left active.

A real IngestService, not started: health changes are made the way its worker threads make
them (``health.set_state`` / ``set_error`` from another thread), so the whole path from a
stream's listener to the stored event is the service's own.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from surveillance import db
from surveillance.auth.audit import AuditLog
from surveillance.catalog import Catalog
from surveillance.config.models import AppConfig
from surveillance.events.records import EventFilter, EventRecord, EventSpec, EventType, Severity
from surveillance.events.store import EventStore
from surveillance.media.health import ErrorKind, StreamState
from surveillance.services.event_bus import EventBus
from surveillance.services.health_alarms import HealthAlarms
from surveillance.services.ingest import IngestService

GRACE_S = 0.5
TICK_WAIT_S = 4.0  # the grace, a 1 s tick, and a loaded machine


def camera(camera_id: str, platform: str, **extra: Any) -> dict[str, Any]:
    return {"id": camera_id, "name": camera_id.upper(), "platform": platform,
            "url": f"rtsp://127.0.0.1:1/{camera_id}", **extra}  # fmt: skip


CONFIG = AppConfig.model_validate(
    {
        "events": {
            "offline_after_s": GRACE_S,
            "stalled_after_s": GRACE_S,
            "storm_cameras": 3,
            "storm_window_s": 5,
        },
        "platforms": [{"id": p, "name": p.title()} for p in ("town", "village", "pair", "solo")],
        "cameras": [
            camera("t1", "town"),
            camera("t2", "town"),
            *(camera(f"v{i}", "village") for i in range(4)),
            camera("v-off", "village", enabled=False),
            camera("v-demand", "village", mode="on-demand"),
            camera("p1", "pair"),
            camera("p2", "pair"),
            camera("s1", "solo"),
        ],
    }
)


class Rig:
    def __init__(self, ingest: IngestService, bus: EventBus, alarms: HealthAlarms) -> None:
        self.ingest, self.bus, self.alarms = ingest, bus, alarms
        self.changes: list[EventRecord] = []
        bus.add_listener(self.changes.append)

    def set(self, camera_id: str, state: StreamState) -> None:
        """As an ingest worker thread does."""
        health = self.ingest.stream(camera_id).health
        if state is StreamState.OFFLINE:
            action: Callable[[], None] = lambda: health.set_error(  # noqa: E731
                ErrorKind.REFUSED, "connection refused", StreamState.OFFLINE
            )
        else:
            action = lambda: health.set_state(state)  # noqa: E731
        thread = threading.Thread(target=action)
        thread.start()
        thread.join()

    def active(self, **query: Any) -> list[EventRecord]:
        return list(
            self.bus.search(EventFilter(active=True, include_children=True, **query)).events
        )

    async def until(self, check: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + TICK_WAIT_S
        while time.monotonic() < deadline:
            if result := check():
                return result
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'node.db'}")
    db.upgrade(engine)
    catalog = Catalog.from_config(CONFIG)
    ingest = IngestService(catalog, CONFIG.ingest, lambda text: text)
    audit = AuditLog(engine)
    bus = EventBus(EventStore(engine), catalog, CONFIG.events, audit)
    alarms = HealthAlarms(ingest, bus, CONFIG.events)
    for camera_id in catalog.cameras:
        if catalog.cameras[camera_id].enabled and camera_id != "v-demand":
            ingest.stream(camera_id).health.set_state(StreamState.ONLINE)
    await bus.start()
    await alarms.start()
    try:
        yield Rig(ingest, bus, alarms)
    finally:
        await alarms.stop()
        bus.stop()
        engine.dispose()


async def test_graces_quick_reconnects_and_a_stall_that_becomes_an_outage(rig: Rig) -> None:
    # Back within the grace: nothing, even after several graces have passed.
    rig.set("t1", StreamState.OFFLINE)
    rig.set("t1", StreamState.CONNECTING)
    rig.set("t1", StreamState.ONLINE)
    went_down = time.time()
    rig.set("t2", StreamState.STALLED)
    stalled = await rig.until(lambda: rig.active(camera_id="t2"), "camera.stalled for t2")
    assert [e.type for e in stalled] == ["camera.stalled"]
    assert stalled[0].started_at == pytest.approx(went_down, abs=0.2)
    assert stalled[0].severity is Severity.WARNING and stalled[0].summary == "T2 stalled"
    # The session then ends: the stall ends, the outage is raised at once, dated from the
    # stall (the camera has been down all along).
    rig.set("t2", StreamState.OFFLINE)
    offline = await rig.until(
        lambda: [e for e in rig.active(camera_id="t2") if e.type == "camera.offline"],
        "camera.offline for t2",
    )
    assert offline[0].started_at == stalled[0].started_at
    assert offline[0].detail == {"reason": "connection refused"}
    assert [e.type for e in rig.active(camera_id="t2")] == ["camera.offline"]
    rig.set("t2", StreamState.ONLINE)
    await rig.until(lambda: not rig.active(camera_id="t2"), "t2's event ended")
    await asyncio.sleep(GRACE_S + 1.2)
    assert not rig.bus.search(EventFilter(camera_id="t1")).events
    assert rig.active() == []


async def test_a_storm_is_one_platform_event_with_its_cameras_folded_and_ends_with_them(
    rig: Rig,
) -> None:
    # Two of the village down: camera events, no storm (it takes three).
    for camera_id in ("v0", "v1"):
        rig.set(camera_id, StreamState.OFFLINE)
    await rig.until(lambda: len(rig.active(platform_id="village")) == 2, "two camera events")
    assert {e.parent_id for e in rig.active(platform_id="village")} == {None}
    # The third within the window: one platform event; the two raised before fold under it.
    rig.set("v2", StreamState.OFFLINE)
    platform = await rig.until(
        lambda: [e for e in rig.active(platform_id="village")
                 if e.type == "platform.offline" and e.detail.get("cameras") == 3],
        "the platform event",
    )  # fmt: skip

    def folded() -> list[EventRecord] | None:
        found = [e for e in rig.active(platform_id="village") if e.parent_id == platform[0].id]
        return found if len(found) == 3 else None

    children = await rig.until(folded, "three camera events folded under it")
    assert sorted(e.camera_id or "" for e in children) == ["v0", "v1", "v2"]
    assert platform[0].camera_id is None and platform[0].summary == "Village: 3 cameras down"
    # Disabled and idle on-demand cameras never count, nor go down.
    assert {e.camera_id for e in rig.active(platform_id="village")} == {None, "v0", "v1", "v2"}
    # The platform event ends with its last camera.
    rig.set("v0", StreamState.ONLINE)
    rig.set("v1", StreamState.ONLINE)
    await rig.until(lambda: len(rig.active(platform_id="village")) == 2, "two ended")
    rig.set("v2", StreamState.ONLINE)
    await rig.until(lambda: not rig.active(platform_id="village"), "the storm over")
    # A platform of two cameras, both down: a storm; a platform of one: that camera's event.
    for camera_id in ("p1", "p2", "s1"):
        rig.set(camera_id, StreamState.OFFLINE)
    await rig.until(lambda: len(rig.active(platform_id="pair")) == 3, "the pair's storm")
    solo = await rig.until(lambda: rig.active(platform_id="solo"), "the solo camera's event")
    assert [e.type for e in solo] == ["camera.offline"]
    # Raised for the platform as a whole: one new platform event per storm.
    raised = [c for c in rig.changes if c.type == "platform.offline"]
    assert len({c.id for c in raised}) == 2


async def test_a_restart_ends_what_the_stopped_node_left_active_at_its_last_heartbeat(
    tmp_path: Path,
) -> None:
    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'node.db'}")
    db.upgrade(engine)
    store = EventStore(engine)
    heartbeat = time.time() - 100
    running = EventSpec(EventType.NODE_RUNNING, Severity.INFO, "node.running", "up")
    store.raise_event(running, heartbeat - 600)
    store.raise_event(running, heartbeat)
    left, _ = store.raise_event(
        EventSpec(EventType.ZONE_MOTION, Severity.ALARM, "motion:t1:1", "motion", "t1"),
        heartbeat - 30,
    )
    catalog = Catalog.from_config(CONFIG)
    bus = EventBus(store, catalog, CONFIG.events, AuditLog(engine))
    await bus.start()
    try:
        ended = bus.get(left.id)
        assert ended.ended_at == heartbeat and ended.detail == {"ended_by": "node restart"}
        assert ended.state == "open"  # an alarm still waits for someone to acknowledge it
        assert bus.search(EventFilter(active=True)).events == ()
        # Raised from another thread: the page's feed on the loop hears of it.
        feed = bus.subscribe(user_id=1)
        record = await asyncio.to_thread(
            bus.raise_event,
            EventSpec(EventType.QUALITY_DARK, Severity.WARNING, "quality.dark:t2", "dark", "t2"),
        )
        assert record.platform_id == "town"  # filled in from the catalog
        assert await feed.changes(2.0) == {record.id}
        assert bus.raised_counts() == {"quality.dark": 1}
        bus.unsubscribe(feed)
    finally:
        bus.stop()
        engine.dispose()


async def test_a_stopping_node_raises_nothing_new_and_still_ends_events(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the stopping node does to its own streams (thousands of GB channels at once)
    raises no camera or platform event, and the work queued behind them does not hold
    the stop; an end is still written."""
    await rig.alarms.stop()
    monkeypatch.setattr("surveillance.services.health_alarms.TICK_S", 3600.0)  # no ticks
    alarms = HealthAlarms(rig.ingest, rig.bus, CONFIG.events)
    await alarms.start()
    rig.set("t1", StreamState.OFFLINE)
    await asyncio.sleep(GRACE_S + 0.2)
    rig.set("t1", StreamState.OFFLINE)  # a change past the grace: raised at once
    await rig.until(lambda: rig.active(camera_id="t1"), "t1's event")
    for camera_id in ("t2", "v0", "v1", "v2", "v3"):
        rig.set(camera_id, StreamState.OFFLINE)
    await asyncio.sleep(GRACE_S + 0.2)  # down past their grace, not raised yet (no tick)
    stopping = asyncio.create_task(alarms.stop())
    await asyncio.sleep(0)  # stop() has begun; the ingest now stops its streams
    for camera_id in ("t2", "v0", "v1", "v2", "v3"):
        rig.set(camera_id, StreamState.OFFLINE)
    rig.set("t1", StreamState.ONLINE)
    await stopping
    assert rig.active() == []
    assert {c.camera_id for c in rig.changes} == {"t1"}
