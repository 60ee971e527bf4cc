"""GB/T 28181 benchmark: INVITE to first frame, catalog import, and the CPU of GB ingest
against RTSP ingest of the same streams, in the same run.

Usage::

    python -m bench.gb28181 --quick --json /tmp/gb-quick.json      # about a minute
    python -m bench.gb28181 --channels 10000 --streams 20 --json /tmp/gb.json

Method
------
The service runs as users run it (``surveillance serve --config``, bench/service.py), the
simulated GB/T 28181 lower platform (surveillance/simulator/gb_platform.py) in this process
on a loop of its own (simulator/gb_runner.py), the RTSP simulator in its own process. One
phase at a time:

1. **catalog** -- a service with the GB server on, a platform of ``--channels`` channels
   (20 to a catalog MESSAGE, as the simulator pages them) registers; ``catalog_import_s`` is
   from the platform's first REGISTER to ``GET /api/gb/platforms`` counting every channel
   (digest registration, the catalog query, every page, the store, the cameras).
2. **first frame** -- on the same service, ``--invites`` channels not played before are
   asked for one after another with ``GET /api/cameras/{id}/snapshot.jpg?mode=keyframe``:
   the INVITE, its answer, the RTP/PS up to the first whole keyframe, and its JPEG. Its
   p50/p95 are ``invite_to_first_frame_*_ms`` (an upper bound of the INVITE to the first
   frame: the JPEG of a 640x360 keyframe is a few milliseconds of it).
3. **gb ingest** -- a new service with only ``--streams`` channels (10,000 idle cameras
   cost the monitor's rounds, which the RTSP phase would not have), each started by one
   snapshot and kept up by ``on_demand_idle_s`` (no consumer: ingest alone). CPU of the
   service process over ``--repeat`` windows of ``--seconds``, median, divided by streams.
4. **rtsp ingest** -- a new service with ``--streams`` RTSP cameras, always on, served by the
   RTSP simulator from the same clip (simulator/ps_mux.py CLIPS["h264"]: 640x360 25 fps
   800 kbit/s, GOP 1 s), measured the same way. ``ratio`` = gb / rtsp per stream.

CPU is in percent of ONE core (100 = one core busy). The simulators' CPU is reported beside
(the GB one is this process), never inside, the service's.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.harness import (
    Report,
    add_run_options,
    progress,
    run_benchmark,
    settings_from,
    wait_quiet,
    window_medians,
)
from bench.procs import Children
from bench.procstat import CpuWindow, measure_cpu
from bench.service import HOST, ServiceProcess, free_port
from bench.stats import percentile, rounded
from surveillance.simulator import MountSpec, Simulator
from surveillance.simulator.gb_platform import GbChannelSpec, GbPlatformSimulator
from surveillance.simulator.gb_runner import GbPlatformThread
from surveillance.simulator.ps_mux import CLIPS

NAME = "bench.gb28181"
OUR_ID = "34020000002000000001"
DOMAIN = "3402000000"
DEVICE = "34020000002000000002"
PASSWORD = "bench-gb-password"  # the simulated platform's, in a throwaway config
READY_S = 60.0
CATALOG_TIMEOUT_S = 600.0
ONLINE_TIMEOUT_S = 120.0
SETTLE_S = 3.0  # after every stream is online, before the CPU windows
POLL_S = 0.2
TARGET_FIRST_FRAME_MS = 2000.0
TARGET_CATALOG_S = 60.0
TARGET_RATIO = 1.5


@dataclass(frozen=True)
class Settings:
    channels: int = 10000
    streams: int = 20
    invites: int = 40
    seconds: float = 20.0
    repeat: int = 3
    transport: str = "udp"  # how the platform is asked to send (GbTransport)
    quick: bool = False
    json_path: Path | None = None
    cache_dir: Path | None = None
    wait_quiet_s: float | None = 60.0


QUICK = Settings(channels=1000, streams=4, invites=10, seconds=5.0, repeat=1, quick=True)


def channel_id(n: int) -> str:
    return f"{DOMAIN}131{n:07d}"


def free_sip_port() -> int:
    """A port free for UDP and TCP (the SIP server binds both)."""
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind((HOST, port))
            except OSError:
                continue
        return port


def _config(tmp: Path, name: str, gb: dict[str, Any] | None, cameras: list[dict[str, Any]]) -> Path:
    data = tmp / name
    data.mkdir()
    config: dict[str, Any] = {
        "server": {"data_dir": str(data)},
        # Streams stay up without a consumer once started: ingest alone is measured.
        "ingest": {"on_demand_idle_s": 3600},
        "platforms": [{"id": "bench", "name": "Benchmark"}],
        "cameras": cameras,
    }
    if gb is not None:
        config["gb28181"] = gb
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _gb_section(sip_port: int, streams: int, channels: int, transport: str) -> dict[str, Any]:
    """The GB server's section: RTP ports for ``streams`` (two ports each, RTP on the
    even one), a platform of up to ``channels``."""
    rtp = min(free_port() // 2 * 2, 65534 - 2 * streams - 2)
    return {
        "enabled": True,
        "sip_id": OUR_ID,
        "domain": DOMAIN,
        "listen": HOST,
        "sip_port": sip_port,
        "rtp_port_min": rtp,
        "rtp_port_max": rtp + 2 * streams + 1,
        "platforms": [
            {
                "id": "city",
                "name": "Benchmark platform",
                "device_id": DEVICE,
                "password": PASSWORD,
                "transport": transport,
                "max_channels": max(channels, 20000),
            }
        ],
    }


def _platform(sip_port: int, channels: int, cache_dir: Path | None) -> GbPlatformThread:
    return GbPlatformThread(
        GbPlatformSimulator(
            device_id=DEVICE,
            password=PASSWORD,
            server_host=HOST,
            server_port=sip_port,
            server_id=OUR_ID,
            domain=DOMAIN,
            channels=[GbChannelSpec(channel_id(n), f"Channel {n}") for n in range(channels)],
            keepalive_s=30,
            clip_dir=cache_dir,
        )
    )


def _service(children: Children, config: Path, tmp: Path, name: str) -> ServiceProcess:
    service = ServiceProcess(children, config, free_port(), tmp / f"{name}.log")
    service.wait_ready(READY_S)
    return service


def _channels_stored(service: ServiceProcess) -> int:
    platforms = service.http.get_json("/api/gb/platforms")
    return sum(int(p["channels"]) for p in platforms)


def _snapshot_ms(service: ServiceProcess, camera_id: str) -> float:
    started = time.perf_counter()
    status, body = service.http.get(f"/api/cameras/{camera_id}/snapshot.jpg?mode=keyframe")
    elapsed = (time.perf_counter() - started) * 1000
    if status != 200:
        raise RuntimeError(f"snapshot of {camera_id}: HTTP {status}: {body[:200]!r}")
    return elapsed


def catalog_and_first_frames(settings: Settings, children: Children, tmp: Path) -> Report:
    sip_port = free_sip_port()
    gb = _gb_section(sip_port, settings.invites, settings.channels, settings.transport)
    service = _service(children, _config(tmp, "catalog", gb, []), tmp, "catalog")
    platform = _platform(sip_port, settings.channels, settings.cache_dir)
    progress(NAME, f"catalog: a platform of {settings.channels} channels registers")
    started = time.monotonic()
    platform.start()
    try:
        stored = 0
        while stored < settings.channels and time.monotonic() - started < CATALOG_TIMEOUT_S:
            time.sleep(POLL_S)
            stored = _channels_stored(service)
        catalog_s = time.monotonic() - started
        progress(NAME, f"catalog: {stored} channels in {catalog_s:.1f} s")
        times = []
        for n in range(settings.invites):
            times.append(_snapshot_ms(service, f"city.{channel_id(n)}"))
        progress(NAME, f"first frames: p95 {percentile(times, 95):.0f} ms over {len(times)}")
    finally:
        platform.stop()
        service.stop()
    return {
        "channels": settings.channels,
        "channels_stored": stored,
        "catalog_import_s": rounded(catalog_s, 2),
        "first_frame_ms": [rounded(t, 1) for t in times],
    }


def _windows(settings: Settings, groups: dict[str, list[int]]) -> list[CpuWindow]:
    time.sleep(SETTLE_S)
    return [measure_cpu(groups, settings.seconds) for _ in range(settings.repeat)]


def gb_ingest(settings: Settings, children: Children, tmp: Path) -> Report:
    sip_port = free_sip_port()
    gb = _gb_section(sip_port, settings.streams, settings.streams, settings.transport)
    service = _service(children, _config(tmp, "gb-ingest", gb, []), tmp, "gb-ingest")
    platform = _platform(sip_port, settings.streams, settings.cache_dir)
    platform.start()
    try:
        ids = [f"city.{channel_id(n)}" for n in range(settings.streams)]
        deadline = time.monotonic() + ONLINE_TIMEOUT_S
        while len({c["id"] for c in service.cameras()} & set(ids)) < len(ids):
            if time.monotonic() > deadline:
                raise RuntimeError("the platform's channels did not become cameras")
            time.sleep(POLL_S)
        for camera_id in ids:
            _snapshot_ms(service, camera_id)  # starts it; on_demand_idle_s keeps it up
        online, _ = service.wait_online(len(ids), ONLINE_TIMEOUT_S)
        progress(NAME, f"gb ingest: {online} of {len(ids)} streams online; measuring")
        windows = _windows(settings, {"service": [service.pid], "simulator": [os.getpid()]})
    finally:
        platform.stop()
        service.stop()
    return {"streams": settings.streams, "online": online, "cpu": window_medians(windows, 2),
            "windows": windows}  # fmt: skip


def rtsp_ingest(settings: Settings, children: Children, tmp: Path) -> Report:
    clip = CLIPS["h264"]
    mounts = [
        MountSpec(f"cam{n}", clip, shared=True, start_offset_s=float(n % 4))
        for n in range(settings.streams)
    ]
    cache = settings.cache_dir or tmp / "clips"
    with Simulator(mounts, clip_dir=cache) as simulator:
        cameras = [
            {"id": f"cam{n}", "name": f"Camera {n}", "platform": "bench",
             "url": simulator.url(f"cam{n}")}
            for n in range(settings.streams)
        ]  # fmt: skip
        service = _service(children, _config(tmp, "rtsp-ingest", None, cameras), tmp, "rtsp")
        try:
            online, _ = service.wait_online(settings.streams, ONLINE_TIMEOUT_S)
            progress(NAME, f"rtsp ingest: {online} of {settings.streams} online; measuring")
            groups = {"service": [service.pid], "simulator": [simulator.pid or 0]}
            windows = _windows(settings, groups)
        finally:
            service.stop()
    return {"streams": settings.streams, "online": online, "cpu": window_medians(windows, 2),
            "windows": windows}  # fmt: skip


def run_phases(settings: Settings) -> Report:
    with Children() as children, tempfile.TemporaryDirectory(prefix="bench-gb-") as name:
        tmp = Path(name)
        if settings.wait_quiet_s:
            wait_quiet(NAME, settings.wait_quiet_s)
        return {
            "catalog": catalog_and_first_frames(settings, children, tmp),
            "gb_ingest": gb_ingest(settings, children, tmp),
            "rtsp_ingest": rtsp_ingest(settings, children, tmp),
        }


def summarize(settings: Settings, phases: Report) -> Report:
    times = [t for t in phases["catalog"]["first_frame_ms"] if t is not None]
    gb_cpu = phases["gb_ingest"]["cpu"]["service"]
    rtsp_cpu = phases["rtsp_ingest"]["cpu"]["service"]
    gb_per = None if gb_cpu is None else gb_cpu / settings.streams
    rtsp_per = None if rtsp_cpu is None else rtsp_cpu / settings.streams
    ratio = None if not gb_per or not rtsp_per else gb_per / rtsp_per
    figures = {
        "invite_to_first_frame_p50_ms": rounded(percentile(times, 50), 1),
        "invite_to_first_frame_p95_ms": rounded(percentile(times, 95), 1),
        "catalog_import_s": phases["catalog"]["catalog_import_s"],
        "catalog_channels": settings.channels,
        "gb_ingest_cpu_pct_per_stream": rounded(gb_per, 3),
        "rtsp_ingest_cpu_pct_per_stream": rounded(rtsp_per, 3),
        "ratio": rounded(ratio, 2),
    }
    figures["targets"] = {
        "invite_to_first_frame_p95_ms": _target(
            figures["invite_to_first_frame_p95_ms"], TARGET_FIRST_FRAME_MS
        ),
        "catalog_import_s": (
            _target(figures["catalog_import_s"], TARGET_CATALOG_S)
            if settings.channels >= 10000
            else {"limit": TARGET_CATALOG_S, "met": None, "note": "target is for 10,000"}
        ),
        "ratio": _target(figures["ratio"], TARGET_RATIO),
    }
    return figures


def _target(value: float | None, limit: float) -> dict[str, Any]:
    return {"limit": limit, "met": None if value is None else value <= limit}


def print_table(report: Report) -> None:
    rows = [
        ("INVITE -> first frame p50 (ms)", report["invite_to_first_frame_p50_ms"]),
        ("INVITE -> first frame p95 (ms)", report["invite_to_first_frame_p95_ms"]),
        (f"catalog import, {report['catalog_channels']} channels (s)", report["catalog_import_s"]),
        ("GB ingest CPU per stream (% of a core)", report["gb_ingest_cpu_pct_per_stream"]),
        ("RTSP ingest CPU per stream (% of a core)", report["rtsp_ingest_cpu_pct_per_stream"]),
        ("GB / RTSP", report["ratio"]),
    ]
    for label, value in rows:
        print(f"{label:<48} {value}")
    for name, target in report["targets"].items():
        print(f"target {name}: <= {target['limit']}: {target['met']}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {NAME}", description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, help="channels of the catalog phase")
    parser.add_argument("--streams", type=int, help="streams of the CPU phases")
    parser.add_argument("--invites", type=int, help="first-frame trials")
    parser.add_argument("--seconds", type=float, help="length of one CPU window")
    parser.add_argument("--repeat", type=int, help="CPU windows per phase")
    parser.add_argument("--transport", choices=["udp", "tcp-passive", "tcp-active"])
    add_run_options(
        parser,
        quick="1,000 channels, 4 streams, 10 trials, one 5 s window",
        wait_quiet="wait this long (s) for an idle machine before measuring",
    )
    args = parser.parse_args(argv)
    settings = settings_from(args, Settings(), QUICK)
    return run_benchmark(
        NAME,
        sys.argv[1:] if argv is None else argv,
        settings,
        versions=dict,
        run_phases=run_phases,
        summarize=summarize,
        print_table=print_table,
    )


if __name__ == "__main__":
    raise SystemExit(main())
