"""Cases and evidence benchmark: attach latency, clip export speed, case list latency.

Usage::

    python -m bench.cases --quick                 # about half a minute
    python -m bench.cases --cameras 20 --json /tmp/bench-cases.json

Method
------
1. **Attach while streaming.** The camera simulator (GStreamer RTSP server processes of
   25 mounts each, a :class:`~surveillance.simulator.SimulatorFleet`) serves ``--cameras``
   720p25 H.264 High streams at 2 Mbit/s with a 2 s GOP, the foundation benchmark's
   streams. The service runs in this process (app factory + ASGI test client, no network)
   with every camera always-on, a SQLite case database and the local evidence store in a
   temporary data directory; its configuration is a YAML file there, on which the
   benchmark's admin and API token are made with ``surveillance user add`` and ``token
   create`` before the app starts, and every request carries that token. Once all
   cameras are online and the rings hold ``--clip-seconds`` of footage:

   - *clip export*, measured first, before any decoder runs:
     ``POST /api/cases/{n}/items/clip`` with ``pre_s = --clip-seconds`` and ``post_s = 0``
     (all in the ring: nothing to wait for), wall time per request, as clip duration /
     wall time ("x real time"); also the remux alone
     (:func:`surveillance.media.clip.remux_mp4` on the same ring packets).
   - *snapshot attach*: ``POST /api/cases/{n}/items/snapshot`` alternating between two of
     the cameras (each camera asked keeps a live decoder busy for 15 s), sequentially;
     wall time per request (decode, JPEG, SHA-256, fsynced atomic write, custody append).
     Baseline: as many ``GET /api/cameras/{id}/snapshot.jpg`` right after. p50/p95.

2. **Case list with 10,000 cases.** A separate SQLite database gets ``--cases`` cases
   (tags, cameras, assignees, states, creation times spread over a year) inserted in bulk,
   then each filter the API offers runs ``--repeat`` times through
   :meth:`CaseStore.search` (page of 50 plus the total count). p50/p95 over all queries.

Targets (docs/architecture.md, README): clip export >= 100x real time; list/filter p95 <= 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from bench.service import create_bench_credentials
from surveillance import db
from surveillance.api.app import create_app
from surveillance.cases import custody
from surveillance.cases.models import Case, CaseCamera, CaseTag
from surveillance.cases.records import CaseFilter
from surveillance.cases.states import CaseState
from surveillance.cases.store import CaseStores
from surveillance.config import load_config
from surveillance.media.clip import remux_mp4
from surveillance.simulator import MountSpec, SimulatorFleet
from surveillance.simulator.demo import MAIN_STREAM

CLIP_CACHE = Path.home() / ".cache" / "surveillance" / "clips"
ONLINE_TIMEOUT_S = 60
# Snapshots come from this many cameras (the tiles a handler is working with): each one
# asked keeps a live decoder running for 15 s, and decoding every camera at once would
# measure the machine's decode capacity, not the attach.
SNAPSHOT_CAMERAS = 2
TAGS = ("traffic", "geological-hazard", "forest-fire", "public-order", "school-gate")
TARGET_CLIP_X = 100.0
TARGET_LIST_P95_MS = 50.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "max_ms": round(max(ms), 2),
    }


# -- 1. attach while streaming ---------------------------------------------------------------
def bench_attach(cameras: int, snapshots: int, clips: int, clip_s: float) -> dict[str, Any]:
    mounts = [
        MountSpec(f"cam{i}", MAIN_STREAM, start_offset_s=(i * 2.0) % MAIN_STREAM.seconds)
        for i in range(cameras)
    ]
    with (
        SimulatorFleet(mounts, clip_dir=CLIP_CACHE) as simulator,
        tempfile.TemporaryDirectory(prefix="bench-cases-") as data_dir,
    ):
        config_file = Path(data_dir) / "config.yaml"
        config_file.write_text(
            yaml.safe_dump(
                {
                    "server": {"data_dir": data_dir},
                    "ingest": {"ring_seconds": clip_s + 4},
                    "platforms": [{"id": "bench", "name": "Bench"}],
                    "cameras": [
                        {
                            "id": m.path,
                            "name": m.path,
                            "platform": "bench",
                            "url": simulator.url(m.path),
                        }
                        for m in mounts
                    ],
                },
                sort_keys=False,
            ),
            encoding="utf-8",
        )
        credentials = create_bench_credentials(config_file)
        app = create_app(load_config(config_file))
        with TestClient(app, headers=credentials.headers()) as client:
            _wait_online(client, cameras)
            time.sleep(clip_s + 2.5)  # rings hold the clip window from its keyframe
            number = client.post("/api/cases", json={"title": "bench"}).json()["number"]
            ids = [m.path for m in mounts]
            clip_x, remux_x, durations = [], [], []
            node = app.state.node
            for i in range(clips):
                camera = ids[i % len(ids)]
                started = time.perf_counter()
                response = client.post(
                    f"/api/cases/{number}/items/clip",
                    json={"camera": camera, "pre_s": clip_s, "post_s": 0},
                )
                elapsed = time.perf_counter() - started
                response.raise_for_status()
                duration = response.json()["duration_s"]
                durations.append(duration)
                clip_x.append(duration / elapsed)
                packets = node.ingest.stream(camera).ring.since(time.monotonic() - clip_s)
                started = time.perf_counter()
                _, facts = remux_mp4(packets)
                remux_x.append(facts.duration_s / (time.perf_counter() - started))
            shots = ids[:SNAPSHOT_CAMERAS]
            for camera in shots:  # warm each camera's decoder once, as an operator's view would
                client.post(f"/api/cases/{number}/items/snapshot", json={"camera": camera})
            snap_times = []
            for i in range(snapshots):
                started = time.perf_counter()
                response = client.post(
                    f"/api/cases/{number}/items/snapshot", json={"camera": shots[i % len(shots)]}
                )
                snap_times.append(time.perf_counter() - started)
                response.raise_for_status()
            get_times = []  # the same pictures without the case: the baseline
            for i in range(snapshots):
                started = time.perf_counter()
                client.get(f"/api/cameras/{shots[i % len(shots)]}/snapshot.jpg").raise_for_status()
                get_times.append(time.perf_counter() - started)
    return {
        "cameras": cameras,
        "stream": "720p25 H.264 High 2 Mbit/s, GOP 2 s",
        "snapshot_attach": summary_ms(snap_times),
        "snapshot_get_baseline": summary_ms(get_times),
        "clip_export": {
            "n": clips,
            "clip_seconds_median": round(statistics.median(durations), 2),
            "attach_x_realtime_median": round(statistics.median(clip_x), 1),
            "attach_x_realtime_min": round(min(clip_x), 1),
            "remux_only_x_realtime_median": round(statistics.median(remux_x), 1),
        },
    }


def _wait_online(client: Any, cameras: int) -> None:
    deadline = time.monotonic() + ONLINE_TIMEOUT_S
    while time.monotonic() < deadline:
        states = [c["state"] for c in client.get("/api/cameras").json()]
        if states.count("online") == cameras:
            return
        time.sleep(0.2)
    raise RuntimeError(f"cameras not online within {ONLINE_TIMEOUT_S} s: {states}")


# -- 2. case list with many cases ------------------------------------------------------------
def fill(store: CaseStores, count: int, rng: random.Random) -> datetime:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    states = list(CaseState)
    with Session(store.engine) as session, session.begin():
        for i in range(count):
            number = f"2025-{i + 1:06d}"
            created = start + timedelta(minutes=rng.randrange(365 * 24 * 60))
            session.add(
                Case(
                    number=number,
                    title=f"Case {i}: {rng.choice(['flooding', 'landslide', 'smoke', 'crowd'])}",
                    description="reported by the grid worker " + rng.choice("abcdefgh") * 20,
                    place=f"Street {rng.randrange(500)}",
                    reporter=f"user{rng.randrange(50)}",
                    assignee=f"handler{rng.randrange(30)}" if rng.random() < 0.8 else None,
                    state=rng.choice(states).value,
                    created_at=created,
                    updated_at=created,
                    custody_seq=0,
                    custody_head=custody.genesis_hash(number),
                    tags=[CaseTag(tag=t) for t in rng.sample(TAGS, rng.randint(1, 2))],
                    cameras=[
                        CaseCamera(camera_id=c)
                        for c in {f"cam{rng.randrange(2000):04d}" for _ in range(2)}
                    ],
                )
            )
    return start


def bench_list(count: int, repeat: int) -> dict[str, Any]:
    rng = random.Random(4)
    with tempfile.TemporaryDirectory(prefix="bench-list-") as tmp:
        engine = db.create_db_engine(f"sqlite:///{tmp}/cases.db")
        db.upgrade(engine)
        store = CaseStores(engine)
        started = time.perf_counter()
        start = fill(store, count, rng)
        fill_s = time.perf_counter() - started
        queries = {
            "newest page": CaseFilter(),
            "open states": CaseFilter(states=(CaseState.REPORTED, CaseState.IN_PROGRESS)),
            "tag": CaseFilter(tags=("forest-fire",)),
            "camera": CaseFilter(cameras=("cam0042",)),
            "assignee": CaseFilter(assignee="handler7"),
            "text": CaseFilter(text="landslide"),
            "month": CaseFilter(
                created_from=start + timedelta(days=60), created_to=start + timedelta(days=90)
            ),
            "state+tag+text": CaseFilter(
                states=(CaseState.FEEDBACK,), tags=("traffic",), text="street 1"
            ),
            "deep page": CaseFilter(offset=count - 100),
        }
        per_query: dict[str, Any] = {}
        everything: list[float] = []
        for name, query in queries.items():
            times = []
            for _ in range(repeat):
                began = time.perf_counter()
                page = store.cases.search(query)
                times.append(time.perf_counter() - began)
            everything += times
            per_query[name] = {**summary_ms(times), "total": page.total}
        engine.dispose()
    return {
        "cases": count,
        "fill_s": round(fill_s, 1),
        "all_queries": summary_ms(everything),
        "per_query": per_query,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cases", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run (fewer of each)")
    parser.add_argument("--cameras", type=int, default=None)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=None, help="runs of each list query")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    cameras = args.cameras or (4 if args.quick else 20)
    repeat = args.repeat or (10 if args.quick else 50)
    attach = bench_attach(
        cameras,
        snapshots=40 if args.quick else 200,
        clips=5 if args.quick else 20,
        clip_s=args.clip_seconds,
    )
    listing = bench_list(args.cases, repeat)
    clip_x = attach["clip_export"]["attach_x_realtime_median"]
    list_p95 = listing["all_queries"]["p95_ms"]
    result = {
        "machine": {"nproc": os.cpu_count(), "python": sys.version.split()[0],
                    "platform": platform.platform()},
        "attach": attach,
        "list": listing,
        "targets": {
            "clip_export_x_realtime": {"value": clip_x, "target": f">= {TARGET_CLIP_X:g}",
                                       "met": clip_x >= TARGET_CLIP_X},
            "list_p95_ms": {"value": list_p95, "target": f"<= {TARGET_LIST_P95_MS:g}",
                            "met": list_p95 <= TARGET_LIST_P95_MS},
        },
    }  # fmt: skip
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def print_report(r: dict[str, Any]) -> None:
    a, lst = r["attach"], r["list"]
    snap, clip = a["snapshot_attach"], a["clip_export"]
    print(f"cases benchmark: {a['cameras']} cameras streaming ({a['stream']})")
    print(
        f"  snapshot attach     p50 {snap['p50_ms']} ms  p95 {snap['p95_ms']} ms  (n={snap['n']})"
    )
    base = a["snapshot_get_baseline"]
    print(f"  snapshot GET (base) p50 {base['p50_ms']} ms  p95 {base['p95_ms']} ms")
    print(
        f"  clip export         {clip['attach_x_realtime_median']}x real time per attach "
        f"(min {clip['attach_x_realtime_min']}x), remux alone "
        f"{clip['remux_only_x_realtime_median']}x, {clip['clip_seconds_median']} s clips"
    )
    print(f"  case list ({lst['cases']} cases) p50 {lst['all_queries']['p50_ms']} ms  "
          f"p95 {lst['all_queries']['p95_ms']} ms")  # fmt: skip
    for name, q in lst["per_query"].items():
        print(
            f"    {name:<16} p50 {q['p50_ms']:>7} ms  p95 {q['p95_ms']:>7} ms  total {q['total']}"
        )
    for name, t in r["targets"].items():
        print(f"  target {name}: {t['value']} ({t['target']}): {'met' if t['met'] else 'NOT MET'}")


if __name__ == "__main__":
    sys.exit(main())
