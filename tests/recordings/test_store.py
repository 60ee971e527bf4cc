"""The recording store: segments, gaps and holds in and out, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from surveillance.recordings.chain import genesis_link
from surveillance.recordings.layout import SEGMENT_ID_PLACEHOLDER, segment_path
from surveillance.recordings.records import MAX_SEGMENT_S
from surveillance.recordings.store import RecordingStore, SegmentNotOpen
from tests.recordings.conftest import T0, record


def test_segments_open_close_and_read_back_by_time_range(engine: Engine) -> None:
    store = RecordingStore(engine)
    template = segment_path("gate-1", "main", T0, SEGMENT_ID_PLACEHOLDER)
    first = store.open_segment("gate-1", "main", template, T0, "h264", 1920, 1080)
    stored = store.segment(first)
    assert stored is not None and not stored.closed
    assert stored.path == segment_path("gate-1", "main", T0, first)
    assert stored.path.startswith("gate-1/main/2026-09-21/") and stored.path.endswith(
        f"-{first}.mp4"
    )
    assert [s.id for s in store.open_segments()] == [first]
    # An open segment is not footage yet: time-range reads leave it out.
    assert store.segments("gate-1", None, T0 - 10, T0 + 100) == []

    closed = store.close_segment(
        first, T0 + 61.5, 1234, "ab" * 32, 1537, 812, [(0.0, 812), (2.0, 50000)], "segment length"
    )
    assert (closed.end_at, closed.bytes, closed.sha256, closed.frames) == (
        T0 + 61.5,
        1234,
        "ab" * 32,
        1537,
    )
    assert closed.keyframes == ((0.0, 812), (2.0, 50000))
    assert (closed.chain_seq, closed.prev_link) == (1, genesis_link("gate-1", "main"))
    assert closed.link is not None and len(closed.link) == 64
    assert closed.closed_reason == "segment length"
    assert store.segment(first) == closed
    assert store.open_segments() == []
    with pytest.raises(SegmentNotOpen):
        store.close_segment(first, T0 + 70, 1, "cd" * 32, 1, 1, [], "again")

    second = record(store, None, "gate-1", T0 + 61.5)
    sub = record(store, None, "gate-1", T0 + 10, stream="sub")
    other = record(store, None, "gate-2", T0)
    assert second.prev_link == closed.link and second.chain_seq == 2
    assert sub.chain_seq == 1 and other.chain_seq == 1

    # Overlap, not containment: a segment that started before the range and runs into it
    # counts; one that ends where the range starts does not.
    assert [s.id for s in store.segments("gate-1", "main", T0 + 30, T0 + 62)] == [first, second.id]
    assert [s.id for s in store.segments("gate-1", "main", T0 + 61.5, T0 + 62)] == [second.id]
    assert [s.id for s in store.segments("gate-1", None, T0 + 30, T0 + 62)] == [
        first, sub.id, second.id,
    ]  # fmt: skip
    assert store.segments("gate-1", "sub", T0 + 70, T0 + 80) == []
    assert store.total_bytes() == 1234 + second.bytes + sub.bytes + other.bytes
    assert store.segment_paths("gate-1") == {closed.path, second.path, sub.path}

    # A segment that is never closed (nothing usable written) is discarded.
    stray = store.open_segment("gate-1", "main", "gate-1/main/x.mp4", T0 + 500, "h264", 1, 1)
    store.discard_segment(stray)
    assert store.segment(stray) is None
    with pytest.raises(SegmentNotOpen):
        store.discard_segment(first)
    with pytest.raises(ValueError, match="inside the root"):
        store.open_segment("gate-1", "main", "../escape.mp4", T0, "h264", 1, 1)
    # Ids are never reused, even of the newest row removed.
    again = store.open_segment("gate-1", "main", "gate-1/main/y.mp4", T0 + 600, "h264", 1, 1)
    assert again > stray


def test_a_long_segment_is_found_within_the_look_back_bound(engine: Engine) -> None:
    store = RecordingStore(engine)
    longest = record(store, None, "gate-1", T0, length_s=MAX_SEGMENT_S)
    later = T0 + MAX_SEGMENT_S - 1
    assert [s.id for s in store.segments("gate-1", "main", later, later + 10)] == [longest.id]


def test_gaps_open_end_and_overlap_a_range_however_long_ago_they_began(engine: Engine) -> None:
    store = RecordingStore(engine)
    week_ago = store.add_gap("gate-1", "main", T0 - 7 * 86400, "camera offline: timed out")
    store.end_gap(week_ago, T0 + 100)
    short = store.add_gap("gate-1", "main", T0 + 200, "disk full")
    store.end_gap(short, T0 + 210)
    ongoing = store.add_gap("gate-1", "sub", T0 + 300, "recorder fell behind")
    elsewhere = store.add_gap("gate-2", "main", T0, "camera offline")

    found = store.gaps("gate-1", None, T0, T0 + 1000)
    assert [(g.id, g.end_at) for g in found] == [
        (week_ago, T0 + 100), (short, T0 + 210), (ongoing, None),
    ]  # fmt: skip
    assert [g.id for g in store.gaps("gate-1", "main", T0 + 150, T0 + 205)] == [short]
    assert [g.id for g in store.gaps("gate-1", "sub", T0 + 5000, T0 + 6000)] == [ongoing]
    assert store.gaps("gate-1", "main", T0 + 100, T0 + 200) == []

    # After a crash every gap still open ends when the service is back, and says why.
    assert store.end_open_gaps(T0 + 900, "; service restarted") == 2
    after = {g.id: g for g in store.gaps("gate-1", None, T0, T0 + 1000)}
    assert after[ongoing].end_at == T0 + 900
    assert after[ongoing].reason == "recorder fell behind; service restarted"
    assert store.gaps("gate-2", "main", T0, T0 + 1)[0].id == elsewhere


def test_holds_are_added_listed_and_released(engine: Engine) -> None:
    store = RecordingStore(engine)
    one = store.add_hold("2026-0001", "gate-1", T0, T0 + 600, "alice", created_at=T0 + 5)
    two = store.add_hold("2026-0001", "gate-2", T0, T0 + 60, "alice", created_at=T0 + 6)
    three = store.add_hold("2026-0002", "gate-1", T0 + 900, T0 + 960, "bob")
    assert (one.case_number, one.camera_id, one.created_by, one.created_at) == (
        "2026-0001", "gate-1", "alice", T0 + 5,
    )  # fmt: skip
    assert one.released_at is None and one.covers(T0 + 590, T0 + 650)
    assert not one.covers(T0 + 600, T0 + 660)
    assert [h.id for h in store.holds()] == [one.id, two.id, three.id]
    assert [h.id for h in store.holds(camera_id="gate-1")] == [one.id, three.id]
    assert [h.id for h in store.holds(case_number="2026-0002")] == [three.id]

    released = store.release_holds("2026-0001", "carol", at=T0 + 1000)
    assert [(h.id, h.released_by, h.released_at) for h in released] == [
        (one.id, "carol", T0 + 1000), (two.id, "carol", T0 + 1000),
    ]  # fmt: skip
    assert store.release_holds("2026-0001", "carol") == []
    assert [h.id for h in store.holds()] == [three.id]
    assert [h.id for h in store.holds(active=False)] == [one.id, two.id, three.id]
    assert store.release_hold(three.id, "dave") is not None
    assert store.release_hold(three.id, "dave") is None
    with pytest.raises(ValueError, match="end after"):
        store.add_hold("2026-0003", "gate-1", T0, T0, "alice")


def test_spans_merge_segments_of_a_stream_whose_ends_touch(store: RecordingStore) -> None:
    for start, length in ((T0, 60), (T0 + 61, 60), (T0 + 125, 60), (T0 + 185, 30)):
        record(store, None, "gate-1", start, length_s=length)
    record(store, None, "gate-1", T0 + 30, length_s=60, stream="sub")
    record(store, None, "gate-2", T0, length_s=600)
    spans = store.spans("gate-1", None, T0 + 50, T0 + 1000)
    # 60 -> 61 touches (1 s); 121 -> 125 is a break (4 s); 185 follows 185 exactly.
    assert [(s.stream, s.start_at - T0, s.end_at - T0) for s in spans] == [
        ("main", 0, 121), ("main", 125, 215), ("sub", 30, 90),
    ]  # fmt: skip
    # Only segments overlapping the window are read: a span ends with the last of them.
    narrow = store.spans("gate-1", "main", T0, T0 + 10)
    assert [(s.start_at - T0, s.end_at - T0) for s in narrow] == [(0, 60)]
    assert store.spans("gate-1", "sub", T0 + 90, T0 + 100) == []


def _gap_rows(engine: Engine) -> list[tuple[float, float | None, str, float | None]]:
    with engine.connect() as connection:
        query = text(
            "SELECT start_at, end_at, reason, removed_at FROM recording_gaps ORDER BY start_at"
        )
        return [tuple(row) for row in connection.execute(query)]  # type: ignore[misc]


def test_removed_footage_shows_as_few_gaps_that_grow(engine: Engine) -> None:
    store = RecordingStore(engine)
    day = 86400.0
    # Minutes 0-11 of footage, except minute 4: the camera was offline.
    minutes = {i: record(store, None, "gate-1", T0 + 60 * i) for i in range(12) if i != 4}
    offline = store.add_gap("gate-1", "main", T0 + 240, "camera offline")
    store.end_gap(offline, T0 + 300)
    expired, for_space = "retention period over", "disk budget"

    # Retention at the head: one removed gap, which the next pass extends (same row).
    store.remove_segments([minutes[0], minutes[1]], expired, at=T0 + day)
    [head] = store.gaps("gate-1", "main", T0 - 10, T0 + 200)
    assert (head.start_at, head.end_at, head.removed_at) == (T0, T0 + 120, T0 + day)
    assert head.reason == f"removed ({expired})"
    store.remove_segments([minutes[2], minutes[3]], expired, at=T0 + day + 30)
    grown, kept_offline = store.gaps("gate-1", "main", T0 - 10, T0 + 300)
    assert (grown.id, grown.start_at, grown.end_at) == (head.id, T0, T0 + 240)
    assert grown.removed_at == T0 + day + 30
    assert (kept_offline.id, kept_offline.removed_at) == (offline, None), "never recorded"

    # Minute 6 is held: minute 5 goes at the head (taking in the offline gap it covers);
    # 7-9, behind the hold, are a hole with a gap of their own, which 10 extends.
    store.add_hold("2026-0001", "gate-1", T0 + 370, T0 + 380, "al")
    store.remove_segments([minutes[i] for i in (5, 6, 7, 8, 9)], for_space, at=T0 + day + 60)
    head, hole = store.gaps("gate-1", "main", T0 - 10, T0 + 1000)
    assert (head.id, head.start_at, head.end_at) == (grown.id, T0, T0 + 360)
    assert head.reason == f"removed ({expired}; {for_space})"
    assert (hole.start_at, hole.end_at, hole.reason) == (
        T0 + 420,
        T0 + 600,
        f"removed ({for_space})",
    )
    assert [(s.start_at, s.end_at) for s in store.spans("gate-1", "main", T0, T0 + 1000)] == [
        (T0 + 360, T0 + 420), (T0 + 600, T0 + 720),
    ]  # fmt: skip
    store.remove_segments([minutes[10]], expired, at=T0 + day + 90)
    [longer] = store.gaps("gate-1", "main", T0 + 400, T0 + 1000)
    assert (longer.id, longer.start_at, longer.end_at) == (hole.id, T0 + 420, T0 + 660)
    assert longer.reason == f"removed ({for_space}; {expired})"
    # A window long after the head's start still finds the head's gap.
    assert [g.id for g in store.gaps("gate-1", "main", T0 + 300, T0 + 310)] == [head.id]

    # The hold let go: the head reaches the hole and takes it in. One row for all of it.
    store.release_holds("2026-0001", "al")
    store.remove_segments([minutes[6]], expired, at=T0 + day + 120)
    assert _gap_rows(engine) == [
        (T0, T0 + 660, f"removed ({expired}; {for_space})", T0 + day + 120)
    ]

    # Continuous retention, a pass a minute for an hour: still one row, the head's.
    for i in range(12, 72):
        record(store, None, "gate-1", T0 + 60 * i)
        [oldest] = store.oldest_segments(1, camera_id="gate-1")
        store.remove_segments([oldest], expired, at=T0 + day + 60 * i)
    [(start_at, end_at, _, removed_at)] = _gap_rows(engine)
    assert (start_at, end_at, removed_at) == (T0, T0 + 60 * 71, T0 + day + 60 * 71)
