"""Recording benchmark: what recording costs the service, against ``ffmpeg -f segment``.

Usage::

    python -m bench.recording --quick --json /tmp/bench-recording.json   # a smoke run
    python -m bench.recording --cameras 50 --seconds 20 --json /tmp/bench-recording.json

Method
------
The simulator serves N 720p25 H.264 streams at 2 Mbit/s (as ``bench.ingest``: one clip,
each mount at another GOP of it, shared mounts in one process). On that one fleet, one
phase at a time:

1. **plain** -- ``surveillance serve`` with the N cameras, recording off: its CPU over
   ``--repeat`` windows of ``--seconds``.
2. **recording** -- the same service, the same cameras, every one recorded (continuous,
   main stream) into a scratch directory: its CPU over the same windows.
   ``recorder_cpu_pct_per_stream`` = recording - plain, each phase's median CPU divided
   by the streams that flowed in it (all N unless the machine was starved: warned).
   Over the windows, the bytes the recordings grew by are compared with the bytes the
   service's connections received from the simulator (``disk_bytes_per_received_byte``;
   received bytes include the RTP and RTSP framing, so below 1 is expected). Then the
   service is killed with SIGKILL while recording and the index is reconciled as the next
   start does (services/recording_reconcile.py): ``crash_loss_s`` is, per camera, the
   time from the kill back to the end of the footage kept (median and max).
3. **ffmpeg segment** -- one ``ffmpeg -rtsp_transport tcp -i URL -c copy -f segment
   -segment_time S`` per stream, writing files: the same job done by the usual tool. Its
   CPU per stream is the whole process (receiving, demuxing, writing), so the recorder's
   increment is held against a figure that includes receiving as well: the issue's
   target, recorder <= 1.0x ffmpeg segment copy.
4. **ffmpeg null** -- ``ffmpeg ... -c copy -f null -`` per stream: receiving alone, so
   ``ffmpeg_segment_increment_cpu_pct_per_stream`` (segment - null) shows what writing
   costs ffmpeg, the like-for-like figure beside the recorder's increment.

The other engineers' figures come from their modules when they are present, each run as
``python -m bench.<module> [--quick] --json FILE`` and read back: ``bench.recording_media``
(``export_x_realtime``; its file bytes per packet byte and its writer's crash loss are
reported beside this run's), ``bench.recording_index`` (``list_p95_ms``) and
``bench.recording_browser`` (``seek_first_frame_p95_ms``). A module that is missing or
fails is named in ``warnings``.

CPU is in percent of ONE core, as in every benchmark here.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import yaml

from bench import harness
from bench.baselines import received_by, reception, start_ffmpeg, wait_receiving
from bench.cameras import camera_ids, staggered_mounts
from bench.procs import Children, python_env
from bench.procstat import measure_cpu
from bench.service import CameraEntry, ServiceProcess, free_port, write_config
from bench.stats import median, ratio, rounded
from surveillance.config.models import AppConfig
from surveillance.db import create_db_engine, database_url
from surveillance.recordings.store import RecordingStore
from surveillance.services.recording_reconcile import reconcile
from surveillance.simulator import ClipSpec, SimulatorFleet, ensure_clip

BENCHMARK = "bench.recording"
MIN_FREE_BYTES = 200_000_000  # the scratch disk may be small; the default asks for 1 GB
# Per module: figure here -> the names it may have in that module's report (a name whose
# value is a dict gives its "value", or its "p95_ms").
OTHER_MODULES: dict[str, dict[str, tuple[str, ...]]] = {
    "bench.recording_media": {
        "export_x_realtime": ("export_x_realtime",),
        "media_disk_bytes_per_packet_byte": ("disk_bytes_per_received_byte",),
        "writer_crash_loss_s_max": ("crash_loss_s_max",),
    },
    "bench.recording_index": {
        "list_p95_ms": (
            "list_p95_ms",
            "timeline: spans + gaps p95 ms",
            "timeline_query_p95_ms",
            "segments + gaps p95 ms",
        )
    },
    "bench.recording_browser": {
        "seek_first_frame_p95_ms": ("seek_first_frame_p95_ms", "seek_first_frame")
    },
}
OTHER_MODULE_TIMEOUT_S = 900.0
TARGETS = {  # the issue's: (figure, rule, limit)
    "recorder_vs_ffmpeg_segment": ("ratio_recorder_vs_ffmpeg_segment", "<= 1.0x", 1.0),
    "disk_bytes": ("disk_bytes_per_received_byte", "<= 1.02", 1.02),
    "list_p95_ms": ("list_p95_ms", "<= 100 ms", 100.0),
    "export_x_realtime": ("export_x_realtime", ">= 200x", 200.0),
    "seek_first_frame_p95_ms": ("seek_first_frame_p95_ms", "<= 1000 ms", 1000.0),
    "crash_loss_s": ("crash_loss_s", "<= 2 s", 2.0),
}
AT_LEAST = {"export_x_realtime"}


@dataclass(frozen=True)
class Settings:
    cameras: int
    seconds: float
    repeat: int
    segment_s: float
    quick: bool
    clip: ClipSpec
    settle_s: float
    gap_s: float
    wait_quiet_s: float
    cache_dir: Path
    json_path: Path | None

    @property
    def online_timeout_s(self) -> float:
        # Generous: a phase whose cameras are not all flowing measures something else.
        return 30.0 + 0.5 * self.cameras


def parse_settings(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        prog=f"python -m {BENCHMARK}", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--cameras", type=int, help="streams (default 50; 4 with --quick)")
    parser.add_argument("--seconds", type=float, help="CPU window (default 20; 6 with --quick)")
    parser.add_argument("--repeat", type=int, help="windows per phase (default 3; 2 quick)")
    parser.add_argument("--segment-s", type=float, help="segment length (default 60)")
    harness.add_run_options(
        parser,
        quick="a smoke run of a few minutes",
        wait_quiet="before each phase, wait up to this many seconds for an idle machine "
        "(default 180; 0 with --quick)",
    )
    args = parser.parse_args(argv)
    settings = harness.settings_from(args, _full_defaults(), _quick_defaults())
    if settings.cameras < 1 or settings.seconds <= 0 or settings.repeat < 1:
        parser.error("--cameras, --seconds and --repeat must be positive")
    return settings


def _full_defaults() -> Settings:
    return Settings(
        cameras=50,
        seconds=20.0,
        repeat=3,
        segment_s=60.0,
        quick=False,
        clip=ClipSpec(profile="high", bitrate_kbps=2000, gop_s=2.0, seconds=10.0),
        settle_s=5.0,
        gap_s=3.0,
        wait_quiet_s=180.0,
        cache_dir=harness.CLIP_CACHE,
        json_path=None,
    )


def _quick_defaults() -> Settings:
    full = _full_defaults()
    return replace(
        full,
        cameras=4,
        seconds=6.0,
        repeat=2,
        quick=True,
        clip=replace(full.clip, seconds=4.0),
        settle_s=3.0,
        gap_s=1.0,
        wait_quiet_s=0.0,
    )


@dataclass
class Run:
    settings: Settings
    simulator: SimulatorFleet
    children: Children
    tmp: Path

    def urls(self) -> list[str]:
        return [self.simulator.url(i) for i in camera_ids(self.settings.cameras)]

    def cpu(self, pids: list[int]) -> tuple[list[float], dict[str, Any]]:
        """The ``repeat`` windows' CPU of ``pids`` (summed), and what they received."""
        s = self.settings
        ports = self.simulator.ports
        before = received_by(ports, pids)
        windows = [
            measure_cpu({"measured": pids, "simulator": self.simulator.pids}, s.seconds)
            for _ in range(s.repeat)
        ]
        after = received_by(ports, pids)
        got = reception(
            before, after, sum(w.wall_s for w in windows), s.cameras, s.clip.bitrate_kbps
        )
        received = sum(after[k] - before.get(k, 0) for k in after)
        return [w.groups["measured"] for w in windows], {
            "received_bytes": received,
            "received_kbps_per_stream": rounded(got.kbps_per_stream, 1),
            "flowing": got.flowing,
            "cpu_pct_by_window": {
                "measured": [rounded(w.groups["measured"]) for w in windows],
                "simulator": [rounded(w.groups["simulator"]) for w in windows],
                "background": [rounded(w.background_pct) for w in windows],
            },
        }


def _service_config(run: Run, name: str, recording: bool) -> tuple[Path, int, AppConfig]:
    s = run.settings
    path = run.tmp / f"{name}.yaml"
    port = free_port()
    cameras = [CameraEntry(i, run.simulator.url(i)) for i in camera_ids(s.cameras)]
    write_config(path, cameras, run.tmp / f"data-{name}", port)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["recording"] = {
        "dir": str(run.tmp / f"recordings-{name}"),
        "segment_s": s.segment_s,
        "min_free_bytes": MIN_FREE_BYTES,
        "default": {"mode": "continuous" if recording else "off"},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path, port, AppConfig.model_validate(data)


def _tree_bytes(root: Path) -> int:
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            try:
                total += os.stat(os.path.join(directory, name)).st_size
            except FileNotFoundError:
                continue
    return total


def service_phase(run: Run, *, recording: bool) -> dict[str, Any]:
    s = run.settings
    name = "recording" if recording else "plain"
    config_path, port, config = _service_config(run, name, recording)
    service = ServiceProcess(run.children, config_path, port, run.tmp / f"{name}.log")
    try:
        service.wait_ready(harness.SERVICE_READY_TIMEOUT_S)
        online, _ = service.wait_online(s.cameras, s.online_timeout_s)
        time.sleep(s.settle_s)
        root = config.recording_root()
        bytes_before = _tree_bytes(root)
        cpu, got = run.cpu([service.pid])
        result: dict[str, Any] = {
            "online": online,
            "cpu_pct_total": median(cpu),
            **got,
        }
        if recording:
            grown = _tree_bytes(root) - bytes_before
            result["disk_bytes_per_received_byte"] = rounded(ratio(grown, got["received_bytes"]), 4)
            result.update(_crash_loss(service, config))
        return result
    finally:
        service.stop()


def _crash_loss(service: ServiceProcess, config: AppConfig) -> dict[str, Any]:
    """SIGKILL the recording service, reconcile as its next start does: footage lost."""
    killed_at = time.time()
    os.killpg(service.pid, signal.SIGKILL)
    service.proc.wait(10)
    engine = create_db_engine(database_url(config))
    try:
        store = RecordingStore(engine)
        reconcile(store, config.recording_root())
        losses = []
        for camera_id in camera_ids(len(config.cameras)):
            ends = [
                s.end_at
                for s in store.segments(camera_id, None, killed_at - 3600, killed_at + 60)
                if s.end_at is not None
            ]
            if ends:
                losses.append(max(0.0, killed_at - max(ends)))
    finally:
        engine.dispose()
    return {
        "crash_loss_s": rounded(median(losses), 2),
        "crash_loss_s_max": rounded(max(losses), 2) if losses else None,
        "crash_cameras_with_footage": len(losses),
    }


def ffmpeg_segment_phase(run: Run) -> dict[str, Any]:
    s = run.settings
    out = run.tmp / "ffmpeg-segments"
    out.mkdir()
    procs = []
    for index, url in enumerate(run.urls()):
        command = [
            "ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", url,
            "-c", "copy", "-f", "segment", "-segment_time", f"{s.segment_s:g}",
            "-reset_timestamps", "1", str(out / f"cam{index:04d}-%05d.mp4"),
        ]  # fmt: skip
        procs.append(run.children.spawn(command, log=run.tmp / "ffmpeg-segment.log"))
    return _ffmpeg_windows(run, procs, out)


def ffmpeg_null_phase(run: Run) -> dict[str, Any]:
    procs = start_ffmpeg(run.children, run.urls(), run.tmp / "ffmpeg-null.log")
    return _ffmpeg_windows(run, procs, None)


def _ffmpeg_windows(
    run: Run, procs: list[subprocess.Popen[Any]], out: Path | None
) -> dict[str, Any]:
    s = run.settings
    try:
        pids = [p.pid for p in procs]
        receiving, _ = wait_receiving(run.simulator.ports, pids, s.online_timeout_s)
        time.sleep(s.settle_s)
        before = _tree_bytes(out) if out is not None else 0
        cpu, got = run.cpu(pids)
        result: dict[str, Any] = {"receiving": receiving, "cpu_pct_total": median(cpu), **got}
        if out is not None:
            grown = _tree_bytes(out) - before
            result["disk_bytes_per_received_byte"] = rounded(ratio(grown, got["received_bytes"]), 4)
        result["exited"] = sum(p.poll() is not None for p in procs)
        return result
    finally:
        run.children.stop(procs)


def other_module(module: str, settings: Settings, tmp: Path) -> dict[str, Any]:
    """``python -m module [--quick] --json FILE``'s report, or why there is none."""
    if find_spec(module) is None:
        return {"error": f"{module} is not present"}
    out = tmp / f"{module}.json"
    command = [sys.executable, "-m", module, "--json", str(out)]
    if settings.quick and "--quick" in _help(module):
        command.append("--quick")
    try:
        done = subprocess.run(
            command, env=python_env(), capture_output=True, text=True,
            timeout=OTHER_MODULE_TIMEOUT_S, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"error": f"{module} did not finish within {OTHER_MODULE_TIMEOUT_S:g} s"}
    if done.returncode != 0 or not out.exists():
        return {"error": f"{module} exited {done.returncode}: {done.stderr[-400:]}"}
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return report


def _help(module: str) -> str:
    """``module``'s --help text (whether it takes --quick)."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], env=python_env(), capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    return done.stdout


def _find(report: Any, key: str) -> Any:
    """``key``'s value at the top of ``report`` or, failing that, anywhere in it."""
    if isinstance(report, dict):
        if key in report:
            return report[key]
        for value in report.values():
            found = _find(value, key)
            if found is not None:
                return found
    return None


def _figure(report: Any, names: tuple[str, ...]) -> Any:
    for name in names:
        value = _find(report, name)
        if isinstance(value, dict):  # a target ("value") or a distribution ("p95_ms")
            value = value.get("value", value.get("p95_ms"))
        if value is not None:
            return value
    return None


def run_phases(settings: Settings) -> dict[str, Any]:
    phases: dict[str, Any] = {}
    ensure_clip(settings.clip, settings.cache_dir)
    started = time.monotonic()
    mounts = [
        replace(m, shared=True)
        for m in staggered_mounts(camera_ids(settings.cameras), settings.clip)
    ]
    with (
        Children() as children,
        tempfile.TemporaryDirectory(prefix="bench-recording-") as tmp,
        SimulatorFleet(
            mounts, clip_dir=settings.cache_dir, mounts_per_process=settings.cameras
        ) as simulator,
    ):
        run = Run(settings, simulator, children, Path(tmp))
        steps: list[tuple[str, Callable[[Run], dict[str, Any]]]] = [
            ("plain", lambda r: service_phase(r, recording=False)),
            ("recording", lambda r: service_phase(r, recording=True)),
            ("ffmpeg_segment", ffmpeg_segment_phase),
            ("ffmpeg_null", ffmpeg_null_phase),
        ]
        for name, step in steps:
            quiet = harness.wait_quiet(BENCHMARK, settings.wait_quiet_s)
            harness.progress(BENCHMARK, f"phase {name} ...")
            phases[name] = step(run)
            phases[name]["quiet_before"] = quiet
            time.sleep(settings.gap_s)
        for module in OTHER_MODULES:
            harness.progress(BENCHMARK, f"running {module} ...")
            phases[module] = other_module(module, settings, Path(tmp))
    phases["total_s"] = rounded(time.monotonic() - started)
    return phases


def summarize(settings: Settings, phases: dict[str, Any]) -> dict[str, Any]:
    n = settings.cameras
    plain, rec = phases["plain"], phases["recording"]
    seg, null = phases["ffmpeg_segment"], phases["ffmpeg_null"]
    # Per stream that flowed during the windows: a phase in which some did not (a loaded
    # machine) is still compared like for like, and warned about below.
    plain_per = ratio(plain["cpu_pct_total"], plain["flowing"])
    rec_per = ratio(rec["cpu_pct_total"], rec["flowing"])
    recorder = None if plain_per is None or rec_per is None else rec_per - plain_per
    segment = ratio(seg["cpu_pct_total"], seg["flowing"])
    null_per = ratio(null["cpu_pct_total"], null["flowing"])
    figures: dict[str, Any] = {
        "cameras": n,
        "recorder_cpu_pct_per_stream": rounded(recorder, 3),
        "ffmpeg_segment_cpu_pct_per_stream": rounded(segment, 3),
        "ratio_recorder_vs_ffmpeg_segment": rounded(ratio(recorder, segment)),
        "service_cpu_pct_per_stream_plain": rounded(plain_per, 3),
        "service_cpu_pct_per_stream_recording": rounded(rec_per, 3),
        "ffmpeg_null_cpu_pct_per_stream": rounded(null_per, 3),
        "ffmpeg_segment_increment_cpu_pct_per_stream": rounded(
            None if segment is None or null_per is None else segment - null_per, 3
        ),
        "recorder_disk_bytes_per_received_byte": rec["disk_bytes_per_received_byte"],
        "ffmpeg_segment_disk_bytes_per_received_byte": seg["disk_bytes_per_received_byte"],
        "disk_bytes_per_received_byte": rec["disk_bytes_per_received_byte"],
        "crash_loss_s": rec["crash_loss_s"],
        "crash_loss_s_max": rec["crash_loss_s_max"],
        "flowing_streams": {k: phases[k]["flowing"] for k in
                            ("plain", "recording", "ffmpeg_segment", "ffmpeg_null")},
    }  # fmt: skip
    warnings = []
    for module, keys in OTHER_MODULES.items():
        report = phases[module]
        if "error" in report:
            warnings.append(report["error"])
            continue
        for figure, names in keys.items():
            value = _figure(report, names)
            if value is not None:
                figures[figure] = value
            else:
                warnings.append(f"{module} reported no {' or '.join(names)}")
    for phase, count in figures["flowing_streams"].items():
        if count < n:
            warnings.append(f"{phase}: only {count} of {n} connections flowed at half rate")
    figures["targets"] = {
        name: {
            "rule": f"{key} {rule}",
            "value": figures.get(key),
            "pass": None
            if figures.get(key) is None
            else (figures[key] >= limit if name in AT_LEAST else figures[key] <= limit),
        }
        for name, (key, rule, limit) in TARGETS.items()
    }
    figures["warnings"] = warnings
    return figures


def print_table(report: dict[str, Any]) -> None:
    print(f"\nRecording, {report['cameras']} cameras (CPU in % of one core per stream)")
    rows = [
        ("recorder (service with recording - without)", "recorder_cpu_pct_per_stream"),
        ("baseline: ffmpeg -c copy -f segment", "ffmpeg_segment_cpu_pct_per_stream"),
        ("  ratio recorder / ffmpeg segment", "ratio_recorder_vs_ffmpeg_segment"),
        ("service without recording", "service_cpu_pct_per_stream_plain"),
        ("service with recording", "service_cpu_pct_per_stream_recording"),
        ("ffmpeg -c copy -f null (receiving only)", "ffmpeg_null_cpu_pct_per_stream"),
        ("ffmpeg segment - null (its writing)", "ffmpeg_segment_increment_cpu_pct_per_stream"),
        ("disk bytes / received byte (recorder)", "recorder_disk_bytes_per_received_byte"),
        ("disk bytes / received byte (ffmpeg)", "ffmpeg_segment_disk_bytes_per_received_byte"),
        ("crash loss after kill -9, s (median)", "crash_loss_s"),
        ("crash loss after kill -9, s (max)", "crash_loss_s_max"),
        ("file bytes / packet byte (bench.recording_media)", "media_disk_bytes_per_packet_byte"),
        ("writer crash loss, s (bench.recording_media, max)", "writer_crash_loss_s_max"),
        ("recordings list p95, ms", "list_p95_ms"),
        ("export, x real time", "export_x_realtime"),
        ("browser seek to first frame p95, ms", "seek_first_frame_p95_ms"),
    ]
    for label, key in rows:
        print(f"  {label:<50} {report.get(key)}")
    for name, target in report["targets"].items():
        verdict = {True: "pass", False: "FAIL", None: "not measured"}[target["pass"]]
        print(f"  target {name:<28} {target['rule']:<50} {verdict}")
    for warning in report["warnings"]:
        print(f"  warning: {warning}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return harness.run_benchmark(
        BENCHMARK,
        argv,
        parse_settings(argv),
        versions=lambda: {"ffmpeg_cli": harness.command_version(["ffmpeg", "-version"])},
        run_phases=run_phases,
        summarize=summarize,
        print_table=print_table,
    )


if __name__ == "__main__":
    sys.exit(main())
