"""EventStore on SQLite and PostgreSQL: one active event per key, the state rules, searches
with scope and paging, pictures, retention and what a stopped node left active."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError

from surveillance.events.errors import EventNotFound, EventStateConflict
from surveillance.events.records import (
    EventFilter,
    EventPicture,
    EventSpec,
    EventState,
    EventType,
    Severity,
)
from surveillance.events.store import EventStore
from surveillance.events.tables import EventRow

T0 = 1_700_000_000.0
JPEG = b"\xff\xd8 a picture \xff\xd9"


def offline(camera: str, platform: str = "town", **fields: object) -> EventSpec:
    values: dict[str, object] = {
        "type": EventType.CAMERA_OFFLINE,
        "severity": Severity.WARNING,
        "key": f"camera.offline:{camera}",
        "summary": f"{camera} offline",
        "camera_id": camera,
        "platform_id": platform,
    }
    values.update(fields)
    return EventSpec(**values)  # type: ignore[arg-type]


def test_one_active_event_per_key_and_the_state_rules(engine: Engine) -> None:
    store = EventStore(engine)
    first, created = store.raise_event(offline("cam01", detail={"n": 1}), T0)
    assert created and first.state is EventState.OPEN and first.active
    assert (first.started_at, first.last_seen_at, first.has_snapshot) == (T0, T0, False)
    # Raised again while active: the same event, updated; a milder severity never wins.
    again, created = store.raise_event(
        offline("cam01", severity=Severity.INFO, summary="still", detail={"n": 2}),
        T0 + 5,
        EventPicture(JPEG, 640, 360, T0 + 4),
    )
    assert not created and again.id == first.id
    assert (again.summary, again.detail, again.last_seen_at) == ("still", {"n": 2}, T0 + 5)
    assert again.severity is Severity.WARNING and again.has_snapshot
    assert store.snapshot(first.id) == EventPicture(JPEG, 640, 360, T0 + 4)
    # A warning that ends unacknowledged closes by itself (nobody closed it).
    ended = store.end_event("camera.offline:cam01", T0 + 10)
    assert ended is not None and ended.ended_at == T0 + 10 and not ended.active
    assert (ended.state, ended.closed_by, ended.closed_at) == (EventState.CLOSED, None, T0 + 10)
    assert store.end_event("camera.offline:cam01", T0 + 11) is None
    # The key is free again: a new condition is a new event.
    second, created = store.raise_event(offline("cam01"), T0 + 20)
    assert created and second.id > first.id

    # An alarm stays open after it ends, until someone acknowledges it; that closes it.
    motion = EventSpec(
        EventType.ZONE_MOTION, Severity.ALARM, "motion:cam02:7", "motion", "cam02", "town", 7
    )
    alarm, _ = store.raise_event(motion, T0)
    ended_alarm = store.end_event(motion.key, T0 + 3)
    assert ended_alarm is not None and ended_alarm.state is EventState.OPEN
    acked = store.acknowledge(alarm.id, "olga", "seen on the wall", T0 + 4)
    assert (acked.state, acked.acked_by, acked.closed_by) == (EventState.CLOSED, "olga", "olga")
    assert acked.note == "seen on the wall"
    with pytest.raises(EventStateConflict, match="closed already"):
        store.acknowledge(alarm.id, "oscar", None, T0 + 5)

    # Acknowledged while active: acknowledged, and closed when the condition ends.
    alarm2, _ = store.raise_event(motion, T0 + 10)
    assert store.acknowledge(alarm2.id, "olga", None, T0 + 11).state is EventState.ACKNOWLEDGED
    with pytest.raises(EventStateConflict, match=r"acknowledged already \(by olga\)"):
        store.acknowledge(alarm2.id, "oscar", None, T0 + 12)
    ended2 = store.end_event(motion.key, T0 + 13)
    assert ended2 is not None and (ended2.state, ended2.closed_at) == (EventState.CLOSED, T0 + 13)
    # An operator closes any event with a note; closing twice is refused.
    closed = store.close(second.id, "olga", "known outage", T0 + 30)
    assert (closed.state, closed.closed_by, closed.note) == (
        EventState.CLOSED,
        "olga",
        "known outage",
    )
    assert closed.active  # the condition still holds: raising it updates the closed event
    with pytest.raises(EventStateConflict):
        store.close(second.id, "olga", None, T0 + 31)
    # A case is linked once; the second link names the first case.
    assert store.link_case(second.id, "C-2026-0001", T0 + 32).case_number == "C-2026-0001"
    with pytest.raises(EventStateConflict, match="C-2026-0001"):
        store.link_case(second.id, "C-2026-0002", T0 + 33)
    with pytest.raises(EventNotFound):
        store.acknowledge(999_999, "olga", None, T0)
    with pytest.raises(EventNotFound):
        store.get(999_999)
    assert store.open_counts() == {Severity.INFO: 0, Severity.WARNING: 0, Severity.ALARM: 0}


def test_the_database_refuses_a_second_active_event_for_a_key(engine: Engine) -> None:
    store = EventStore(engine)
    store.raise_event(offline("cam01"), T0)
    row = {
        "type": "camera.offline", "severity": "warning", "key": "camera.offline:cam01",
        "summary": "x", "detail": "{}", "state": "open", "started_at": T0,
        "last_seen_at": T0, "updated_at": T0,
    }  # fmt: skip
    with engine.begin() as connection, pytest.raises(IntegrityError):
        connection.execute(insert(EventRow).values(**row))
    with engine.begin() as connection:  # an ended one with the same key is fine
        connection.execute(insert(EventRow).values(**row, ended_at=T0 + 1))


def test_search_filters_scope_children_and_pages(engine: Engine) -> None:
    store = EventStore(engine)
    platform, _ = store.raise_event(
        EventSpec(
            EventType.PLATFORM_OFFLINE, Severity.WARNING, "platform.offline:town", "town down",
            platform_id="town",
        ),
        T0,
    )  # fmt: skip
    ids = {}
    for n in range(5):
        record, _ = store.raise_event(offline(f"cam0{n}"), T0 + n, parent_id=platform.id)
        ids[f"cam0{n}"] = record.id
    other, _ = store.raise_event(offline("far01", "village"), T0 + 6)
    frozen, _ = store.raise_event(
        EventSpec(EventType.QUALITY_FROZEN, Severity.WARNING, "quality.frozen:cam01", "frozen",
                  camera_id="cam01", platform_id="town"),
        T0 + 7,
    )  # fmt: skip
    store.end_event("quality.frozen:cam01", T0 + 8)
    alarm, _ = store.raise_event(
        EventSpec(EventType.ZONE_MOTION, Severity.ALARM, "motion:cam02:1", "motion",
                  camera_id="cam02", platform_id="town", zone_id=1),
        T0 + 9,
    )  # fmt: skip

    def found(**query: object) -> list[int]:
        return [e.id for e in store.search(EventFilter(**query)).events]  # type: ignore[arg-type]

    # Children fold under their platform event, unless asked for (or asked by camera).
    assert found() == [alarm.id, frozen.id, other.id, platform.id]
    assert len(found(include_children=True)) == 9
    assert found(camera_id="cam01") == [frozen.id, ids["cam01"]]
    # Scope: cameras in it; camera-less events of platforms in it.
    scoped = found(camera_ids=["cam01", "cam02"], platform_ids=["town"], include_children=True)
    assert other.id not in scoped and platform.id in scoped and ids["cam03"] not in scoped
    assert found(camera_ids=["far01"], platform_ids=["village"]) == [other.id]
    assert found(severity=Severity.ALARM) == [alarm.id]
    assert found(active=False) == [frozen.id]
    assert found(types=["quality.frozen", "zone.motion"]) == [alarm.id, frozen.id]
    assert found(states=[EventState.CLOSED]) == [frozen.id]
    assert found(since=T0 + 6, until=T0 + 9) == [frozen.id, other.id]
    assert found(platform_id="village") == [other.id]
    # Pages: newest first, next names where to go on.
    page = store.search(EventFilter(include_children=True, limit=4))
    assert [e.id for e in page.events] == found(include_children=True)[:4]
    rest = store.search(EventFilter(include_children=True, limit=4, before_id=page.next_before_id))
    last = store.search(EventFilter(include_children=True, limit=4, before_id=rest.next_before_id))
    assert len(rest.events) == 4 and len(last.events) == 1 and last.next_before_id is None
    with pytest.raises(ValueError, match="limit"):
        EventFilter(limit=501)
    assert store.open_counts()[Severity.ALARM] == 1 and store.open_counts()[Severity.WARNING] == 7
    many = store.get_many([alarm.id, 999_999, frozen.id])
    assert [e.id for e in many] == [frozen.id, alarm.id] and many[1].zone_id == 1


def test_leftovers_end_at_the_last_heartbeat_and_retention_removes_old_events(
    engine: Engine,
) -> None:
    store = EventStore(engine)
    picture = EventPicture(JPEG, 4, 4, T0)
    old, _ = store.raise_event(offline("cam01"), T0, picture)
    store.end_event(old.key, T0 + 1)
    running, _ = store.raise_event(
        EventSpec(EventType.NODE_RUNNING, Severity.INFO, "node.running", "node up"), T0
    )
    store.raise_event(
        EventSpec(EventType.NODE_RUNNING, Severity.INFO, "node.running", "node up"), T0 + 60
    )
    stale, _ = store.raise_event(offline("cam02", detail={"reason": "refused"}), T0 + 30)
    assert store.latest_seen(EventType.NODE_RUNNING) == T0 + 60
    ended = {e.id: e for e in store.end_leftovers(T0 + 60, {"ended_by": "node restart"})}
    assert set(ended) == {running.id, stale.id}
    assert ended[stale.id].ended_at == T0 + 60
    assert ended[stale.id].detail == {"reason": "refused", "ended_by": "node restart"}
    assert store.search(EventFilter(active=True)).events == ()
    # Retention: only events that started and ended before the cut, with their pictures.
    active, _ = store.raise_event(offline("cam03"), T0 - 100)
    assert store.prune(T0 + 50) == 1
    assert store.snapshot(old.id) is None
    with pytest.raises(EventNotFound):
        store.get(old.id)
    assert store.get(active.id).active and store.get(stale.id).id == stale.id
