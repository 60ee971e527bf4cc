"""Ingest benchmark: CPU and memory per camera stream, against ``ffmpeg -c copy`` and OpenCV.

Usage::

    python -m bench.ingest --quick                       # < 1 minute, a smoke run
    python -m bench.ingest --cameras 200 --seconds 20 --json /tmp/bench-200.json
    python -m bench.ingest --cameras 300 --json /tmp/bench-300.json

Method
------
The camera simulator serves N identical 720p25 H.264 High streams at 2 Mbit/s with a
2 s GOP and no B-frames, plus one 1080p 4 Mbit/s mount ``fullhd`` for snapshots. Mounts
start at different GOPs of the clip (``start_offset_s``, five offsets). By default they
are shared mounts (``MountSpec.shared``) in one GStreamer RTSP server process: the cameras
with the same offset are one media, payloaded once, whose packets go to each of their
clients, every client starting at a keyframe. That keeps the simulator near a tenth of a
core at 300 cameras, where one pipeline per client cost two thirds of one (measured with
``python -m bench.simulator_cpu``), so on two cores the run measures the service rather
than the test rig. ``--unshared-simulator`` serves the cameras as before instead: one
pipeline per client, in processes of 25 mounts (one process with a pipeline per client
cannot feed many more than sixty). The simulator's CPU, summed over its processes, is
reported beside every phase's figures, never inside them. Then, one phase at a time,
never two at once (the machine has two cores and every phase would steal from the
other):

1. **service** -- ``surveillance serve --config <generated yaml>``, the command users run,
   first with zero cameras (the interpreter's and libraries' own RSS), then with the N
   cameras always-on and ``fullhd`` on-demand (so it is idle during the CPU windows).
   Once all N are online and a few seconds have passed, CPU is read from
   ``/proc/<pid>/stat`` (utime + stime, all threads) over ``--repeat`` windows of
   ``--seconds`` each, RSS from ``/proc/<pid>/status``. After the CPU windows come the
   snapshots: 720p cameras cold (first request) and warm (repeats within the 15 s the
   service keeps a decoder warm), and the 1080p camera.
2. **ffmpeg copy** -- one ``ffmpeg -rtsp_transport tcp -i URL -c copy -f null -`` per
   stream: the cost of receiving and demuxing in C, with nothing kept. The floor. With
   ``--ffmpeg-cameras M`` only the first M cameras (every start offset among them), and
   the per-stream figure is over those M: hundreds of ffmpeg processes cost the kernel
   scheduling and memory of their own, which a sample shows the size of.
3. **opencv** -- one ``cv2.VideoCapture`` thread per camera in a separate process, reading
   (decoding) every frame, for at most ``--opencv-cameras`` cameras: what naive code costs.

During every window the simulator's CPU and the whole machine's are read too; what is
left after the measured processes is "background" (other users of the machine).

Reading the figures
-------------------
CPU is in percent of ONE core (100 = one core fully busy; this machine's total is
100 x nproc). Per-stream figures are a phase's total divided by its stream count; the
quoted value is the median over the ``--repeat`` windows. ``ratio_service_vs_ffmpeg`` is
what the budget is about: the service may cost at most 1.5x ffmpeg's copy per stream.
RSS per stream is (RSS with N cameras - RSS with none) / N, to be compared with the ring
it holds (``ring_mb_per_stream``, the compressed packets kept per camera): budget
1.2 x ring + 2 MB. ffmpeg's memory is also given as PSS, which shares its libraries
fairly among the N processes (its RSS counts them N times).

Check the run before trusting a ratio. Every phase reports what its connections really
received from the simulator during the windows (``received_kbps_per_stream``, from the
kernel's tcp_info) and how many connections got at least half the nominal rate
(``flowing_streams``); a stream stuck in the simulator costs its client nothing, so if
the phases differ there, compare ``ratio_service_vs_ffmpeg_per_mbit`` (CPU per Mbit/s
actually received) instead. Also look at the simulator's and the background CPU (the
machine may be shared) and the service's own ``stream_fps_mean``; ``warnings`` in the
JSON lists what looked wrong.

Snapshot latency is wall time of ``GET /api/cameras/{id}/snapshot.jpg`` over keep-alive
loopback HTTP, sequential requests. "cold" decodes the cached GOP up to now, "warm"
costs one JPEG encode; the 1080p "first" request also connects the on-demand camera.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import harness
from bench.baselines import (
    OpenCvReader,
    Reception,
    received_by,
    reception,
    start_ffmpeg,
    wait_receiving,
)
from bench.cameras import camera_ids, staggered_mounts
from bench.procs import Children
from bench.procstat import CpuWindow, cpu_seconds, measure_cpu, pss_mb, rss_mb
from bench.report import build_targets, print_table
from bench.service import CameraEntry, ServiceProcess, free_port, ring_figures, write_config
from bench.snapshots import SnapshotTaker, sample, summarize, take_rounds
from bench.stats import median, ratio, rounded
from surveillance.simulator import ClipSpec, MountSpec, SimulatorFleet, ensure_clip
from surveillance.simulator.fleet import MOUNTS_PER_PROCESS

BENCHMARK = "bench.ingest"
FULLHD = "fullhd"


@dataclass(frozen=True)
class Settings:
    cameras: int
    seconds: float
    shared_simulator: bool  # shared mounts in one process, else a pipeline per client
    ffmpeg_cameras: int | None  # the ffmpeg baseline on the first M cameras; None: all
    repeat: int
    opencv_cameras: int
    quick: bool
    clip: ClipSpec
    fullhd_clip: ClipSpec
    settle_s: float  # after all cameras are online, before measuring
    gap_s: float  # between phases, so the simulator tears the last one's sessions down
    snapshot_cameras: int
    snapshot_rounds: int
    snapshot_gap_s: float
    fullhd_warm: int  # 1080p repeats within the warm window
    fullhd_keyframe: int  # 1080p ``mode=keyframe`` requests
    fullhd_cold: int  # 1080p requests after the decoder went cold (each waits ~17 s)
    wait_quiet_s: float  # longest wait for an idle machine before each phase
    cache_dir: Path
    json_path: Path | None

    @property
    def online_timeout_s(self) -> float:
        # A camera stuck in the simulator must not eat the quick run's minute.
        return (8.0 if self.quick else 20.0) + 0.3 * self.cameras


def parse_settings(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        prog=f"python -m {BENCHMARK}", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--cameras", type=int, help="streams (default 200; 8 with --quick)")
    parser.add_argument("--seconds", type=float, help="CPU window (default 20; 5 with --quick)")
    parser.add_argument(
        "--unshared-simulator",
        dest="shared_simulator",
        action="store_const",
        const=False,
        help="serve every client from a pipeline of its own, in processes of 25 mounts, as "
        "before shared mounts (the simulator then costs several times more CPU)",
    )
    parser.add_argument(
        "--ffmpeg-cameras", type=int, help="run the ffmpeg baseline on the first M cameras only"
    )
    parser.add_argument("--repeat", type=int, help="windows per phase (default 3; 1 with --quick)")
    parser.add_argument(
        "--opencv-cameras", type=int, help="cameras for the OpenCV baseline (default 8; 2 quick)"
    )
    harness.add_run_options(
        parser,
        quick="a smoke run in under a minute",
        wait_quiet="before each phase, wait up to this many seconds for an idle machine "
        "(default 180; 0 with --quick)",
    )
    args = parser.parse_args(argv)
    settings = harness.settings_from(args, _full_defaults(), _quick_defaults())
    if settings.cameras < 1 or settings.seconds <= 0 or settings.repeat < 1:
        parser.error("--cameras, --seconds and --repeat must be positive")
    if settings.ffmpeg_cameras is not None and settings.ffmpeg_cameras < 1:
        parser.error("--ffmpeg-cameras must be positive")
    return settings


def _full_defaults() -> Settings:
    # 10 s clips: five GOPs, so the start offsets give five different starting pictures.
    return Settings(
        cameras=200,
        seconds=20.0,
        shared_simulator=True,
        ffmpeg_cameras=None,
        repeat=3,
        opencv_cameras=8,
        quick=False,
        clip=ClipSpec(profile="high", bitrate_kbps=2000, gop_s=2.0, seconds=10.0),
        fullhd_clip=ClipSpec(width=1920, height=1080, bitrate_kbps=4000, gop_s=2.0, seconds=10.0),
        settle_s=5.0,
        gap_s=3.0,
        snapshot_cameras=10,
        snapshot_rounds=5,
        snapshot_gap_s=0.1,
        fullhd_warm=20,
        fullhd_keyframe=10,
        fullhd_cold=3,
        wait_quiet_s=180.0,
        cache_dir=harness.CLIP_CACHE,
        json_path=None,
    )


def _quick_defaults() -> Settings:
    # 4 s clips encode in about 3 s on a cold cache; no 1080p cold shots (17 s wait each).
    full = _full_defaults()
    return replace(
        full,
        cameras=8,
        seconds=5.0,
        repeat=1,
        opencv_cameras=2,
        quick=True,
        clip=replace(full.clip, seconds=4.0),
        fullhd_clip=replace(full.fullhd_clip, seconds=4.0),
        settle_s=2.0,
        gap_s=1.0,
        snapshot_cameras=4,
        snapshot_rounds=3,
        fullhd_warm=10,
        fullhd_keyframe=5,
        fullhd_cold=0,
        wait_quiet_s=0.0,
    )


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Run:
    """What every phase needs: settings, the simulator fleet, the children, a scratch dir."""

    settings: Settings
    simulator: SimulatorFleet
    children: Children
    tmp: Path

    @property
    def simulator_pids(self) -> list[int]:
        """Every simulator process, all of which must be running (their CPU is summed)."""
        pids = self.simulator.pids
        if len(pids) < len(self.simulator.servers):
            gone = len(self.simulator.servers) - len(pids)
            tails = [s.stderr_tail() for s in self.simulator.servers if not s.running]
            raise RuntimeError(
                f"{gone} of the simulator's processes are not running; stderr: {tails}"
            )
        return pids

    def camera_ids(self) -> list[str]:
        return camera_ids(self.settings.cameras)

    def ffmpeg_ids(self) -> list[str]:
        """The cameras of the ffmpeg baseline: all, or the first ``--ffmpeg-cameras``."""
        ids = self.camera_ids()
        return ids[: self.settings.ffmpeg_cameras] if self.settings.ffmpeg_cameras else ids

    def windows(
        self,
        groups: dict[str, list[int]],
        receivers: tuple[list[int], int],
        on_window: Callable[[], None] | None = None,
    ) -> tuple[list[CpuWindow], Reception]:
        """``repeat`` CPU windows back to back; ``on_window`` runs after each (outside it).

        ``receivers`` is (pids, how many streams they receive together). Also returns what
        they received from the simulator meanwhile: the check that every phase really got
        the same streams at the same rate (a stream stuck in the simulator costs nothing).
        """
        pids, streams = receivers
        ports = self.simulator.ports
        before = received_by(ports, pids)
        found = []
        for _ in range(self.settings.repeat):
            found.append(measure_cpu(groups, self.settings.seconds))
            if on_window is not None:
                on_window()
        after = received_by(ports, pids)
        wall = sum(w.wall_s for w in found)
        return found, reception(before, after, wall, streams, self.settings.clip.bitrate_kbps)


def mounts(settings: Settings) -> list[MountSpec]:
    """N 720p mounts on one clip, each starting at a different GOP of it, plus ``fullhd``."""
    found = [
        replace(mount, shared=settings.shared_simulator)
        for mount in staggered_mounts(camera_ids(settings.cameras), settings.clip)
    ]
    found.append(MountSpec(FULLHD, settings.fullhd_clip))
    return found


def mounts_per_process(settings: Settings) -> int:
    """Shared mounts share only within a process, so they all go in one."""
    return settings.cameras + 1 if settings.shared_simulator else MOUNTS_PER_PROCESS


def service_zero_phase(run: Run) -> dict[str, Any]:
    """RSS of the service with no cameras at all: interpreter, libraries, the web app."""
    config = run.tmp / "service-zero.yaml"
    port = free_port()
    write_config(config, [], run.tmp / "data-zero", port)
    service = ServiceProcess(run.children, config, port, run.tmp / "service-zero.log")
    try:
        service.wait_ready(harness.SERVICE_READY_TIMEOUT_S)
        time.sleep(run.settings.settle_s)
        # Its idle CPU too: the fixed cost (event loop, monitor) that per-stream figures at
        # small N carry.
        idle = measure_cpu({"service": [service.pid]}, run.settings.settle_s)
        return {
            "service_rss_mb_zero": rounded(rss_mb(service.pid)),
            "service_cpu_pct_zero": rounded(idle.groups["service"]),
        }
    finally:
        service.stop()


def service_phase(run: Run) -> dict[str, Any]:
    s = run.settings
    ids = run.camera_ids()
    cameras = [CameraEntry(i, run.simulator.url(i)) for i in ids]
    cameras.append(CameraEntry(FULLHD, run.simulator.url(FULLHD), on_demand=True))
    config = run.tmp / "service.yaml"
    port = free_port()
    write_config(config, cameras, run.tmp / "data", port)
    service = ServiceProcess(run.children, config, port, run.tmp / "service.log")
    try:
        ready_s = service.wait_ready(harness.SERVICE_READY_TIMEOUT_S)
        online_start, online_wait_s = service.wait_online(s.cameras, s.online_timeout_s)
        time.sleep(s.settle_s)
        rss: list[float] = []
        windows, got = run.windows(
            {"service": [service.pid], "simulator": run.simulator_pids},
            ([service.pid], s.cameras),
            on_window=lambda: rss.append(rss_mb(service.pid) or 0.0),
        )
        result = _service_steady_state(service, windows, rss)
        result.update(_reception(got))
        result.update(
            service_ready_s=rounded(ready_s),
            online_at_start=online_start,
            online_wait_s=rounded(online_wait_s),
        )
        result.update(_snapshot_phase(run, service, ids))
        result["service_log_tail"] = (
            service.log_tail()[-600:] if result["online"] < s.cameras else ""
        )
        return result
    finally:
        service.stop()


def _service_steady_state(
    service: ServiceProcess, windows: list[CpuWindow], rss: list[float]
) -> dict[str, Any]:
    """CPU and RSS medians, and the stream figures the service reports about itself."""
    listing = service.cameras()
    ring = ring_figures(listing, exclude=[FULLHD])
    live = [c for c in listing if c["state"] == "online" and c["id"] != FULLHD]
    fps = [float(c["health"]["fps"]) for c in live if c["health"]["fps"] is not None]
    kbps = [float(c["health"]["bitrate_kbps"]) for c in live if c["health"]["bitrate_kbps"]]
    by_state: dict[str, int] = {}
    for camera in listing:
        if camera["id"] != FULLHD:
            by_state[camera["state"]] = by_state.get(camera["state"], 0) + 1
    return {
        "online": ring.online,
        "by_state": by_state,
        "service_cpu_pct_total": median([w.groups["service"] for w in windows]),
        "service_rss_mb": median(rss),
        "ring_mb_per_stream": ring.ring_mb,
        "ring_seconds_mean": rounded(ring.ring_seconds),
        "stream_fps_mean": rounded(sum(fps) / len(fps)) if fps else None,
        "stream_kbps_mean": rounded(sum(kbps) / len(kbps), 1) if kbps else None,
        "windows": windows,
    }


def _snapshot_phase(run: Run, service: ServiceProcess, ids: list[str]) -> dict[str, Any]:
    """1080p first (connect, warm, keyframe), then 720p rounds, then 1080p cold shots."""
    s = run.settings
    cpu_before, started = cpu_seconds(service.pid) or 0.0, time.monotonic()
    fullhd, live = SnapshotTaker(service.http), SnapshotTaker(service.http)
    first = fullhd.take(FULLHD, first=True)
    for _ in range(s.fullhd_warm):
        fullhd.take(FULLHD)
        time.sleep(s.snapshot_gap_s)
    for _ in range(s.fullhd_keyframe):
        fullhd.take(FULLHD, keyframe=True)
        time.sleep(s.snapshot_gap_s)
    take_rounds(live, sample(ids, s.snapshot_cameras), s.snapshot_rounds, s.snapshot_gap_s)
    for _ in range(s.fullhd_cold):
        fullhd.wait_until_cold(FULLHD)
        fullhd.take(FULLHD)
    cpu_after, wall = cpu_seconds(service.pid) or 0.0, time.monotonic() - started
    return {
        **summarize(live.shots, "snapshot"),
        **summarize(fullhd.shots, "snapshot_1080p"),
        "snapshot_1080p_first_ms": round(first.ms, 1) if first.status == 200 else None,
        "service_cpu_pct_during_snapshots": rounded(100 * (cpu_after - cpu_before) / wall),
        "service_rss_mb_after_snapshots": rounded(rss_mb(service.pid)),
    }


def _reception(got: Reception) -> dict[str, Any]:
    return {"received_kbps_per_stream": rounded(got.kbps_per_stream, 1), "flowing": got.flowing}


def ffmpeg_phase(run: Run) -> dict[str, Any]:
    s = run.settings
    urls = [run.simulator.url(i) for i in run.ffmpeg_ids()]
    procs = start_ffmpeg(run.children, urls, run.tmp / "ffmpeg.log")
    try:
        pids = [p.pid for p in procs]
        receiving, waited = wait_receiving(run.simulator.ports, pids, s.online_timeout_s)
        time.sleep(s.settle_s)
        windows, got = run.windows(
            {"ffmpeg": pids, "simulator": run.simulator_pids}, (pids, len(pids))
        )
        rss = [v for v in (rss_mb(p) for p in pids) if v is not None]
        pss = [v for v in (pss_mb(p) for p in pids) if v is not None]
        return {
            "ffmpeg_cameras": len(pids),
            "ffmpeg_receiving": receiving,
            "ffmpeg_wait_s": rounded(waited),
            "ffmpeg_exited": sum(p.poll() is not None for p in procs),
            "ffmpeg_copy_cpu_pct_total": median([w.groups["ffmpeg"] for w in windows]),
            "ffmpeg_rss_mb_per_stream": sum(rss) / len(rss) if rss else None,
            "ffmpeg_pss_mb_per_stream": sum(pss) / len(pss) if pss else None,
            **_reception(got),
            "windows": windows,
        }
    finally:
        run.children.stop(procs)


def opencv_phase(run: Run) -> dict[str, Any]:
    s = run.settings
    ids = run.camera_ids()[: min(s.cameras, s.opencv_cameras)]
    reader = OpenCvReader(run.children, [run.simulator.url(i) for i in ids], run.tmp / "opencv.log")
    try:
        opened = reader.wait_opened()
        time.sleep(s.settle_s)
        fps_windows: list[list[float]] = []
        mark = reader.frame_counts()

        def count() -> None:
            nonlocal mark
            now = reader.frame_counts()
            elapsed = now[0] - mark[0]
            fps_windows.append([(b - a) / elapsed for a, b in zip(mark[1], now[1], strict=True)])
            mark = now

        windows, got = run.windows(
            {"opencv": [reader.pid], "simulator": run.simulator_pids},
            ([reader.pid], len(ids)),
            count,
        )
        # Per camera, the median over the windows.
        fps = [median([w[i] for w in fps_windows]) or 0.0 for i in range(len(ids))]
        return {
            "opencv_cameras": len(ids),
            "opencv_opened": opened["opened"],
            "opencv_cpu_pct_total": median([w.groups["opencv"] for w in windows]),
            "opencv_fps_per_camera": rounded(median(fps)),
            "opencv_fps_min": rounded(min(fps)),
            "opencv_rss_mb": rounded(rss_mb(reader.pid)),
            **_reception(got),
            "windows": windows,
        }
    finally:
        run.children.stop([reader.proc])


# -- putting it together ----------------------------------------------------------------------


def run_phases(settings: Settings) -> dict[str, Any]:
    """Every phase in turn, on one simulator fleet; every child process is gone on return."""
    phases: dict[str, Any] = {}
    started = time.monotonic()
    for spec in (settings.clip, settings.fullhd_clip):
        ensure_clip(spec, settings.cache_dir)
    phases["clip_generation_s"] = rounded(time.monotonic() - started)
    with (
        Children() as children,
        tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp,
        SimulatorFleet(
            mounts(settings),
            clip_dir=settings.cache_dir,
            mounts_per_process=mounts_per_process(settings),
        ) as simulator,
    ):
        phases["simulator_processes"] = len(simulator.servers)
        phases["simulator_shared"] = settings.shared_simulator
        run = Run(settings, simulator, children, Path(tmp))
        steps: list[tuple[str, Callable[[Run], dict[str, Any]]]] = [
            ("zero", service_zero_phase),
            ("service", service_phase),
            ("ffmpeg", ffmpeg_phase),
            ("opencv", opencv_phase),
        ]
        for name, step in steps:
            quiet = harness.wait_quiet(BENCHMARK, settings.wait_quiet_s)
            _progress(f"phase {name} ...")
            phases[name] = step(run)
            phases[name]["quiet_before"] = quiet
            time.sleep(settings.gap_s)
    phases["total_s"] = rounded(time.monotonic() - started)
    return phases


def _progress(message: str) -> None:
    harness.progress(BENCHMARK, message)


def summarize_run(settings: Settings, phases: dict[str, Any]) -> dict[str, Any]:
    """The flat figures the budget is about (the phases themselves follow in the report)."""
    n = settings.cameras
    svc, ff, cv = phases["service"], phases["ffmpeg"], phases["opencv"]
    service_per = ratio(svc["service_cpu_pct_total"], n)
    ffmpeg_per = ratio(ff["ffmpeg_copy_cpu_pct_total"], ff["ffmpeg_cameras"])
    simulator_cpu = median([w.groups["simulator"] for w in svc["windows"]])
    opencv_per = ratio(cv["opencv_cpu_pct_total"], cv["opencv_cameras"])
    zero_rss = phases["zero"]["service_rss_mb_zero"]
    rss_per = ratio(svc["service_rss_mb"] - zero_rss, n) if zero_rss is not None else None
    figures: dict[str, Any] = {
        "cameras": n,
        "online": svc["online"],
        "service_cpu_pct_total": rounded(svc["service_cpu_pct_total"]),
        "service_cpu_pct_per_stream": rounded(service_per, 3),
        "ffmpeg_cameras": ff["ffmpeg_cameras"],
        "ffmpeg_copy_cpu_pct_total": rounded(ff["ffmpeg_copy_cpu_pct_total"]),
        "ffmpeg_copy_cpu_pct_per_stream": rounded(ffmpeg_per, 3),
        # The test rig, apart from everything measured: during the service's windows.
        "simulator_shared": phases["simulator_shared"],
        "simulator_processes": phases["simulator_processes"],
        "simulator_cpu_pct_total": rounded(simulator_cpu),
        "simulator_cpu_pct_per_camera": rounded(ratio(simulator_cpu, n), 3),
        "opencv_cameras": cv["opencv_cameras"],
        "opencv_cpu_pct_per_stream": rounded(opencv_per, 2),
        "opencv_fps_per_camera": cv["opencv_fps_per_camera"],
        "opencv_fps_min": cv["opencv_fps_min"],
        "opencv_keeps_up": cv["opencv_fps_min"] is not None
        and cv["opencv_fps_min"] >= 0.95 * settings.clip.fps,
        "ratio_service_vs_ffmpeg": rounded(ratio(service_per, ffmpeg_per)),
        "ratio_opencv_vs_ffmpeg": rounded(ratio(opencv_per, ffmpeg_per), 1),
        "service_rss_mb": rounded(svc["service_rss_mb"]),
        "service_rss_mb_zero": zero_rss,
        "service_cpu_pct_zero": phases["zero"]["service_cpu_pct_zero"],
        "service_rss_mb_per_stream": rounded(rss_per, 3),
        "ring_mb_per_stream": rounded(svc["ring_mb_per_stream"], 3),
        "ffmpeg_rss_mb_per_stream": rounded(ff["ffmpeg_rss_mb_per_stream"]),
        "ffmpeg_pss_mb_per_stream": rounded(ff["ffmpeg_pss_mb_per_stream"]),
        "opencv_rss_mb_per_stream": rounded(ratio(cv["opencv_rss_mb"], cv["opencv_cameras"])),
    }
    for key, value in svc.items():
        if key.startswith("snapshot"):
            figures[key] = value
    figures["flowing_streams"] = {"service": svc["flowing"], "ffmpeg": ff["flowing"],
                                  "opencv": cv["flowing"]}  # fmt: skip
    figures["ratio_service_vs_ffmpeg_per_mbit"] = rounded(
        ratio(
            ratio(svc["service_cpu_pct_total"], svc["received_kbps_per_stream"]),
            ratio(ff["ffmpeg_copy_cpu_pct_total"], ff["received_kbps_per_stream"]),
        )
    )
    figures["cpu_pct_by_phase"] = {
        "service": harness.window_medians(svc["windows"], 1),
        "ffmpeg": harness.window_medians(ff["windows"], 1),
        "opencv": harness.window_medians(cv["windows"], 1),
    }
    figures["targets"] = build_targets(figures, os.cpu_count() or 1)
    figures["warnings"] = warnings(settings, figures, phases)
    return figures


def warnings(settings: Settings, f: dict[str, Any], phases: dict[str, Any]) -> list[str]:
    """Reasons not to trust this run's figures at face value."""
    found = []
    expected = {"service": settings.cameras, "ffmpeg": f["ffmpeg_cameras"],
                "opencv": f["opencv_cameras"]}  # fmt: skip
    for phase, count in f["flowing_streams"].items():
        if count < expected[phase]:
            found.append(
                f"{phase}: only {count} of {expected[phase]} connections received at least "
                "half the nominal rate during the CPU windows (see ratio_..._per_mbit)"
            )
    found.extend(harness.background_warnings(f["cpu_pct_by_phase"]))
    fps = phases["service"]["stream_fps_mean"]
    if fps is not None and fps < 0.95 * settings.clip.fps:
        found.append(f"service: streams arrive at {fps} fps, not {settings.clip.fps}")
    return found


def _versions() -> dict[str, Any]:
    import av
    import cv2

    return {
        "pyav": av.__version__,
        "pyav_ffmpeg": getattr(av, "ffmpeg_version_info", None),
        "ffmpeg_cli": harness.command_version(["ffmpeg", "-version"]),
        "opencv": cv2.__version__,
    }


def _settings_info(settings: Settings) -> dict[str, Any]:
    info = harness.settings_info(settings)
    info["cpu_scope"] = (
        f"CPU windows run before any snapshot; the {FULLHD!r} 1080p camera is on-demand and "
        "not connected until the snapshot phase, so it is in no CPU figure"
    )
    return info


def _print_table(report: dict[str, Any]) -> None:
    print_table(report)
    kind = "shared mounts" if report["simulator_shared"] else "a pipeline per client"
    print(
        f"  simulator ({kind}, {report['simulator_processes']} processes): "
        f"{report['simulator_cpu_pct_total']}% of one core during the service's windows, "
        f"{report['simulator_cpu_pct_per_camera']}% per camera; ffmpeg baseline on "
        f"{report['ffmpeg_cameras']} of {report['cameras']} cameras\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return harness.run_benchmark(
        BENCHMARK,
        argv,
        parse_settings(argv),
        versions=_versions,
        run_phases=run_phases,
        summarize=summarize_run,
        print_table=_print_table,
        describe=_settings_info,
    )


if __name__ == "__main__":
    sys.exit(main())
