"""The retention plan: expired first (oldest first), then the oldest of all while space is
short; holds honoured, open segments never."""

from __future__ import annotations

from surveillance.config.models import RecordingMode, RecordingStream
from surveillance.recordings.policy import CameraRecordingPolicy
from surveillance.recordings.retention import plan_removals
from surveillance.recordings.store import RecordingStore
from tests.recordings.conftest import DAY, T0, record

NOW = T0 + 10 * DAY
GB = 1_000_000_000
DATA = bytes(1000)
STREAMS = ("sub", "main")


def _policy(days: float) -> CameraRecordingPolicy:
    return CameraRecordingPolicy(RecordingMode.CONTINUOUS, RecordingStream.MAIN, days)


def test_plan_order_holds_open_segments_and_space(store: RecordingStore) -> None:
    # Camera a keeps 2 days, b keeps 5; each has a segment every day from day 0 to day 9, all
    # of one size, so space is counted in segments. Camera "gone" is no longer configured:
    # its footage goes only when space is short.
    a = [record(store, None, "a", T0 + d * DAY, 60, STREAMS[d % 2], DATA) for d in range(10)]
    b = [record(store, None, "b", T0 + d * DAY + 3600, content=DATA) for d in range(10)]
    gone = [record(store, None, "gone", T0 + d * DAY - 60, content=DATA) for d in range(2)]
    store.add_hold("2026-0001", "a", T0 + 3 * DAY + 30, T0 + 3 * DAY + 40, "alice")
    released = store.add_hold("2026-0002", "a", T0 + 4 * DAY, T0 + 5 * DAY, "alice")
    store.release_holds(released.case_number, "bob")
    store.add_hold("2026-0003", "b", T0 - DAY, T0 + 0.5 * DAY, "alice")  # covers b[0]
    old_open = store.open_segment("b", "main", "b/main/open.mp4", T0 - 5 * DAY, "h264", 1, 1)
    policies = {"a": _policy(2), "b": _policy(5)}
    plenty = {"used_bytes": 10 * GB, "max_bytes": None, "free_bytes": 5 * GB, "min_free_bytes": GB}

    plan = plan_removals(store, NOW, policies, **plenty, batch=3)
    # a: ended more than 2 days ago are days 0..7 (day 7 ends 2 days + 23h59 before NOW);
    # day 3 is held. b: days 0..4, day 0 held. Oldest first across cameras.
    expected = sorted(
        [*(a[d] for d in (0, 1, 2, 4, 5, 6, 7)), *(b[d] for d in (1, 2, 3, 4))],
        key=lambda s: s.start_at,
    )
    assert [s.id for s in plan] == [s.id for s in expected]
    assert plan_removals(store, NOW, policies, **plenty, limit=3)[:3] == expected[:3]

    # Short of space: the expired ones, then the oldest of all, skipping held and open ones,
    # until enough is freed.
    size = len(DATA)
    short = {**plenty, "free_bytes": GB - 3 * size + 1}
    plan = plan_removals(store, NOW, policies, **short, batch=2)
    assert [s.id for s in plan] == [s.id for s in expected]  # expired ones free enough
    short["free_bytes"] = GB - (len(expected) + 3) * size + 1
    plan = plan_removals(store, NOW, policies, **short, batch=2)
    more = [s.id for s in plan[len(expected) :]]
    # By start: gone[0], (a[0]), b[0] held, gone[1], (a[1] b[1] ... a[3] held ... a[5]), b[5].
    assert more == [gone[0].id, gone[1].id, b[5].id]
    assert old_open not in [s.id for s in plan]
    assert all(s.id not in (a[3].id, b[0].id) for s in plan)

    # Over max_bytes works the same way; without expired footage, oldest first.
    over = {"used_bytes": 10 * GB + 2 * size, "max_bytes": 10 * GB, "free_bytes": 5 * GB,
            "min_free_bytes": GB}  # fmt: skip
    plan = plan_removals(store, NOW, {"a": _policy(100), "b": _policy(100)}, **over)
    assert [s.id for s in plan] == [gone[0].id, a[0].id]
