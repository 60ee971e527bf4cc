"""The node's up-time event on a real bus and database: raised at start, its last sighting
moved by each beat, ended at a clean stop; a run that crashed is ended at its last
heartbeat by the next start (by the bus, or by the heartbeat itself if the bus did not),
never stretched over the outage by the new run's first beat."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import Engine

from surveillance.auth.audit import AuditLog
from surveillance.catalog import Catalog
from surveillance.config.models import AppConfig, EventsConfig
from surveillance.events.records import EventFilter, EventRecord, EventSpec, EventType, Severity
from surveillance.events.store import EventStore
from surveillance.services.event_bus import EventBus
from surveillance.services.node_heartbeat import NODE_RUNNING_KEY, NodeHeartbeat

BEAT_S = 0.05


def new_bus(engine: Engine) -> EventBus:
    catalog = Catalog.from_config(AppConfig())
    return EventBus(EventStore(engine), catalog, EventsConfig(), AuditLog(engine))


def runs(bus: EventBus) -> list[EventRecord]:
    """Every node.running event, oldest first."""
    page = bus.search(EventFilter(types=[EventType.NODE_RUNNING], limit=50))
    return sorted(page.events, key=lambda e: e.id)


def crashed_run(bus: EventBus, started: float, last_beat: float) -> None:
    """What a node that died after a beat at ``last_beat`` leaves: its event active."""
    for at in (started, last_beat):
        bus.raise_event(
            EventSpec(EventType.NODE_RUNNING, Severity.INFO, NODE_RUNNING_KEY, "ran", at=at)
        )


async def test_beats_then_a_clean_stop(engine: Engine) -> None:
    bus = new_bus(engine)
    await bus.start()
    heartbeat = NodeHeartbeat(bus, interval_s=BEAT_S)
    before = time.time()
    await heartbeat.start()
    [run] = runs(bus)
    assert (run.key, run.severity, run.active) == (NODE_RUNNING_KEY, Severity.INFO, True)
    assert before <= run.started_at <= time.time()
    await asyncio.sleep(BEAT_S * 6)
    [beaten] = runs(bus)
    assert beaten.id == run.id and beaten.last_seen_at > run.last_seen_at + BEAT_S
    await heartbeat.stop()
    [stopped] = runs(bus)
    assert stopped.ended_at is not None and stopped.ended_at >= beaten.last_seen_at
    bus.stop()


async def test_a_crashed_run_ends_at_its_last_heartbeat(engine: Engine) -> None:
    now = time.time()
    # Ended by the bus's start (every leftover at the last heartbeat) ...
    first = new_bus(engine)
    crashed_run(first, now - 600, now - 300)
    restarted = new_bus(engine)
    await restarted.start()
    heartbeat = NodeHeartbeat(restarted, interval_s=3600)
    await heartbeat.start()
    old, new = runs(restarted)
    assert (old.started_at, old.ended_at) == (now - 600, now - 300)
    assert new.active and new.started_at >= now
    await heartbeat.stop()
    restarted.stop()

    # ... and by the heartbeat itself when the bus has not ended it.
    crashed_run(restarted, now - 200, now - 100)
    heartbeat = NodeHeartbeat(restarted, interval_s=3600)
    await heartbeat.start()
    *_, old, new = runs(restarted)
    assert (old.started_at, old.ended_at) == (now - 200, now - 100)
    assert new.active and new.id != old.id
    await heartbeat.stop()
