"""Wall benchmark, per delivery path: server CPU per tile-viewer, first frame, latency; the
mosaic; snapshots with the decoder cold and warm.

Usage::

    python -m bench.wall --quick                                  # about two minutes
    python -m bench.wall --tiles 6 --viewers 2 --json /tmp/bench-wall.json
    python -m bench.wall --paths mse --player-js proposed/player.js   # a page change, measured

Method
------
The simulator serves T identical H.264 High streams without B-frames (1080p25, 4 Mbit/s,
2 s GOP; ``--quick``: 4 streams at 720p, 2 Mbit/s), each mount starting at a different GOP
of the clip. The service runs as users run it, ``surveillance serve --config <generated
yaml>`` on a free loopback port, with the T cameras always-on, and a named layout
``bench-wall`` (the smallest square preset that holds T tiles, 4x4 for 16) shows them all.
Then, one phase at a time:

1. **ffmpeg -c copy** -- the in-run floor: one ``ffmpeg -c copy -f null`` per camera
   reading the same mounts, its CPU per stream (what merely receiving a stream costs).
2. **ingest only** -- no viewer: the service's CPU (utime + stime of all its threads, from
   ``/proc/<pid>/stat``) over ``--repeat`` windows of ``--seconds``.
3. **each delivery path** (``--paths``, default webrtc, mse, transcode), in turn: once the
   service is back near its ingest-only CPU (viewers of the path before may outlive their
   browser until their connection times out), ingest-only windows again (this path's own
   baseline), then V headless Chromium viewers, each its own browser context with one page
   on ``/wall/bench-wall``: the real wall page and ``player.js``, the plan request given
   the fields that put every tile on this path (:data:`bench.wall_browser.PATH_PLANS`:
   ``purpose: single`` for WebRTC, ``purpose: grid`` for fMP4/MSE, no decodable pass-through
   for transcode). Viewers open one after another, each signed in as the run's own admin;
   each must have every tile decoding before the next opens. Then the same CPU windows, for
   the service, Chromium and Playwright's driver, and each tile's decoded frames
   (``window.wall.tiles()``) before and after. Then **latency**: with the viewers still
   playing, a reference reader process per chosen camera (``--latency-tiles``, spread over
   the viewers) opens the same RTSP mount directly and stamps each frame number's arrival
   (``time.time()``); in the page a grabber keeps the frame-number region of every frame the
   tile presents, with its presentation time (``requestVideoFrameCallback``, mapped onto
   ``Date.now()``); see :mod:`bench.wall_latency`. The browser closes before the next path.
4. **mosaic** -- one WebRTC viewer (aiortc, in this process) of a 1080p25 mosaic of the T
   cameras, against ingest-only windows just before.
5. **snapshots** -- ``--snapshot-rounds`` rounds over every camera, each once its decoder
   is cold: ``mode=recent`` cold (the newest keyframe, no catch-up), ``mode=latest`` cold
   (the GOP's catch-up), ``latest`` warm twice, ``recent`` warm; ``keyframe`` at the end.
   Each answer's ``X-Snapshot-Mode`` and ``X-Frame-Age-Ms`` are kept.

Reading the figures
-------------------
CPU is in percent of ONE core (100 = one core busy; the machine has 100 x nproc).
Per path, ``service_cpu_pct_per_tile_viewer`` = (service CPU with viewers - service CPU in
that path's ingest-only windows) / (T x V), medians over the windows: what one more tile on
one more screen costs the server, the figure the budget (<= 0.3% of a core per 1080p
tile-viewer) is about, and ``ratio_to_ffmpeg_copy_per_stream`` the same over ffmpeg's cost
of receiving one stream. It includes each page's own requests (its health poll), spread
over its tiles. Chromium's CPU is the client's, reported only so the run can be judged: on
two cores without a GPU, decoding T x V 1080p streams in software is far more work than
forwarding them, and a saturated machine (``machine`` near 100 x nproc) shows in decoded
frame rates and latency, though not in the server's CPU per tile-viewer. The machine may
be shared: ``background`` is what other processes used during a window.

Time to first frame is per tile and viewer: ``firstFrameMs`` from ``player.js`` (from
the player's start to the first presented frame); budget <= 1 s on every tile.

Latency is presentation in the browser minus arrival at the reference reader of the same
frame number, over every grabbed frame; p95 <= 500 ms is the budget. For WebRTC it splits
into arrival -> receipt by the browser and receipt -> presentation. The reference stamps a
packet when its demuxer returns it, as the service's ingest does.

Snapshot times are wall time of sequential keep-alive requests; budget p95 <= 50 ms at
1080p whether a decoder is warm or not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import harness
from bench.baselines import start_ffmpeg, wait_receiving
from bench.cameras import camera_ids, staggered_mounts
from bench.mosaic import MOSAIC_FPS, MOSAIC_SIZE, grid_preset
from bench.mosaic import Viewer as MosaicViewer
from bench.procs import Children
from bench.procstat import CpuWindow, measure_cpu
from bench.service import (
    HOST,
    BenchCredentials,
    CameraEntry,
    ServiceProcess,
    free_port,
    write_config,
)
from bench.stats import median, percentile, ratio, rounded
from bench.wall_browser import (
    CHROMIUM,
    PATH_PLANS,
    Browsers,
    Crop,
    Viewer,
    first_frames_since_navigation,
    live_requests,
    start_grabber,
    stop_grabbers,
    take_grabs,
    tiles,
)
from bench.wall_latency import (
    Grab,
    Reference,
    best_scale,
    crop_for,
    latency_figures,
    read_grabs,
    start_reference,
    wait_ready,
)
from surveillance.services.snapshots import SNAPSHOT_WARM_S
from surveillance.simulator import ClipSpec, SimulatorFleet, ensure_clip

BENCHMARK = "bench.wall"
LAYOUT = "bench-wall"
REFERENCE_READY_TIMEOUT_S = 15.0
REFERENCE_ATTEMPTS = 3  # cameras tried per grabbed tile
POLL_S = 0.5
GRAB_PULL_S = 1.0
CALIBRATION_S = 1.5
READABLE_SHARE = 0.8  # of grabbed frames; below it, grab at full resolution instead
SATURATED_SHARE = 0.9  # of the machine's CPU

TILE_CPU_BUDGET_PCT = 0.3  # % of one core per 1080p tile-viewer
SNAPSHOT_P95_BUDGET_MS = 50.0  # 1080p, decoder warm or not
SNAPSHOT_GAP_S = 0.1
CALM_FACTOR, CALM_SLACK_PCT = 1.3, 1.0  # "back near ingest only": at most 1.3x it + 1% of a core
CALM_SAMPLE_S = 2.0
CALM_TIMEOUT_S = 60.0
# The service's warm window, its decoder's 0.25 s check and a margin: a request this long
# after a camera's last `latest` one finds its decoder cold.
SNAPSHOT_COLD_AFTER_S = SNAPSHOT_WARM_S + 1.5
SNAPSHOT_KINDS = ("recent_cold", "recent_warm", "latest_cold", "latest_warm", "keyframe")
FIRST_FRAME_BUDGET_MS = 1000.0
LATENCY_P95_BUDGET_MS = 500.0
FIRST_FRAME_STEPS = (
    "plan_request_ms",
    "offer_and_ice_ms",
    "answer_request_ms",
    "answer_to_first_frame_ms",
)


DELIVERY_PATHS = tuple(PATH_PLANS)  # webrtc, mse, transcode


@dataclass(frozen=True)
class Settings:
    tiles: int
    viewers: int
    paths: tuple[str, ...]
    mosaic: bool
    snapshot_rounds: int
    seconds: float
    repeat: int
    latency_seconds: float
    latency_tiles: int
    quick: bool
    clip: ClipSpec
    settle_s: float
    first_frame_timeout_s: float
    wait_quiet_s: float
    viewport: tuple[int, int]
    cache_dir: Path
    json_path: Path | None
    player_js: Path | None = None


def parse_settings(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        prog=f"python -m {BENCHMARK}", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--tiles", type=int, help="cameras on the wall (default 16; 4 quick)")
    parser.add_argument("--viewers", type=int, help="browser pages showing the wall (default 2)")
    parser.add_argument("--seconds", type=float, help="CPU window (default 15; 5 with --quick)")
    parser.add_argument("--repeat", type=int, help="windows per phase (default 3; 1 quick)")
    parser.add_argument(
        "--latency-seconds", type=float, help="latency sampling (default 20; 6 with --quick)"
    )
    parser.add_argument(
        "--latency-tiles", type=int, help="tiles whose frames are grabbed (default 2)"
    )
    parser.add_argument(
        "--paths",
        type=_paths,
        help=f"delivery paths measured, in turn (default {','.join(DELIVERY_PATHS)}; "
        "quick: webrtc,mse)",
    )
    parser.add_argument(
        "--no-mosaic", dest="mosaic", action="store_const", const=False, help="skip the mosaic"
    )
    parser.add_argument(
        "--snapshot-rounds",
        type=int,
        help="cold snapshot rounds over every camera, each after the warm window (default 3)",
    )
    parser.add_argument(
        "--player-js",
        type=Path,
        help="serve this file as the page's player.js (to measure a proposed change)",
    )
    harness.add_run_options(
        parser,
        quick="4 tiles at 720p, webrtc and mse, in about two minutes",
        wait_quiet="first wait up to this many seconds for an idle machine (default 180; 0 quick)",
    )
    args = parser.parse_args(argv)
    settings = harness.settings_from(args, _full_defaults(), _quick_defaults())
    if settings.tiles < 1 or settings.viewers < 1 or settings.seconds <= 0 or settings.repeat < 1:
        parser.error("--tiles, --viewers, --seconds and --repeat must be positive")
    if settings.tiles > 144:
        parser.error("--tiles: at most 144 (a 12x12 grid)")
    if settings.latency_tiles < 0:
        parser.error("--latency-tiles must be >= 0")
    return settings


def _paths(text: str) -> tuple[str, ...]:
    paths = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in paths if p not in DELIVERY_PATHS]
    if unknown or not paths:
        raise argparse.ArgumentTypeError(f"paths are among {', '.join(DELIVERY_PATHS)}")
    return paths


def _full_defaults() -> Settings:
    # The same 1080p clip as bench.ingest's snapshot camera: 10 s, five GOPs.
    return Settings(
        tiles=16,
        viewers=2,
        paths=DELIVERY_PATHS,
        mosaic=True,
        snapshot_rounds=3,
        seconds=15.0,
        repeat=3,
        latency_seconds=20.0,
        latency_tiles=2,
        quick=False,
        clip=ClipSpec(width=1920, height=1080, bitrate_kbps=4000, gop_s=2.0, seconds=10.0),
        settle_s=5.0,
        first_frame_timeout_s=30.0,
        wait_quiet_s=180.0,
        viewport=(1920, 1080),
        cache_dir=harness.CLIP_CACHE,
        json_path=None,
    )


def _quick_defaults() -> Settings:
    full = _full_defaults()
    return replace(
        full,
        tiles=4,
        paths=("webrtc", "mse"),
        snapshot_rounds=1,
        seconds=5.0,
        repeat=1,
        latency_seconds=6.0,
        quick=True,
        clip=ClipSpec(width=1280, height=720, bitrate_kbps=2000, gop_s=2.0, seconds=4.0),
        settle_s=2.0,
        first_frame_timeout_s=20.0,
        wait_quiet_s=0.0,
    )


# -- setup ------------------------------------------------------------------------------------


def put_layout(port: int, cameras: list[str], credentials: BenchCredentials) -> dict[str, Any]:
    """A square grid holding every camera, saved as ``LAYOUT`` through the API."""
    side = math.ceil(math.sqrt(len(cameras)))
    tiles_ = [
        {"x": i % side, "y": i // side, "w": 1, "h": 1, "camera": camera}
        for i, camera in enumerate(cameras)
    ]
    body = {"name": LAYOUT, "title": "Benchmark wall", "cols": side, "rows": side,
            "tiles": tiles_}  # fmt: skip
    request = urllib.request.Request(
        f"http://{HOST}:{port}/api/layouts/{LAYOUT}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **credentials.headers()},
        method="PUT",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        saved: dict[str, Any] = json.loads(response.read())
    return saved


@dataclass
class Run:
    settings: Settings
    simulator: SimulatorFleet
    children: Children
    service: ServiceProcess
    tmp: Path

    def base_groups(self) -> dict[str, list[int]]:
        return {"service": [self.service.pid], "simulator": self.simulator.pids}

    def windows(self, groups: dict[str, list[int]] | None = None) -> list[CpuWindow]:
        found = []
        for _ in range(self.settings.repeat):
            found.append(measure_cpu(groups or self.base_groups(), self.settings.seconds))
        return found


# -- phases -----------------------------------------------------------------------------------


def ingest_phase(run: Run) -> dict[str, Any]:
    time.sleep(run.settings.settle_s)
    windows = run.windows()
    listing = run.service.cameras()
    fps = [float(c["health"]["fps"]) for c in listing if c["health"].get("fps") is not None]
    return {
        "service_cpu_pct": median([w.groups["service"] for w in windows]),
        "online": sum(c["state"] == "online" for c in listing),
        "stream_fps_mean": rounded(sum(fps) / len(fps)) if fps else None,
        "windows": windows,
    }


def _all_decoding(viewer: Viewer, cameras: list[str]) -> bool:
    found = tiles(viewer.page)
    decoding = {
        t["camera"] for t in found if t["stats"] and (t["stats"].get("framesDecoded") or 0) > 0
    }
    return all(c in decoding for c in cameras)


def open_viewers(run: Run, browsers: Browsers, cameras: list[str]) -> list[dict[str, Any]]:
    """Open the viewers one after another, each once the last has every tile decoding."""
    url = f"http://{HOST}:{run.service.port}/wall/{LAYOUT}"
    opened = []
    for index in range(run.settings.viewers):
        # Each viewer signs in (its own context, its own session) before its page opens;
        # the CPU windows start only once every viewer plays.
        viewer = browsers.open(url, run.service.credentials)
        started = viewer.opened_at
        ok = _all_decoding(viewer, cameras)
        while not ok and time.monotonic() - started < run.settings.first_frame_timeout_s:
            time.sleep(POLL_S)
            ok = _all_decoding(viewer, cameras)
        waited = time.monotonic() - started
        _progress(
            f"viewer {index + 1}: {'every tile' if ok else 'NOT every tile'} decoding "
            f"after {waited:.1f} s"
        )
        opened.append({"viewer": index, "all_decoding": ok, "decoding_after_s": rounded(waited)})
    return opened


def _breakdown(requests: list[dict[str, Any]], camera: str, first: float | None) -> dict[str, Any]:
    """Where a tile's first frame went: ms since navigation of each step's end."""
    plan = next(
        (r for r in requests if r["camera"] == camera and r["path"].endswith("/plan")), None
    )
    answer = next(
        (r for r in requests if r["camera"] == camera and r["path"].endswith("/webrtc")), None
    )
    if plan is None or answer is None:
        return {}
    return {
        "plan_request_ms": rounded(plan["end"] - plan["start"], 1),
        "offer_and_ice_ms": rounded(answer["start"] - plan["end"], 1),
        "answer_request_ms": rounded(answer["end"] - answer["start"], 1),
        "answer_to_first_frame_ms": None if first is None else rounded(first - answer["end"], 1),
        "player_started_at_ms": rounded(plan["start"], 1),
    }


def _tile_rows(browsers: Browsers, *, breakdown: bool = False) -> list[dict[str, Any]]:
    rows = []
    for viewer in browsers.viewers:
        since_nav = first_frames_since_navigation(viewer.page)
        requests = live_requests(viewer.page) if breakdown else []
        for tile in tiles(viewer.page):
            stats = tile["stats"] or {}
            first = since_nav.get(tile["camera"])
            rows.append(
                {
                    "viewer": viewer.index,
                    "tile": tile["index"],
                    "camera": tile["camera"],
                    "state": tile["state"],
                    "stream": tile["stream"],
                    "path": stats.get("path"),
                    "width": stats.get("width"),
                    "height": stats.get("height"),
                    "frames_decoded": stats.get("framesDecoded"),
                    "first_frame_ms": rounded(stats.get("firstFrameMs"), 1),
                    "first_frame_from_navigation_ms": rounded(first, 1),
                    **(_breakdown(requests, tile["camera"], first) if breakdown else {}),
                }
            )
    return rows


def viewers_phase(run: Run, browsers: Browsers, cameras: list[str]) -> dict[str, Any]:
    opened = open_viewers(run, browsers, cameras)
    time.sleep(run.settings.settle_s)
    before, t0 = _tile_rows(browsers), time.monotonic()
    windows = []
    for _ in range(run.settings.repeat):
        # Renderers may come and go: list the browser's processes afresh for each window.
        groups = {
            **run.base_groups(),
            "chromium": browsers.chromium_pids(),
            "driver": [browsers.driver_pid] if browsers.driver_pid else [],
        }
        windows.append(measure_cpu(groups, run.settings.seconds))
    after, elapsed = _tile_rows(browsers, breakdown=True), time.monotonic() - t0
    start = {(r["viewer"], r["camera"]): r["frames_decoded"] or 0 for r in before}
    for row in after:
        decoded = (row["frames_decoded"] or 0) - start.get((row["viewer"], row["camera"]), 0)
        row["decoded_fps"] = rounded(decoded / elapsed)
        row["decoding"] = decoded > 0
    return {
        "opened": opened,
        "service_cpu_pct": median([w.groups["service"] for w in windows]),
        "chromium_cpu_pct": median([w.groups["chromium"] for w in windows]),
        "driver_cpu_pct": median([w.groups["driver"] for w in windows]),
        "chromium_processes": len(browsers.chromium_pids()),
        "tiles": after,
        "windows": windows,
    }


def latency_phase(run: Run, browsers: Browsers, cameras: list[str]) -> dict[str, Any]:
    s = run.settings
    count = min(s.latency_tiles, len(cameras))
    if count == 0:
        return {"skipped": "--latency-tiles 0"}
    # Spread the grabbed tiles over the wall and over the viewers.
    starts = [i * len(cameras) // count for i in range(count)]
    references = _ready_references(run, [cameras[i:] + cameras[:i] for i in starts])
    chosen = [(camera, i % len(browsers.viewers)) for i, camera in enumerate(references)]
    try:
        if len(references) < count:
            return {"error": "reference readers read no keyframe in time"}
        height = s.clip.height
        scale = best_scale(height)
        grabs, errors = _grab(browsers, chosen, height, scale, CALIBRATION_S)
        readable = sum(g.number is not None for g in grabs)
        if scale > 1 and readable < READABLE_SHARE * max(1, len(grabs)):
            _progress(f"frame numbers unreadable at 1/{scale} size: grabbing at full size")
            scale = 1
        grab_started = time.monotonic()
        grabs, errors = _grab(browsers, chosen, height, scale, s.latency_seconds)
        grab_s = time.monotonic() - grab_started
    finally:
        run.children.stop([r.proc for r in references.values()])
    figures = latency_figures(grabs, references)
    sw, sh, dw, dh = crop_for(height, scale)
    return {
        **figures,
        "grabbed_tiles": [{"camera": c, "viewer": v} for c, v in chosen],
        "grab_region": {"source": [sw, sh], "kept": [dw, dh], "scale": scale},
        "grabber_errors": errors,
        # Frames the grabbed tiles presented per second (each presented frame is grabbed).
        "grabbed_fps": {
            f"{c}@viewer{v}": rounded(
                sum(g.camera == c and g.viewer == v for g in grabs) / grab_s, 1
            )
            for c, v in chosen
        },
        "reference_packets": {c: r.packets for c, r in references.items()},
        "reference_mismatches": {c: r.mismatches for c, r in references.items()},
    }


def _ready_references(run: Run, candidates: list[list[str]]) -> dict[str, Reference]:
    """A reference reader for one camera of each list of candidates, the first whose
    reader reads a keyframe in time: now and then a reader reads nothing from a mount,
    and again when restarted on it, and the next camera takes its place.

    Known fault (2026-12-01): once a mount has a second client, the simulator sends its
    first client packets of two timelines, interleaved; the service's ingest of that
    camera is one of those clients, so latency figures taken with a reference reader are
    not to be trusted until that is fixed (``bench.wall_relative`` needs no second client).
    """
    references: dict[str, Reference] = {}
    for cameras in candidates:
        for camera in [c for c in cameras if c not in references][:REFERENCE_ATTEMPTS]:
            log = run.tmp / f"reference-{camera}.log"
            url, frames = run.simulator.url(camera), run.settings.clip.frame_count
            reference = start_reference(run.children, camera, url, frames, log)
            if wait_ready([reference], REFERENCE_READY_TIMEOUT_S):
                references[camera] = reference
                break
            _progress(f"reference reader of {camera}: no keyframe in time, trying another")
            run.children.stop([reference.proc])
    return references


def _grab(
    browsers: Browsers,
    chosen: list[tuple[str, int]],
    height: int,
    scale: int,
    seconds: float,
) -> tuple[list[Grab], int]:
    sw, sh, dw, dh = crop_for(height, scale)
    crop = Crop(sw, sh, dw, dh)
    pages = {v: browsers.viewers[v].page for _, v in chosen}
    for camera, v in chosen:
        if not start_grabber(pages[v], camera, crop):
            raise RuntimeError(f"viewer {v}: no video for {camera} to grab frames from")
    raw: list[tuple[int, dict[str, dict[str, Any]]]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(GRAB_PULL_S, max(0.0, deadline - time.monotonic())))
        raw.extend((v, take_grabs(page)) for v, page in pages.items())
    for v, page in pages.items():
        stop_grabbers(page)
        raw.append((v, take_grabs(page)))
    grabs: list[Grab] = []
    errors = 0
    for v, batch in raw:
        found, failed = read_grabs(v, batch, height, scale, dw)
        grabs.extend(found)
        errors += failed
    return grabs, errors


# -- the run ----------------------------------------------------------------------------------


def ffmpeg_phase(run: Run, cameras: list[str]) -> dict[str, Any]:
    """The in-run floor: one ``ffmpeg -c copy`` per camera, reading the same streams."""
    urls = [run.simulator.url(c) for c in cameras]
    procs = start_ffmpeg(run.children, urls, run.tmp / "ffmpeg.log")
    try:
        pids = [p.pid for p in procs]
        receiving, _ = wait_receiving(run.simulator.ports, pids, REFERENCE_READY_TIMEOUT_S)
        time.sleep(run.settings.settle_s)
        windows = run.windows({"ffmpeg": pids, "simulator": run.simulator.pids})
    finally:
        run.children.stop(procs)
    total = median([w.groups["ffmpeg"] for w in windows])
    return {
        "receiving": receiving,
        "cpu_pct_total": total,
        "cpu_pct_per_stream": None if total is None else total / len(cameras),
        "windows": windows,
    }


def wait_calm(run: Run, ingest_pct: float) -> float:
    """Wait until the service's CPU is back near ``ingest_pct`` (the first ingest-only
    windows): the viewers of the path before may outlive their browser for a while (a
    WebRTC peer whose browser vanished is dropped when its ICE consent expires). Returns the
    seconds waited."""
    started = time.monotonic()
    limit = CALM_FACTOR * ingest_pct + CALM_SLACK_PCT
    while time.monotonic() - started < CALM_TIMEOUT_S:
        if measure_cpu({"service": [run.service.pid]}, CALM_SAMPLE_S).groups["service"] <= limit:
            break
    return time.monotonic() - started


def path_phase(run: Run, path: str, cameras: list[str], ingest_pct: float) -> dict[str, Any]:
    """Ingest-only windows (this path's in-run baseline), then the viewers on ``path``."""
    time.sleep(run.settings.settle_s)
    calm_after = wait_calm(run, ingest_pct)
    phase: dict[str, Any] = {"calm_after_s": rounded(calm_after), "baseline": ingest_phase(run)}
    browsers = Browsers(run.settings.viewport, path, run.settings.player_js)
    try:
        browsers.start()
        _progress(f"{path}: {run.settings.viewers} viewers x {run.settings.tiles} tiles ...")
        phase["viewers"] = viewers_phase(run, browsers, cameras)
        _progress(f"{path}: latency ...")
        phase["latency"] = latency_phase(run, browsers, cameras)
    finally:
        browsers.close()
    return phase


def mosaic_phase(run: Run, cameras: list[str], ingest_pct: float) -> dict[str, Any]:
    """One WebRTC viewer (aiortc) of a mosaic of the wall's cameras, 1080p25."""
    time.sleep(run.settings.settle_s)
    wait_calm(run, ingest_pct)
    baseline = ingest_phase(run)
    query = f"size={MOSAIC_SIZE}&fps={MOSAIC_FPS}&cameras={','.join(cameras)}"
    path = f"/api/mosaic/{grid_preset(len(cameras))}/webrtc?{query}"
    found = asyncio.run(_watch_mosaic(run, path))
    return {"baseline": baseline, **found}


async def _watch_mosaic(run: Run, path: str) -> dict[str, Any]:
    viewer = MosaicViewer()
    try:
        await viewer.connect(run.service.port, path, run.service.credentials.token)
        deadline = time.monotonic() + run.settings.first_frame_timeout_s
        while viewer.frames == 0 and time.monotonic() < deadline:  # noqa: ASYNC110 - a counter
            await asyncio.sleep(POLL_S)
        if viewer.frames == 0:
            return {"error": "the mosaic viewer received no frame"}
        await asyncio.sleep(run.settings.settle_s)
        before, t0 = viewer.frames, time.monotonic()
        windows = await asyncio.to_thread(run.windows)
        fps = (viewer.frames - before) / (time.monotonic() - t0)
        return {
            "service_cpu_pct": median([w.groups["service"] for w in windows]),
            "received_fps": rounded(fps, 1),
            "size": list(viewer.size) if viewer.size else None,
            "windows": windows,
        }
    finally:
        await viewer.close()


def snapshot_phase(run: Run, cameras: list[str]) -> dict[str, Any]:
    """Snapshot requests (sequential, keep-alive) of every camera, in rounds.

    Each round starts once every camera's live decoder has gone cold (no ``latest`` request
    for longer than the warm window) and asks each camera, in turn: ``recent`` (cold: the
    newest keyframe), ``latest`` (cold: the GOP's catch-up), ``latest`` twice more and
    ``recent`` (warm: the running decoder's newest picture); ``keyframe`` once at the end.
    Each answer's ``X-Snapshot-Mode`` and ``X-Frame-Age-Ms`` are kept with its time.
    """
    shots: list[dict[str, Any]] = []
    last_latest = 0.0

    def take(camera: str, mode: str, kind: str) -> None:
        started = time.perf_counter()
        status, body, headers = run.service.http.get_with_headers(
            f"/api/cameras/{camera}/snapshot.jpg?mode={mode}"
        )
        ms = (time.perf_counter() - started) * 1000
        shots.append({"kind": kind, "ms": ms, "status": status, "bytes": len(body),
                      "served": headers.get("x-snapshot-mode"),
                      "age_ms": int(headers.get("x-frame-age-ms", -1))})  # fmt: skip
        time.sleep(SNAPSHOT_GAP_S)

    for round_ in range(run.settings.snapshot_rounds):
        if round_:
            time.sleep(max(0.0, last_latest + SNAPSHOT_COLD_AFTER_S - time.monotonic()))
        # uvicorn closes a keep-alive connection idle for 5 s: without a fresh one the
        # round's first request would also time a failed send and a reconnect.
        run.service.http.close()
        run.service.http.get("/api/health")
        for camera in cameras:
            take(camera, "recent", "recent_cold")
            take(camera, "latest", "latest_cold")
            take(camera, "latest", "latest_warm")
            take(camera, "latest", "latest_warm")
            take(camera, "recent", "recent_warm")
            last_latest = time.monotonic()
    for camera in cameras:
        take(camera, "keyframe", "keyframe")
    return {"shots": shots}


def snapshot_figures(phase: dict[str, Any]) -> dict[str, Any]:
    shots = phase["shots"]
    found: dict[str, Any] = {"failed": sum(s["status"] != 200 for s in shots)}
    for kind in SNAPSHOT_KINDS:
        ok = [s for s in shots if s["kind"] == kind and s["status"] == 200]
        ms = [s["ms"] for s in ok]
        ages = [s["age_ms"] for s in ok]
        served: dict[str, int] = {}
        for s in ok:
            served[str(s["served"])] = served.get(str(s["served"]), 0) + 1
        found[kind] = {
            "n": len(ms),
            "p50_ms": rounded(percentile(ms, 50), 1),
            "p95_ms": rounded(percentile(ms, 95), 1),
            "max_ms": rounded(max(ms), 1) if ms else None,
            "age_p50_ms": rounded(percentile(ages, 50), 0),
            "age_max_ms": max(ages) if ages else None,
            "served": served,
        }
    return found


def run_phases(settings: Settings) -> dict[str, Any]:
    phases: dict[str, Any] = {}
    started = time.monotonic()
    ensure_clip(settings.clip, settings.cache_dir)
    phases["clip_generation_s"] = rounded(time.monotonic() - started)
    phases["quiet_before"] = harness.wait_quiet(BENCHMARK, settings.wait_quiet_s)
    cameras = camera_ids(settings.tiles)
    with (
        Children() as children,
        tempfile.TemporaryDirectory(prefix="bench-wall-") as tmp_name,
        SimulatorFleet(
            staggered_mounts(cameras, settings.clip), clip_dir=settings.cache_dir
        ) as simulator,
    ):
        tmp = Path(tmp_name)
        port = free_port()
        config = tmp / "service.yaml"
        entries = [CameraEntry(c, simulator.url(c)) for c in cameras]
        write_config(config, entries, tmp / "data", port)
        service = ServiceProcess(children, config, port, tmp / "service.log")
        run = Run(settings, simulator, children, service, tmp)
        try:
            phases["service_ready_s"] = rounded(service.wait_ready(harness.SERVICE_READY_TIMEOUT_S))
            online, waited = service.wait_online(settings.tiles, 20.0 + 0.5 * settings.tiles)
            phases["online_at_start"], phases["online_wait_s"] = online, rounded(waited)
            phases["layout"] = put_layout(port, cameras, service.credentials)
            _progress("ffmpeg -c copy on the same streams (baseline) ...")
            phases["ffmpeg_copy"] = ffmpeg_phase(run, cameras)
            _progress("ingest only ...")
            phases["ingest"] = ingest_phase(run)
            calm = phases["ingest"]["service_cpu_pct"]
            phases["paths"] = {}
            for path in settings.paths:
                phases["paths"][path] = path_phase(run, path, cameras, calm)
            if settings.mosaic:
                _progress("mosaic ...")
                phases["mosaic"] = mosaic_phase(run, cameras, calm)
            if settings.snapshot_rounds > 0:
                _progress("snapshots ...")
                phases["snapshots"] = snapshot_phase(run, cameras)
            phases["service_log_tail"] = service.log_tail()[-1500:]
        finally:
            service.stop()
    phases["total_s"] = rounded(time.monotonic() - started)
    return phases


# -- figures ----------------------------------------------------------------------------------


def path_figures(
    settings: Settings, phase: dict[str, Any], ffmpeg_per_stream: float | None
) -> dict[str, Any]:
    baseline, viewers = phase["baseline"], phase["viewers"]
    latency = phase.get("latency", {})
    tile_viewers = settings.tiles * settings.viewers
    extra = viewers["service_cpu_pct"] - baseline["service_cpu_pct"]
    per_tile_viewer = extra / tile_viewers
    rows = viewers["tiles"]
    firsts = [r["first_frame_ms"] for r in rows if r["first_frame_ms"] is not None]
    since_nav = [
        r["first_frame_from_navigation_ms"]
        for r in rows
        if r["first_frame_from_navigation_ms"] is not None
    ]
    fps = [r["decoded_fps"] for r in rows if r["decoded_fps"] is not None]
    paths: dict[str, int] = {}
    for row in rows:
        paths[str(row["path"])] = paths.get(str(row["path"]), 0) + 1
    return {
        "service_cpu_pct_ingest_only": rounded(baseline["service_cpu_pct"]),
        "service_cpu_pct_with_viewers": rounded(viewers["service_cpu_pct"]),
        "service_cpu_pct_per_tile_viewer": rounded(per_tile_viewer, 3),
        # The noise: each viewers window against the baseline's median.
        "per_tile_viewer_by_window": [
            rounded((w.groups["service"] - baseline["service_cpu_pct"]) / tile_viewers, 3)
            for w in viewers["windows"]
        ],
        "waited_for_calm_s": phase.get("calm_after_s"),
        "ratio_to_ffmpeg_copy_per_stream": rounded(ratio(per_tile_viewer, ffmpeg_per_stream)),
        "chromium_cpu_pct": rounded(viewers["chromium_cpu_pct"]),
        "playwright_driver_cpu_pct": rounded(viewers["driver_cpu_pct"]),
        "tiles_decoding": sum(bool(r.get("decoding")) for r in rows),
        "tiles_total": len(rows),
        "paths_seen": paths,
        "small_tiles": sum(r["height"] != settings.clip.height for r in rows),
        "decoded_fps_median": rounded(median(fps)),
        "decoded_fps_min": rounded(min(fps)) if fps else None,
        "first_frame_p50_ms": rounded(percentile(firsts, 50), 1),
        "first_frame_p95_ms": rounded(percentile(firsts, 95), 1),
        "first_frame_max_ms": rounded(max(firsts), 1) if firsts else None,
        "first_frame_n": len(firsts),
        "first_frame_from_navigation_p50_ms": rounded(percentile(since_nav, 50), 1),
        "first_frame_from_navigation_max_ms": rounded(max(since_nav), 1) if since_nav else None,
        "first_frame_steps_p50_ms": {
            step: rounded(median([r[step] for r in rows if r.get(step) is not None]), 1)
            for step in FIRST_FRAME_STEPS
        },
        **{k: v for k, v in latency.items() if k.startswith(("latency_", "to_", "receipt_"))},
        "latency_grabbed_fps": latency.get("grabbed_fps"),
        "latency_error": latency.get("error"),
        "cpu_pct_by_phase": {
            "ingest": harness.window_medians(baseline["windows"], 2),
            "viewers": harness.window_medians(viewers["windows"], 2),
        },
    }


def mosaic_figures(settings: Settings, phase: dict[str, Any]) -> dict[str, Any]:
    if "error" in phase:
        return {"error": phase["error"]}
    extra = phase["service_cpu_pct"] - phase["baseline"]["service_cpu_pct"]
    return {
        "tiles": settings.tiles,
        "size": phase["size"],
        "received_fps": phase["received_fps"],
        "service_cpu_pct_ingest_only": rounded(phase["baseline"]["service_cpu_pct"]),
        "service_cpu_pct_with_mosaic": rounded(phase["service_cpu_pct"]),
        "mosaic_cpu_pct": rounded(extra),
        "cpu_pct_by_phase": {
            "ingest": harness.window_medians(phase["baseline"]["windows"], 2),
            "mosaic": harness.window_medians(phase["windows"], 2),
        },
    }


def summarize(settings: Settings, phases: dict[str, Any]) -> dict[str, Any]:
    ffmpeg = phases["ffmpeg_copy"]
    per_stream = ffmpeg["cpu_pct_per_stream"]
    f: dict[str, Any] = {
        "tiles": settings.tiles,
        "viewers": settings.viewers,
        "tile_viewers": settings.tiles * settings.viewers,
        "source": f"{settings.clip.width}x{settings.clip.height} {settings.clip.fps} fps "
        f"H.264 {settings.clip.profile}, {settings.clip.bitrate_kbps} kbit/s, "
        f"GOP {settings.clip.gop_s:g} s, no B-frames",
        "online": phases["online_at_start"],
        "ffmpeg_copy_cpu_pct_per_stream": rounded(per_stream, 3),
        "ffmpeg_copy_receiving": ffmpeg["receiving"],
        "paths": {
            path: path_figures(settings, phase, per_stream)
            for path, phase in phases["paths"].items()
        },
    }
    if "mosaic" in phases:
        f["mosaic"] = mosaic_figures(settings, phases["mosaic"])
    if "snapshots" in phases:
        f["snapshots"] = snapshot_figures(phases["snapshots"])
    f["targets"] = build_targets(settings, f)
    f["warnings"] = warnings(settings, f)
    return f


def _verdict(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def build_targets(settings: Settings, f: dict[str, Any]) -> dict[str, dict[str, Any]]:
    size = f"{settings.clip.height}p"
    note = "" if settings.clip.height >= 1080 else f" (measured at {size}: indicative only)"
    targets: dict[str, dict[str, Any]] = {}
    for path, p in f["paths"].items():
        role = {"mse": " (the grid's path)", "webrtc": " (single pictures)"}.get(path, "")
        targets[f"{path}_cpu_per_tile_viewer"] = {
            "rule": f"{path}{role}: service CPU per 1080p tile-viewer <= "
            f"{TILE_CPU_BUDGET_PCT}% of a core" + note,
            "value": p["service_cpu_pct_per_tile_viewer"],
            "limit": TILE_CPU_BUDGET_PCT,
            "pass": _verdict(p["service_cpu_pct_per_tile_viewer"], TILE_CPU_BUDGET_PCT),
        }
        targets[f"{path}_latency_p95"] = {
            "rule": f"{path}: source -> presented frame p95 <= {LATENCY_P95_BUDGET_MS:g} ms",
            "value": p.get("latency_p95_ms"),
            "limit": LATENCY_P95_BUDGET_MS,
            "pass": _verdict(p.get("latency_p95_ms"), LATENCY_P95_BUDGET_MS),
        }
        targets[f"{path}_first_frame"] = {
            "rule": f"{path}: first frame on every tile <= {FIRST_FRAME_BUDGET_MS:g} ms after the "
            "player starts (max over tiles and viewers)",
            "value": p["first_frame_max_ms"],
            "limit": FIRST_FRAME_BUDGET_MS,
            "pass": _verdict(p["first_frame_max_ms"], FIRST_FRAME_BUDGET_MS)
            if p["first_frame_n"] == p["tiles_total"]
            else False,
        }
        targets[f"{path}_every_tile_decodes"] = {
            "rule": f"{path}: every tile of every viewer decodes frames during the CPU windows",
            "value": f"{p['tiles_decoding']}/{p['tiles_total']}",
            "limit": f"{f['tile_viewers']}/{f['tile_viewers']}",
            "pass": p["tiles_decoding"] == f["tile_viewers"],
        }
    shots = f.get("snapshots", {})
    for kind in SNAPSHOT_KINDS[:4]:
        value = shots.get(kind, {}).get("p95_ms")
        why = " (informational: a GOP's catch-up)" if kind == "latest_cold" else ""
        targets[f"snapshot_{kind}_p95"] = {
            "rule": f"{size} snapshot {kind}: p95 <= {SNAPSHOT_P95_BUDGET_MS:g} ms{why}" + note,
            "value": value,
            "limit": SNAPSHOT_P95_BUDGET_MS,
            "pass": _verdict(value, SNAPSHOT_P95_BUDGET_MS),
        }
    return targets


def warnings(settings: Settings, f: dict[str, Any]) -> list[str]:
    found = []
    if f["online"] < settings.tiles:
        found.append(f"only {f['online']} of {settings.tiles} cameras were online")
    if f["ffmpeg_copy_receiving"] < settings.tiles:
        found.append(f"ffmpeg -c copy: only {f['ffmpeg_copy_receiving']} streams received")
    nproc = os.cpu_count() or 1
    for path, p in f["paths"].items():
        other = {k: n for k, n in p["paths_seen"].items() if k != path}
        if other:
            found.append(f"{path}: tiles on another path: {other}")
        if p["small_tiles"]:
            found.append(
                f"{path}: {p['small_tiles']} tiles do not show the {settings.clip.height}p source"
            )
        machine = p["cpu_pct_by_phase"]["viewers"]["machine"] or 0.0
        if machine > SATURATED_SHARE * 100 * nproc:
            found.append(
                f"{path}: the machine was saturated with viewers ({machine}% of {100 * nproc}%): "
                f"Chromium ({p['chromium_cpu_pct']}%) decodes {f['tile_viewers']} streams in "
                "software; decoded frame rates, first frames and latency suffer from that"
            )
        slow = p["decoded_fps_min"]
        if slow is not None and slow < 0.8 * settings.clip.fps:
            found.append(f"{path}: some tiles decoded only {slow} fps (source {settings.clip.fps})")
        found.extend(f"{path}: {w}" for w in harness.background_warnings(p["cpu_pct_by_phase"]))
        if p["latency_error"]:
            found.append(f"{path}: latency: {p['latency_error']}")
        grabbed = p.get("latency_grabbed") or 0
        if grabbed and (p.get("latency_frames") or 0) < 0.8 * grabbed:
            found.append(
                f"{path}: latency: only {p.get('latency_frames')} of {grabbed} grabbed frames "
                f"were read and matched ({p.get('latency_unreadable')} unreadable, "
                f"{p.get('latency_unmatched')} unmatched)"
            )
    mosaic = f.get("mosaic", {})
    if "error" in mosaic:
        found.append(f"mosaic: {mosaic['error']}")
    failed = f.get("snapshots", {}).get("failed")
    if failed:
        found.append(f"snapshots: {failed} requests failed")
    return found


# -- output -----------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return "/".join(_fmt(v) for v in value)
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1 else f"{value:.1f}"
    return str(value)


PATH_ROWS = (
    ("service CPU, ingest only", "service_cpu_pct_ingest_only"),
    ("service CPU, with viewers", "service_cpu_pct_with_viewers"),
    ("service CPU per tile-viewer", "service_cpu_pct_per_tile_viewer"),
    ("  / ffmpeg -c copy per stream", "ratio_to_ffmpeg_copy_per_stream"),
    ("  by window", "per_tile_viewer_by_window"),
    ("chromium CPU (client)", "chromium_cpu_pct"),
    ("tiles decoding", "tiles_decoding"),
    ("decoded fps median", "decoded_fps_median"),
    ("decoded fps min", "decoded_fps_min"),
    ("first frame p50 ms", "first_frame_p50_ms"),
    ("first frame max ms", "first_frame_max_ms"),
    ("latency p50 ms", "latency_p50_ms"),
    ("latency p95 ms", "latency_p95_ms"),
    ("latency frames", "latency_frames"),
    ("  arrival -> receipt p50 ms", "to_browser_receipt_p50_ms"),
)


def print_table(r: dict[str, Any]) -> None:
    m = r["machine"]
    print(
        f"\nbench.wall  {r['timestamp']}  {m['nproc']} cores ({m['cpu_model']}), "
        f"load {m['loadavg_start']}"
    )
    print(f"  {r['command']}")
    print(
        f"  {r['tiles']} tiles x {r['viewers']} viewers; {r['source']}; "
        f"{r['settings']['repeat']} x {r['settings']['seconds']:g} s windows, medians; "
        "CPU in % of one core\n"
    )
    floor = _fmt(r["ffmpeg_copy_cpu_pct_per_stream"])
    print(f"  ffmpeg -c copy on the same streams: {floor}% per stream\n")
    paths = r["paths"]
    print(f"  {'':<32}" + "".join(f"{p:>12}" for p in paths))
    for label, key in PATH_ROWS:
        print(f"  {label:<32}" + "".join(f"{_fmt(paths[p].get(key)):>12}" for p in paths))
    loads = [paths[p]["cpu_pct_by_phase"]["viewers"] for p in paths]
    print(
        f"  {'background / machine CPU':<32}"
        + "".join(f"{_fmt(c['background']) + ' / ' + _fmt(c['machine']):>12}" for c in loads)
    )
    mosaic = r.get("mosaic")
    if mosaic and "error" not in mosaic:
        print(
            f"\n  mosaic of the {mosaic['tiles']} cameras at {mosaic['size']}: "
            f"{_fmt(mosaic['mosaic_cpu_pct'])}% of a core "
            f"({_fmt(mosaic['service_cpu_pct_with_mosaic'])} - "
            f"{_fmt(mosaic['service_cpu_pct_ingest_only'])}), "
            f"{_fmt(mosaic['received_fps'])} fps received"
        )
    shots = r.get("snapshots")
    if shots:
        print("\n  snapshots (ms)        p50      p95      max    n   picture age p50/max, served")
        for kind in SNAPSHOT_KINDS:
            k = shots[kind]
            print(
                f"  {kind:<16}{_fmt(k['p50_ms']):>9}{_fmt(k['p95_ms']):>9}{_fmt(k['max_ms']):>9}"
                f"{k['n']:>5}   {_fmt(k['age_p50_ms'])}/{_fmt(k['age_max_ms'])} ms, {k['served']}"
            )
    print("\n  targets")
    for name, target in r["targets"].items():
        verdict = {True: "PASS", False: "FAIL", None: "n/a "}[target["pass"]]
        print(
            f"  [{verdict}] {name}: {target['value']} (limit {target['limit']}) - {target['rule']}"
        )
    for warning in r["warnings"]:
        print(f"  WARNING: {warning}")
    print()


def _versions() -> dict[str, Any]:
    import aiortc
    import av
    import playwright

    return {
        "av": av.__version__,
        "aiortc": getattr(aiortc, "__version__", None),
        "playwright": getattr(playwright, "__version__", None),
        "chromium": harness.command_version([CHROMIUM, "--version"]),
    }


def _progress(message: str) -> None:
    harness.progress(BENCHMARK, message)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return harness.run_benchmark(
        BENCHMARK,
        argv,
        parse_settings(argv),
        versions=_versions,
        run_phases=run_phases,
        summarize=summarize,
        print_table=print_table,
    )


if __name__ == "__main__":
    sys.exit(main())
