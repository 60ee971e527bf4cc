"""A camera (or platform) removed from the configuration: at the next start the bus ends and
closes its events (by the node, saying why), so they leave the open lists, the walls and the
metrics, and stay in history; the events of cameras still configured are left alone."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine

from surveillance.auth.audit import AuditLog, AuditQuery
from surveillance.catalog import Catalog
from surveillance.config.models import AppConfig, EventsConfig
from surveillance.events.records import EventFilter, EventSpec, EventState, EventType, Severity
from surveillance.events.store import EventStore
from surveillance.services.event_bus import NODE_ACTOR, EventBus

REMOVED = {"ended_by": "camera removed from the configuration"}


def catalog(*cameras: str, platforms: tuple[str, ...] = ("town", "gone")) -> Catalog:
    config: dict[str, Any] = {
        "platforms": [{"id": p, "name": p.title()} for p in platforms],
        "cameras": [
            {"id": c, "name": c, "platform": "gone" if c.startswith("gone") else "town",
             "url": f"rtsp://10.0.0.1/{c}"}
            for c in cameras
        ],
    }  # fmt: skip
    return Catalog.from_config(AppConfig.model_validate(config))


def bus(engine: Engine, cameras: Catalog, audit: AuditLog | None = None) -> EventBus:
    return EventBus(EventStore(engine), cameras, EventsConfig(), audit or AuditLog(engine))


async def test_events_of_a_removed_camera_are_closed_by_the_node_at_start(engine: Engine) -> None:
    now = time.time()
    first = bus(engine, catalog("kept", "gonecar"))
    motion = first.raise_event(
        EventSpec(EventType.ZONE_MOTION, Severity.ALARM, "motion:gonecar:1", "m", "gonecar", at=now)
    )
    ended = first.raise_event(
        EventSpec(EventType.ZONE_MOTION, Severity.ALARM, "motion:gonecar:2", "m", "gonecar", at=now)
    )
    first.end_event("motion:gonecar:2", now + 1)  # an alarm that ended: open until someone acts
    acked = first.raise_event(
        EventSpec(EventType.QUALITY_DARK, Severity.WARNING, "dark:gonecar", "d", "gonecar", at=now)
    )
    first.acknowledge(acked.id, "op", None)
    kept = first.raise_event(
        EventSpec(EventType.ZONE_MOTION, Severity.ALARM, "motion:kept:1", "m", "kept", at=now)
    )
    platform = first.raise_event(
        EventSpec(EventType.PLATFORM_OFFLINE, Severity.ALARM, "platform:gone", "p", None, "gone",
                  at=now)
    )  # fmt: skip
    assert first.open_counts()[Severity.ALARM] == 4

    # Restarted with a configuration without gonecar (and without its platform).
    audit = AuditLog(engine)
    restarted = bus(engine, catalog("kept", platforms=("town",)), audit)
    await restarted.start()
    try:
        for event_id in (motion.id, ended.id, acked.id, platform.id):
            closed = restarted.get(event_id)
            assert closed.state == EventState.CLOSED, event_id
            assert closed.closed_by == NODE_ACTOR and closed.ended_at is not None
        assert restarted.get(motion.id).detail == REMOVED
        assert restarted.get(acked.id).detail == REMOVED
        assert restarted.get(platform.id).detail == REMOVED
        # The one that had ended keeps why it ended; it is closed all the same.
        assert restarted.get(ended.id).detail == {}
        # The configured camera's alarm is a crash leftover: ended, still open for someone.
        left = restarted.get(kept.id)
        assert left.state == EventState.OPEN and left.detail == {"ended_by": "node restart"}
        assert restarted.open_counts()[Severity.ALARM] == 1
        gone = restarted.search(
            EventFilter(camera_id="gonecar", states=[EventState.OPEN, EventState.ACKNOWLEDGED])
        )
        assert gone.events == ()
        history = restarted.search(EventFilter(camera_id="gonecar"))
        assert {e.id for e in history.events} == {motion.id, ended.id, acked.id}
        audited = audit.query(AuditQuery(user=NODE_ACTOR))
        assert sorted(e.detail["event"] for e in audited) == sorted(
            [motion.id, ended.id, acked.id, platform.id]
        )
    finally:
        restarted.stop()
