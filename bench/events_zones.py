"""Zone motion's CPU: the service with a zone armed on every camera minus the same service
with the zones disarmed, in the same run, per camera; beside it, ffmpeg decoding the same
streams (what decoding every picture at full size on one thread costs).

``python -m bench.events_zones --cameras N [--quick] --json PATH`` (bench.events runs it).

The service runs in this process (``create_app`` under Starlette's TestClient, as
bench/cases.py does) against its own simulator fleet serving the ``intruder`` scene
(640x360 H.264 at 25 fps, what a camera's sub-stream usually is): a still picture with
sensor noise and someone walking into the zone once a loop, so the detector, the alarms
and their snapshots all run. Windows alternate off, on, off, on ...; each phase's figure
is the median of its windows, so load from elsewhere on the machine hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient

from bench.procs import Children
from bench.procstat import cpu_seconds, measure_cpu
from bench.service import create_bench_credentials
from surveillance.api.app import create_app
from surveillance.config import load_config
from surveillance.events.records import EventFilter, EventType
from surveillance.simulator import ClipSpec, MountSpec, SimulatorFleet

CLIP_CACHE = Path.home() / ".cache" / "surveillance" / "clips"
INTRUDER = ClipSpec(
    codec="h264", profile="main", width=640, height=360, fps=25, bitrate_kbps=800,
    gop_s=2.0, seconds=20.0, scene="intruder", event_at_s=8.0,
)  # fmt: skip
ZONE = [[0.55, 0.45], [0.85, 0.45], [0.85, 0.85], [0.55, 0.85]]
TARGET_PCT_PER_CAMERA = 3.0
ONLINE_TIMEOUT_S = 60.0
SETTLE_S = 4.0  # after arming or disarming: the control loop (1 s) and the decoders start


@dataclass(frozen=True)
class Settings:
    cameras: int = 4
    window_s: float = 10.0
    pairs: int = 3  # off/on window pairs
    quick: bool = False
    json_path: Path | None = None


QUICK = Settings(cameras=2, window_s=5.0, pairs=2, quick=True)


def _ffmpeg_decode(url: str) -> list[str]:
    """Decode every picture on one thread, write nothing."""
    return [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-threads", "1",
        "-i", url, "-f", "null", "-",
    ]  # fmt: skip


def _own_cpu_pct(seconds: float) -> float:
    pid = os.getpid()
    before, started = cpu_seconds(pid) or 0.0, time.monotonic()
    time.sleep(seconds)
    return 100 * ((cpu_seconds(pid) or 0.0) - before) / (time.monotonic() - started)


def _write_config(path: Path, data_dir: str, urls: dict[str, str]) -> None:
    config = {
        "server": {"data_dir": data_dir},
        "platforms": [{"id": "bench", "name": "Bench"}],
        "cameras": [
            {"id": camera, "name": camera, "platform": "bench", "url": url}
            for camera, url in urls.items()
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def _wait_online(client: TestClient, cameras: int) -> None:
    deadline = time.monotonic() + ONLINE_TIMEOUT_S
    states: list[str] = []
    while time.monotonic() < deadline:
        states = [c["state"] for c in client.get("/api/cameras").json()]
        if states.count("online") == cameras:
            return
        time.sleep(0.2)
    raise RuntimeError(f"cameras not online within {ONLINE_TIMEOUT_S:g} s: {states}")


def _arm(client: TestClient, zones: dict[str, int], enabled: bool) -> None:
    for camera, zone_id in zones.items():
        body = {"name": "bench", "points": ZONE, "sensitivity": 50, "enabled": enabled}
        client.put(f"/api/cameras/{camera}/zones/{zone_id}", json=body).raise_for_status()
    time.sleep(SETTLE_S)


def run(settings: Settings) -> dict[str, Any]:
    mounts = [
        MountSpec(f"cam{i}", INTRUDER, start_offset_s=(i * 3.0) % INTRUDER.seconds)
        for i in range(settings.cameras)
    ]
    with (
        SimulatorFleet(mounts, clip_dir=CLIP_CACHE) as simulator,
        tempfile.TemporaryDirectory(prefix="bench-zones-") as data_dir,
        Children() as children,
    ):
        urls = {m.path: simulator.url(m.path) for m in mounts}
        config_file = Path(data_dir) / "config.yaml"
        _write_config(config_file, data_dir, urls)
        credentials = create_bench_credentials(config_file)
        app = create_app(load_config(config_file))
        off: list[float] = []
        on: list[float] = []
        node = app.state.node
        with TestClient(app, base_url="http://localhost", headers=credentials.headers()) as client:
            _wait_online(client, settings.cameras)
            zones = {}
            for camera in urls:
                body = {"name": "bench", "points": ZONE, "enabled": False}
                response = client.post(f"/api/cameras/{camera}/zones", json=body)
                response.raise_for_status()
                zones[camera] = int(response.json()["id"])
            time.sleep(SETTLE_S)
            for _ in range(settings.pairs):
                off.append(_own_cpu_pct(settings.window_s))
                _arm(client, zones, True)
                on.append(_own_cpu_pct(settings.window_s))
                decoding = len(node.zone_motion.decoding())
                _arm(client, zones, False)
            alarms = node.events.search(EventFilter(types=[EventType.ZONE_MOTION])).events
        # The baseline: ffmpeg decoding every picture of the same streams, one thread each.
        procs = [children.spawn(_ffmpeg_decode(url)) for url in urls.values()]
        time.sleep(SETTLE_S)
        ffmpeg = [
            measure_cpu({"ffmpeg": [p.pid for p in procs]}, settings.window_s).groups["ffmpeg"]
            for _ in range(settings.pairs)
        ]
        children.stop(procs)
    n = settings.cameras
    per_camera = (statistics.median(on) - statistics.median(off)) / n
    return {
        "cameras": n,
        "stream": "640x360 H.264 Main 25 fps 800 kbit/s, scene intruder",
        "zone_motion_cpu_pct_per_camera": round(per_camera, 2),
        "zone_motion_target_pct_per_camera": TARGET_PCT_PER_CAMERA,
        "service_cpu_pct_zones_off_median": round(statistics.median(off), 1),
        "service_cpu_pct_zones_on_median": round(statistics.median(on), 1),
        "decoding_cameras_while_armed": decoding,
        "zone_alarms_raised": len(alarms),
        "ffmpeg_full_decode_baseline_pct_per_camera": round(statistics.median(ffmpeg) / n, 2),
        "windows_s": settings.window_s,
        "windows_per_phase": settings.pairs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int)
    parser.add_argument("--quick", action="store_true", help="2 cameras, shorter windows")
    parser.add_argument("--json", dest="json_path", type=Path)
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else Settings()
    if args.cameras:
        settings = replace(settings, cameras=args.cameras)
    settings = replace(settings, json_path=args.json_path)
    result = run(settings)
    for key, value in result.items():
        print(f"{key}: {value}")
    if settings.json_path is not None:
        settings.json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
