"""What retention removes next: a plan, no files touched (the recorder removes the rows
with :meth:`~.store.RecordingStore.remove_segments`, then unlinks the files).

Two reasons, in this order. First, closed segments that ended more than their camera's
``retain_days`` ago, oldest first. Then, while the node is over ``max_bytes`` or the file
system has less than ``min_free_bytes`` free, the oldest segments of all, whatever their
camera. Never a segment overlapping an active hold of its camera, never an open one.
Cameras not in ``policies`` (no longer configured) keep their footage until space runs
short; then it goes with the oldest.

The index may hold millions of rows (30 days x 300 cameras of 60 s segments is about 13
million), so nothing here reads them all: each camera's expired segments are read through
the (camera, stream, start_at) index below its cut-off, the oldest of all through the
start_at index, ``batch`` rows at a time, and a plan holds at most ``limit`` segments
(the recorder plans again when it has removed them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from surveillance.recordings.policy import CameraRecordingPolicy
from surveillance.recordings.records import HoldRecord, SegmentRecord
from surveillance.recordings.store import RecordingStore

PLAN_LIMIT = 1000  # segments per plan: removing them is one transaction of about half a
# second on a 13 M-row index (bench/recording_index.py); 300 cameras expire 150 per 30 s
BATCH = 500  # rows read per query


def plan_removals(
    store: RecordingStore,
    now: float,
    policies: Mapping[str, CameraRecordingPolicy],
    used_bytes: int,
    max_bytes: int | None,
    free_bytes: int,
    min_free_bytes: int,
    *,
    limit: int = PLAN_LIMIT,
    batch: int = BATCH,
) -> list[SegmentRecord]:
    """The segments to remove now, expired ones first (oldest first), then the oldest of
    all until ``used_bytes``/``free_bytes`` are back within bounds."""
    holds: dict[str, list[HoldRecord]] = defaultdict(list)
    for hold in store.holds(active=True):
        holds[hold.camera_id].append(hold)

    def held(segment: SegmentRecord) -> bool:
        end_at = segment.end_at if segment.end_at is not None else segment.start_at
        return any(h.covers(segment.start_at, end_at) for h in holds.get(segment.camera_id, ()))

    expired: list[SegmentRecord] = []
    for camera_id, policy in sorted(policies.items()):
        cutoff = now - policy.retain_s
        after: tuple[float, int] | None = None
        found = 0
        while found < limit:
            rows = store.oldest_segments(batch, camera_id=camera_id, before=cutoff, after=after)
            for segment in rows:
                if segment.end_at is not None and segment.end_at <= cutoff and not held(segment):
                    expired.append(segment)
                    found += 1
            if len(rows) < batch:
                break
            after = (rows[-1].start_at, rows[-1].id)
    expired.sort(key=lambda s: (s.start_at, s.id))
    plan = expired[:limit]

    need = min_free_bytes - free_bytes
    if max_bytes is not None:
        need = max(need, used_bytes - max_bytes)
    need -= sum(s.bytes for s in plan)
    planned = {s.id for s in plan}
    after = None
    while need > 0 and len(plan) < limit:
        rows = store.oldest_segments(batch, after=after)
        for segment in rows:
            if segment.id in planned or held(segment):
                continue
            plan.append(segment)
            need -= segment.bytes
            if need <= 0 or len(plan) >= limit:
                break
        if len(rows) < batch:
            break
        after = (rows[-1].start_at, rows[-1].id)
    return plan
