"""Recording index benchmark: the timeline query and retention planning at full size.

Usage::

    python -m bench.recording_index --quick            # 20 cameras x 3 days, seconds
    python -m bench.recording_index                    # 300 cameras x 30 days: ~13 M rows
    python -m bench.recording_index --db /tmp/rec.db --keep   # build once, measure again

Method
------
1. **Build.** A real SQLite file, migrated by :func:`surveillance.db.upgrade` (the service's
   schema and indexes), gets ``--cameras`` x ``--days`` of ``--segment-s`` segments of the
   main stream, in time order across cameras as a recorder writes them: 30 x 300 x 1440 =
   12,960,000 rows at full size. Each row is as big as a real one: a path of the service's
   layout, 64-hex hashes, a keyframe list of one entry per 2 s GOP (``--segment-s`` / 2
   JSON pairs). Every camera has one 5-minute gap a day (its segments left out, a gap row
   instead) and every tenth camera a 3-day outage. The chain fields hold placeholder hex
   (the queries and the planner never read them; link computation is not measured here);
   the chain anchors hold each camera's true totals. For speed only, the rows go in
   through ``sqlite3.executemany`` with journal and sync off and the two big indexes
   dropped and re-created afterwards by the migration's own definitions (one sort instead
   of 13 M random inserts); the measurements then run on the service's engine (WAL,
   synchronous=FULL) through :class:`~surveillance.recordings.store.RecordingStore`.
2. **Timeline query.** ``--repeat`` times, a random camera and a random whole UTC day:
   ``store.spans`` (the timeline's merged footage, from the index alone), ``store.segments``
   (whole records: what export and playback read, for shorter windows) and
   ``store.gaps``, timed each and as the route reads them (spans + gaps) and with whole
   records (segments + gaps). The SQL the store sent is captured and its ``EXPLAIN QUERY
   PLAN`` printed. Baseline, same cameras and days: the overlap written without the
   look-back bound (``start_at < to AND end_at > from``), raw SQL without building records,
   which seeks to the camera and then reads every earlier index entry of it.
3. **Retention.** ``plan_removals`` with 50 active holds, each camera keeping
   ``--days`` - 1 hour (about an hour of each camera has expired: the plan stops at its
   limit of 1000), no space pressure;
   the same with nothing expired; with space short by 10 GB (expired + oldest of all);
   then ``remove_segments`` of the first plan (one transaction). Also ``total_bytes``
   (from the chain anchors) against the baseline ``SUM(bytes)`` over every row, and
   ``open_segments`` (a partial index) as read at start-up.

Targets: the timeline query of one camera over one day, p95 well under 100 ms, both as
the route reads it (spans + gaps) and with whole records (segments + gaps).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text

from bench.stats import percentile
from surveillance import db
from surveillance.config.models import RecordingMode, RecordingStream
from surveillance.recordings.layout import segment_path
from surveillance.recordings.policy import DAY_S, CameraRecordingPolicy
from surveillance.recordings.retention import plan_removals
from surveillance.recordings.store import RecordingStore

T0 = 1_780_000_000.0  # 2026-05-28 00:26:40 UTC; days below are whole UTC days from T0's
GAP_S = 300.0
OUTAGE_DAYS = 3
SEGMENT_BYTES = 15_000_000  # 2 Mbit/s x 60 s
ROWS_PER_TRANSACTION = 200_000
KEYFRAME_VARIANTS = 64
TARGET_QUERY_P95_MS = 100.0
QUERIES = (
    "spans", "segments", "gaps", "timeline: spans + gaps", "segments + gaps",
    "baseline: unbounded overlap",
)  # fmt: skip
BIG_INDEXES = {
    "ix_recording_segments_camera_stream_start": (
        "recording_segments (camera_id, stream, start_at, end_at)"
    ),
    "ix_recording_segments_start": "recording_segments (start_at)",
}
SEGMENT_COLUMNS = (
    "camera_id, stream, path, start_at, end_at, bytes, sha256, chain_seq, prev_link, link, "
    "codec, width, height, frames, init_bytes, keyframes, closed_reason"
)


def _keyframe_lists(segment_s: float, rng: random.Random) -> list[str]:
    """JSON keyframe lists of a real segment's size: one (time, moof offset) per 2 s GOP."""
    lists = []
    for _ in range(KEYFRAME_VARIANTS):
        offset, pairs = 812, []
        for gop in range(max(1, int(segment_s // 2))):
            pairs.append([round(gop * 2.0 + rng.random() / 25, 6), offset])
            offset += rng.randrange(400_000, 600_000)
        lists.append(json.dumps(pairs))
    return lists


def build(path: Path, cameras: int, days: int, segment_s: float) -> dict[str, Any]:
    """The index of ``cameras`` x ``days``; its row counts and build time."""
    rng = random.Random(12)
    engine = db.create_db_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()
    started = time.perf_counter()
    keyframes = _keyframe_lists(segment_s, rng)
    camera_ids = [f"cam{c:03d}" for c in range(cameras)]
    gap_at = {(c, d): rng.uniform(0, DAY_S - GAP_S) for c in range(cameras) for d in range(days)}
    outage = {c: rng.randrange(max(1, days - OUTAGE_DAYS)) for c in range(0, cameras, 10)}
    per_day = int(DAY_S // segment_s)
    totals = [0] * cameras
    counts = [0] * cameras
    gaps: list[tuple[str, str, float, float, str]] = []
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("PRAGMA cache_size=-1000000")
    for name in BIG_INDEXES:
        connection.execute(f"DROP INDEX {name}")
    insert = (
        f"INSERT INTO recording_segments ({SEGMENT_COLUMNS}) "
        f"VALUES ({', '.join('?' * len(SEGMENT_COLUMNS.split(', ')))})"
    )

    def rows() -> Iterator[tuple[Any, ...]]:
        seq = [0] * cameras
        for day in range(days):
            for slot in range(per_day):
                start = T0 + day * DAY_S + slot * segment_s
                for c, camera in enumerate(camera_ids):
                    off = outage.get(c)
                    if off is not None and off <= day < off + OUTAGE_DAYS:
                        continue
                    gap_start = T0 + day * DAY_S + gap_at[(c, day)]
                    if start + segment_s > gap_start and start < gap_start + GAP_S:
                        continue
                    seq[c] += 1
                    size = SEGMENT_BYTES + rng.randrange(-500_000, 500_000)
                    totals[c] += size
                    counts[c] += 1
                    fake = f"{seq[c]:064x}"  # placeholder chain fields: see the docstring
                    yield (
                        camera, "main", segment_path(camera, "main", start, seq[c]), start,
                        start + segment_s, size, fake, seq[c], fake, fake, "h264", 1920, 1080,
                        int(segment_s * 25), 812, keyframes[seq[c] % KEYFRAME_VARIANTS],
                        "segment length",
                    )  # fmt: skip

    batch: list[tuple[Any, ...]] = []
    for row in rows():
        batch.append(row)
        if len(batch) >= ROWS_PER_TRANSACTION:
            _insert(connection, insert, batch)
            batch = []
    _insert(connection, insert, batch)
    inserted_s = time.perf_counter() - started
    for c, camera in enumerate(camera_ids):
        for day in range(days):
            gap_start = T0 + day * DAY_S + gap_at[(c, day)]
            gaps.append((camera, "main", gap_start, gap_start + GAP_S, "camera offline: timed out"))
        if c in outage:
            begin = T0 + outage[c] * DAY_S
            gaps.append((camera, "main", begin, begin + OUTAGE_DAYS * DAY_S, "camera offline"))
    connection.execute("BEGIN")
    connection.executemany(
        "INSERT INTO recording_gaps (camera_id, stream, start_at, end_at, reason) "
        "VALUES (?, ?, ?, ?, ?)",
        gaps,
    )
    connection.executemany(
        "INSERT INTO recording_chain_anchors (camera_id, stream, head_seq, head_link, "
        "tail_seq, tail_link, stored_segments, stored_bytes, removed_segments, removed_bytes) "
        "VALUES (?, 'main', 1, ?, ?, ?, ?, ?, 0, 0)",
        [
            (camera, "0" * 64, counts[c], f"{counts[c]:064x}", counts[c], totals[c])
            for c, camera in enumerate(camera_ids)
        ],
    )
    connection.execute("COMMIT")
    indexed = time.perf_counter()
    for name, target in BIG_INDEXES.items():
        connection.execute(f"CREATE INDEX {name} ON {target}")
    connection.execute("ANALYZE")
    connection.close()
    return {
        "segments": sum(counts),
        "gaps": len(gaps),
        "insert_s": round(inserted_s, 1),
        "index_s": round(time.perf_counter() - indexed, 1),
        "db_gb": round(path.stat().st_size / 1e9, 2),
    }


def _insert(connection: sqlite3.Connection, insert: str, batch: list[tuple[Any, ...]]) -> None:
    connection.execute("BEGIN")
    connection.executemany(insert, batch)
    connection.execute("COMMIT")


def summary_ms(seconds: list[float]) -> dict[str, float | None]:
    ms = [s * 1000 for s in seconds]
    p50, p95 = percentile(ms, 50), percentile(ms, 95)
    return {
        "n": len(ms),
        "p50_ms": None if p50 is None else round(p50, 2),
        "p95_ms": None if p95 is None else round(p95, 2),
        "max_ms": round(max(ms), 2) if ms else None,
    }


@contextmanager
def captured_sql(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement (and its parameters) the engine runs inside the block."""
    found: list[tuple[str, Any]] = []

    def capture(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        found.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def query_plans(engine: Engine, store: RecordingStore, camera: str, day_start: float) -> list[str]:
    with captured_sql(engine) as found:
        store.spans(camera, "main", day_start, day_start + DAY_S)
        store.segments(camera, "main", day_start, day_start + DAY_S)
        store.gaps(camera, "main", day_start, day_start + DAY_S)
    plans = []
    with engine.connect() as connection:
        for statement, parameters in found:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            steps = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            table = re.search(r"FROM\s+(\w+)", statement)
            name = table.group(1) if table else "?"
            plans.append(f"{name}: " + "; ".join(str(step[-1]) for step in steps))
    return plans


def bench_queries(engine: Engine, cameras: int, days: int, repeat: int) -> dict[str, Any]:
    store = RecordingStore(engine)
    rng = random.Random(7)
    # Whole UTC days inside the index: the first starts after T0, the last ends before its end.
    day0 = T0 - T0 % DAY_S + DAY_S
    whole_days = max(1, days - 1)
    picks = [(f"cam{rng.randrange(cameras):03d}", rng.randrange(whole_days)) for _ in range(repeat)]
    times: dict[str, list[float]] = {name: [] for name in QUERIES}
    rows = []
    naive = text(
        "SELECT * FROM recording_segments WHERE camera_id = :camera AND stream = 'main' "
        "AND start_at < :end AND end_at > :start ORDER BY start_at"
    )
    for camera, day in picks:
        start = day0 + day * DAY_S
        end = start + DAY_S
        began = time.perf_counter()
        store.spans(camera, "main", start, end)
        spanned = time.perf_counter()
        found = store.segments(camera, "main", start, end)
        segmented = time.perf_counter()
        store.gaps(camera, "main", start, end)
        ended = time.perf_counter()
        times["spans"].append(spanned - began)
        times["segments"].append(segmented - spanned)
        times["gaps"].append(ended - segmented)
        times["timeline: spans + gaps"].append(spanned - began + ended - segmented)
        times["segments + gaps"].append(ended - spanned)
        rows.append(len(found))
        with engine.connect() as connection:
            began = time.perf_counter()
            connection.execute(naive, {"camera": camera, "start": start, "end": end}).all()
            times["baseline: unbounded overlap"].append(time.perf_counter() - began)
    return {
        **{name: summary_ms(values) for name, values in times.items()},
        "segments_per_query_median": sorted(rows)[len(rows) // 2],
        "plans": query_plans(engine, store, picks[0][0], day0),
    }


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    began = time.perf_counter()
    result = call()
    return result, round((time.perf_counter() - began) * 1000, 1)


def bench_retention(engine: Engine, cameras: int, days: int) -> dict[str, Any]:
    store = RecordingStore(engine)
    rng = random.Random(9)
    for n in range(50):
        start = T0 + rng.uniform(0, days * DAY_S)
        camera = f"cam{rng.randrange(cameras):03d}"
        store.add_hold(f"2026-{n:04d}", camera, start, start + 600, "bench")
    now = T0 + days * DAY_S
    keep = CameraRecordingPolicy(RecordingMode.CONTINUOUS, RecordingStream.MAIN, days - 1 / 24)
    policies = {f"cam{c:03d}": keep for c in range(cameras)}
    all_kept = CameraRecordingPolicy(RecordingMode.CONTINUOUS, RecordingStream.MAIN, days + 1)
    everything = {f"cam{c:03d}": all_kept for c in range(cameras)}
    used, used_ms = _timed(store.total_bytes)
    with engine.connect() as connection:
        _, sum_ms = _timed(
            lambda: connection.execute(text("SELECT sum(bytes) FROM recording_segments")).scalar()
        )
    space = {"used_bytes": used, "max_bytes": None, "free_bytes": 10**12, "min_free_bytes": 0}
    plan, plan_ms = _timed(lambda: plan_removals(store, now, policies, **space))
    _, idle_ms = _timed(lambda: plan_removals(store, now, everything, **space))
    short = {**space, "max_bytes": used - 10**10}
    short_plan, short_ms = _timed(lambda: plan_removals(store, now, everything, **short))
    _, remove_ms = _timed(lambda: store.remove_segments(plan, "expired"))
    opened, open_ms = _timed(store.open_segments)
    return {
        "expired_plan_ms": plan_ms,
        "expired_planned": len(plan),
        "nothing_expired_plan_ms": idle_ms,
        "space_short_plan_ms": short_ms,
        "space_short_planned": len(short_plan),
        "remove_segments_ms": remove_ms,
        "total_bytes_ms": used_ms,
        "baseline_sum_bytes_ms": sum_ms,
        "open_segments_ms": open_ms,
        "open_segments": len(opened),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.recording_index", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="20 cameras x 3 days")
    parser.add_argument("--cameras", type=int, default=None)
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--segment-s", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=200, help="timeline queries")
    parser.add_argument("--db", type=Path, help="the index file (default: a temporary one)")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="reuse --db if it exists and keep it (retention has removed some of it then)",
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    cameras = args.cameras or (20 if args.quick else 300)
    days = args.days or (3 if args.quick else 30)
    with tempfile.TemporaryDirectory(prefix="bench-recidx-") as tmp:
        path = args.db or Path(tmp) / "cases.db"
        if args.keep and path.exists():
            built: dict[str, Any] = {"reused": str(path)}
        else:
            path.unlink(missing_ok=True)
            built = build(path, cameras, days, args.segment_s)
        engine = db.create_db_engine(f"sqlite:///{path}")
        try:
            queries = bench_queries(engine, cameras, days, args.repeat)
            retention = bench_retention(engine, cameras, days)
        finally:
            engine.dispose()
        if args.db and not args.keep:
            for suffix in db.SQLITE_COMPANIONS:
                path.with_name(path.name + suffix).unlink(missing_ok=True)
    targets = {}
    for name in ("timeline: spans + gaps", "segments + gaps"):
        p95 = queries[name]["p95_ms"]
        met = p95 is not None and p95 < TARGET_QUERY_P95_MS
        targets[f"{name} p95 ms"] = {
            "value": p95,
            "met": met,
            "target": f"< {TARGET_QUERY_P95_MS:g}",
        }
    result = {
        "machine": {"nproc": os.cpu_count(), "python": sys.version.split()[0],
                    "sqlite": sqlite3.sqlite_version, "platform": platform.platform()},
        "index": {"cameras": cameras, "days": days, "segment_s": args.segment_s, **built},
        "queries": queries,
        "retention": retention,
        "targets": targets,
    }  # fmt: skip
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def print_report(r: dict[str, Any]) -> None:
    i, q = r["index"], r["queries"]
    print(
        f"recording index benchmark: {i['cameras']} cameras x {i['days']} days of "
        f"{i['segment_s']:g} s segments (SQLite {r['machine']['sqlite']})"
    )
    if "segments" in i:
        print(
            f"  built {i['segments']} segment rows, {i['gaps']} gaps: insert {i['insert_s']} s, "
            f"indexes {i['index_s']} s, {i['db_gb']} GB"
        )
    print(f"  timeline query, one camera, one day ({q['segments_per_query_median']} segments):")
    for name in QUERIES:
        s = q[name]
        print(f"    {name:<28} p50 {s['p50_ms']:>8} ms  p95 {s['p95_ms']:>8} ms  (n={s['n']})")
    for plan in q["plans"]:
        print(f"    plan {plan}")
    if r["retention"]:
        t = r["retention"]
        print(
            f"  retention plan: {t['expired_plan_ms']} ms for {t['expired_planned']} expired; "
            f"{t['nothing_expired_plan_ms']} ms with nothing expired; "
            f"{t['space_short_plan_ms']} ms for {t['space_short_planned']} with space short"
        )
        print(
            f"  remove_segments of the expired plan {t['remove_segments_ms']} ms; total_bytes "
            f"{t['total_bytes_ms']} ms (baseline SUM(bytes) {t['baseline_sum_bytes_ms']} ms); "
            f"open_segments {t['open_segments_ms']} ms"
        )
    for name, t in r["targets"].items():
        print(f"  target {name}: {t['value']} ({t['target']}): {'met' if t['met'] else 'NOT MET'}")


if __name__ == "__main__":
    sys.exit(main())
