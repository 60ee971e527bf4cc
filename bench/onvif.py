"""ONVIF benchmark: discovering a /24, PTZ command latency and command-to-picture latency,
each beside a baseline measured in the same run.

Usage::

    python -m bench.onvif --quick --json /tmp/onvif-quick.json     # about a minute
    python -m bench.onvif --devices 20 --json /tmp/onvif.json

Method
------
``--devices`` simulated ONVIF PTZ cameras (surveillance/simulator/onvif_fleet.py: SOAP
device, media and PTZ services with WS-Security digest, a WS-Discovery responder each, and
a moving picture per device from the GStreamer RTSP simulator) run in this process on
127.0.95.1..N (``--subnet``). The service runs as users run it (``surveillance serve --config``,
bench/service.py) with the first device as an ONVIF PTZ camera. Figures:

1. **discover_range_s** -- an admin discovers 127.0.95.0/24 through the API
   (``POST /api/onvif/discovery``, unicast only, with the devices' credentials: probes at
   ``onvif.discovery.probes_per_s``, then every answering device inspected), median over
   ``--repeat`` runs. Baseline: the same Probe from a bare UDP socket to the same 254
   hosts at the same rate, until the last device's ProbeMatch is in.
2. **ptz_command_p95_ms** -- ``POST /api/cameras/{id}/ptz`` (moves and stops, alternating)
   to the device's stamp of the matching ContinuousMove/Stop, p50/p95 over
   ``--commands``. Baseline: the same requests sent straight to the device with
   onvif-zeep-async.
3. **ptz_to_picture_ms** -- from a full-speed pan command to the first picture the wall's
   own stream (``/api/live/mse``, fMP4 decoded here) shows moved, by
   simulator/picture_change.py's measure; median and p95 over ``--pictures``. Baseline: the
   command sent straight to the device, the picture read straight from the simulator's
   RTSP mount. Both include the device's ramp: at full speed the view moves 0.5 units/s,
   so a visible step takes a few of its 20 Hz ticks.

Targets: discover_range_s <= 10 s, ptz_command_p95_ms <= 300 ms, ptz_to_picture p95 <= 1 s.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.harness import Report, add_run_options, progress, run_benchmark, settings_from
from bench.harness import wait_quiet as wait_for_quiet
from bench.onvif_direct import DirectPtz
from bench.onvif_discover import discover_range, udp_sweep
from bench.onvif_frames import FrameWatch, MseFrames, RtspFrames
from bench.onvif_ptz import command_trials, direct_sender, picture_trials, service_sender
from bench.procs import Children
from bench.service import HOST, ServiceProcess, free_port
from bench.stats import median, percentile, rounded
from surveillance.config.models import OnvifDiscoveryConfig
from surveillance.simulator.onvif_fleet import OnvifFleet

NAME = "bench.onvif"
# Tests use 127.0.76-78 (tests/onvif_net.py) and 127.0.91-92, the demo 127.0.90.
SUBNET = "127.0.95"
CAMERA = "ptz1"
READY_S = 60.0
ONLINE_S = 60.0
DISCOVER_TIMEOUT_S = 120.0
TARGET_DISCOVER_S = 10.0
TARGET_COMMAND_P95_MS = 300.0
TARGET_PICTURE_MS = 1000.0


@dataclass(frozen=True)
class Settings:
    devices: int = 20
    subnet: str = SUBNET  # the devices are SUBNET.1..devices
    repeat: int = 3  # discovery runs (and bare sweeps)
    commands: int = 60  # PTZ commands per path
    pictures: int = 10  # command-to-picture trials per path
    quick: bool = False
    json_path: Path | None = None
    cache_dir: Path | None = None
    wait_quiet_s: float | None = 60.0


QUICK = Settings(devices=4, repeat=1, commands=10, pictures=3, quick=True)


def _config(tmp: Path, fleet: OnvifFleet) -> Path:
    device = fleet.devices[0]
    camera: dict[str, Any] = {
        "id": CAMERA,
        "name": "Benchmark PTZ camera",
        "platform": "bench",
        "url": device.spec.rtsp_main,
        "username": device.spec.username,
        "password": device.spec.password,
        "onvif": {"url": device.url},
    }
    if device.spec.rtsp_sub:
        camera["sub_url"] = device.spec.rtsp_sub
    config = {
        "server": {"data_dir": str(tmp / "data")},
        "platforms": [{"id": "bench", "name": "Benchmark"}],
        "cameras": [camera],
        # A long lease and no return home: nothing but the trials moves the camera.
        "ptz": {"lease_s": 3600, "idle_home_s": 0},
    }
    path = tmp / "onvif.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def run_phases(settings: Settings) -> Report:
    with Children() as children, tempfile.TemporaryDirectory(prefix="bench-onvif-") as name:
        tmp = Path(name)
        quiet = wait_for_quiet(NAME, settings.wait_quiet_s) if settings.wait_quiet_s else {}
        progress(NAME, f"{settings.devices} simulated ONVIF devices on {settings.subnet}.0/24")
        scenes = settings.cache_dir or tmp
        fleet = OnvifFleet.on_subnet(
            settings.subnet, settings.devices, http_port=free_port(), scene_dir=scenes / "onvif"
        )
        with fleet:
            service = ServiceProcess(children, _config(tmp, fleet), free_port(), tmp / "svc.log")
            try:
                service.wait_ready(READY_S)
                online, _ = service.wait_online(1, ONLINE_S)
                if online < 1:
                    raise RuntimeError(f"the PTZ camera did not come online:\n{service.log_tail()}")
                headers = service.credentials.headers()
                base = f"http://{HOST}:{service.port}"
                with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                    phases = {"quiet": quiet, **_discover(settings, fleet, client)}
                    phases.update(_ptz(settings, fleet, client, service))
            finally:
                service.stop()
        return phases


def _discover(settings: Settings, fleet: OnvifFleet, client: httpx.Client) -> Report:
    rate = OnvifDiscoveryConfig().probes_per_s
    wait = OnvifDiscoveryConfig().answer_wait_s
    addresses = [d.spec.address for d in fleet.devices]
    spec = fleet.devices[0].spec
    sweeps, runs = [], []
    for n in range(settings.repeat):
        sweeps.append(udp_sweep(settings.subnet, addresses, rate, wait))
        runs.append(discover_range(client, settings.subnet, (spec.username, spec.password),
                                   DISCOVER_TIMEOUT_S))  # fmt: skip
        progress(NAME, f"discovery {n + 1}: {runs[-1]['seconds']:.2f} s, "
                 f"{runs[-1]['inspected_ok']} of {settings.devices} inspected; bare sweep "
                 f"{_fmt(rounded(sweeps[-1]['seconds'], 2))} s")  # fmt: skip
    return {"discover": {"runs": runs, "udp_sweeps": sweeps, "probes_per_s": rate}}


def _ptz(
    settings: Settings, fleet: OnvifFleet, client: httpx.Client, service: ServiceProcess
) -> Report:
    device = fleet.devices[0]
    spec = device.spec
    service_send = service_sender(client, CAMERA)
    with DirectPtz(device.url, spec.username, spec.password) as direct:
        # The first command takes the lease and connects the service to the device.
        first = command_trials(service_send, device, 1)
        direct_ms = command_trials(direct_sender(direct), device, settings.commands)
        service_ms = command_trials(service_send, device, settings.commands)
        progress(NAME, f"commands: p95 {_q(service_ms, 95)} ms through the service, "
                 f"{_q(direct_ms, 95)} ms straight")  # fmt: skip
        ws = f"ws://{HOST}:{service.port}/api/live/mse?camera={CAMERA}&stream=main"
        wall = _pictures(MseFrames(ws, service.credentials.headers()), service_send, direct,
                         settings.pictures)  # fmt: skip
        rtsp = _pictures(RtspFrames(spec.rtsp_main), direct_sender(direct), direct,
                         settings.pictures)  # fmt: skip
        progress(NAME, f"pictures: median {_q(wall['ms'], 50)} ms on the wall's stream, "
                 f"{_q(rtsp['ms'], 50)} ms straight from RTSP")  # fmt: skip
    return {
        "commands": {"first_ms": first[0], "service_ms": service_ms, "direct_ms": direct_ms},
        "pictures": {"wall": wall, "rtsp": rtsp},
    }


def _pictures(watch: FrameWatch, send: Any, direct: DirectPtz, trials: int) -> Report:
    watch.start()
    try:
        times = picture_trials(send, watch, direct, trials)
    finally:
        watch.stop()
    return {"ms": times, "frames_received": watch.received, "reader_error": watch.error}


def _q(values: Sequence[float | None], q: float) -> str:
    """Percentile ``q`` of what was measured, for a progress line."""
    return _fmt(rounded(percentile(_ok(values), q), 1))


def _ok(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def summarize(settings: Settings, phases: Report) -> Report:
    runs = phases["discover"]["runs"]
    sweeps = [s["seconds"] for s in phases["discover"]["udp_sweeps"]]
    commands, pictures = phases["commands"], phases["pictures"]
    service_ms, direct_ms = _ok(commands["service_ms"]), _ok(commands["direct_ms"])
    wall_ms, rtsp_ms = _ok(pictures["wall"]["ms"]), _ok(pictures["rtsp"]["ms"])
    figures: Report = {
        "devices": settings.devices,
        "discover_range_s": rounded(median([r["seconds"] for r in runs]), 2),
        "discover_range_max_s": rounded(max(r["seconds"] for r in runs), 2),
        "discover_inspected_ok": min(r["inspected_ok"] for r in runs),
        "discover_probing_s": rounded(median([r["probing_s"] or 0.0 for r in runs]), 2),
        "discover_baseline_udp_sweep_s": rounded(median([s for s in sweeps if s is not None]), 2),
        "ptz_command_p50_ms": rounded(percentile(service_ms, 50), 1),
        "ptz_command_p95_ms": rounded(percentile(service_ms, 95), 1),
        "ptz_command_baseline_p50_ms": rounded(percentile(direct_ms, 50), 1),
        "ptz_command_baseline_p95_ms": rounded(percentile(direct_ms, 95), 1),
        "ptz_command_first_ms": rounded(commands["first_ms"], 1),
        "ptz_commands_unseen": len(commands["service_ms"]) - len(service_ms),
        "ptz_to_picture_ms": rounded(median(wall_ms), 1),
        "ptz_to_picture_p95_ms": rounded(percentile(wall_ms, 95), 1),
        "ptz_to_picture_baseline_ms": rounded(median(rtsp_ms), 1),
        "ptz_to_picture_baseline_p95_ms": rounded(percentile(rtsp_ms, 95), 1),
        "ptz_pictures_unseen": len(pictures["wall"]["ms"]) - len(wall_ms),
    }
    figures["targets"] = {
        "discover_range_s": _target(figures["discover_range_s"], TARGET_DISCOVER_S),
        "ptz_command_p95_ms": _target(figures["ptz_command_p95_ms"], TARGET_COMMAND_P95_MS),
        "ptz_to_picture_p95_ms": _target(figures["ptz_to_picture_p95_ms"], TARGET_PICTURE_MS),
    }
    return figures


def _target(value: float | None, limit: float) -> dict[str, Any]:
    return {"limit": limit, "value": value, "met": None if value is None else value <= limit}


def print_table(report: Report) -> None:
    rows = [
        (f"discover a /24 with {report['devices']} devices (s, median)",
         report["discover_range_s"], report["discover_baseline_udp_sweep_s"]),
        ("PTZ command to device p50 (ms)", report["ptz_command_p50_ms"],
         report["ptz_command_baseline_p50_ms"]),
        ("PTZ command to device p95 (ms)", report["ptz_command_p95_ms"],
         report["ptz_command_baseline_p95_ms"]),
        ("PTZ command to moved picture median (ms)", report["ptz_to_picture_ms"],
         report["ptz_to_picture_baseline_ms"]),
        ("PTZ command to moved picture p95 (ms)", report["ptz_to_picture_p95_ms"],
         report["ptz_to_picture_baseline_p95_ms"]),
    ]  # fmt: skip
    print(f"\n{NAME}  {report['timestamp']}  {report['machine']['nproc']} cores")
    print(f"  {'':<46}{'service':>12}{'baseline':>12}")
    for label, value, baseline in rows:
        print(f"  {label:<46}{_fmt(value):>12}{_fmt(baseline):>12}")
    print("  baselines: bare UDP probe sweep; ONVIF straight to the device; RTSP straight")
    print(f"  discovery: probing (sweep + answer wait; inspections overlap it) "
          f"{report['discover_probing_s']} s; "
          f"{report['discover_inspected_ok']} of {report['devices']} inspected ok; "
          f"first PTZ command (lease + connect) {report['ptz_command_first_ms']} ms")  # fmt: skip
    for name, target in report["targets"].items():
        verdict = {True: "met", False: "MISSED", None: "not measured"}[target["met"]]
        print(f"  target {name} <= {target['limit']:g}: {target['value']} -> {verdict}")


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:g}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {NAME}", description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, help="simulated devices on the /24 (<= 254)")
    parser.add_argument("--subnet", help=f"the devices' 127.y.z (default {SUBNET})")
    parser.add_argument("--repeat", type=int, help="discovery runs")
    parser.add_argument("--commands", type=int, help="PTZ commands per path")
    parser.add_argument("--pictures", type=int, help="command-to-picture trials per path")
    add_run_options(
        parser,
        quick="4 devices, one discovery, 10 commands and 3 pictures per path",
        wait_quiet="wait this long (s) for an idle machine before measuring",
    )
    args = parser.parse_args(argv)
    settings = settings_from(args, Settings(), QUICK)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per PTZ command
    if not 1 <= settings.devices <= 254:
        parser.error("--devices takes 1 to 254")
    return run_benchmark(
        NAME,
        sys.argv[1:] if argv is None else argv,
        settings,
        versions=_versions,
        run_phases=run_phases,
        summarize=summarize,
        print_table=print_table,
    )


def _versions() -> dict[str, Any]:
    from importlib.metadata import version

    return {"onvif-zeep-async": version("onvif-zeep-async"), "WSDiscovery": version("WSDiscovery")}


if __name__ == "__main__":
    raise SystemExit(main())
