"""``surveillance-sim onvif``: simulated ONVIF cameras on loopback addresses until Ctrl-C or
SIGTERM (also ``python -m surveillance.simulator.onvif_cli onvif``).

For demos and trying discovery and PTZ by hand: ``--count`` devices at
SUBNET.FIRST .. SUBNET.FIRST+COUNT-1, each with the device, media, PTZ and events services on
``--port``, WS-Discovery on 3702, and (unless ``--no-pictures``) RTSP pictures that follow
their PTZ. The password comes from the environment (ONVIF_SIM_PASSWORD), never the command
line, which other users of the machine can read.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from surveillance.simulator.onvif_fleet import OnvifFleet, OnvifFleetError
from surveillance.simulator.onvif_specs import DEVICE_FAULTS
from surveillance.simulator.server import SimulatorError

KEY_VARIABLE = "ONVIF_SIM_PASSWORD"  # unset: the devices' default (OnvifDeviceSpec)
DEFAULT_SCENE_DIR = Path(".cache/simulator-clips")
MAX_DEVICES = 254


def _subnet(value: str) -> str:
    try:
        network = ipaddress.ip_network(f"{value}.0/24")
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not the first three parts of an address: {value}"
        ) from None
    if not network.is_loopback:
        raise argparse.ArgumentTypeError(f"{value}: only loopback subnets (127.x.y) are served")
    return value


def _fault(value: str) -> tuple[int, str]:
    index, name = _index_and_value(value)
    if name not in DEVICE_FAULTS:
        raise argparse.ArgumentTypeError(f"unknown fault {name!r}; one of {DEVICE_FAULTS}")
    return index, name


def _clock_offset(value: str) -> tuple[int, float]:
    index, seconds = _index_and_value(value)
    try:
        return index, float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None


def _index_and_value(value: str) -> tuple[int, str]:
    index, sep, rest = value.partition("=")
    if not sep or not index.isdigit():
        raise argparse.ArgumentTypeError(f"expected INDEX=VALUE, got {value!r}")
    return int(index), rest


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="surveillance-sim", description="camera simulators")
    commands = parser.add_subparsers(dest="command", required=True)
    onvif = commands.add_parser("onvif", help="simulated ONVIF cameras")
    onvif.add_argument("--subnet", type=_subnet, default="127.0.90", help="e.g. 127.0.90")
    onvif.add_argument("--count", type=int, default=2)
    onvif.add_argument("--first-host", type=int, default=1)
    onvif.add_argument("--port", type=int, default=8080, help="HTTP port of every device")
    onvif.add_argument("--fixed", action="store_true", help="fixed cameras (no PTZ)")
    onvif.add_argument("--username", default="admin")
    onvif.add_argument(
        "--fault", type=_fault, action="append", default=[], metavar="INDEX=FAULT",
        help=f"device INDEX (0-based) misbehaves: one of {', '.join(DEVICE_FAULTS)}",
    )  # fmt: skip
    onvif.add_argument(
        "--clock-offset", type=_clock_offset, action="append", default=[],
        metavar="INDEX=SECONDS", help="device INDEX's clock is off by SECONDS",
    )  # fmt: skip
    onvif.add_argument("--no-pictures", action="store_true", help="no RTSP server")
    onvif.add_argument("--scene-dir", type=Path, default=DEFAULT_SCENE_DIR)
    return parser


def run(args: argparse.Namespace) -> int:
    if args.count < 1 or args.first_host < 1 or args.first_host + args.count - 1 > MAX_DEVICES:
        print(f"devices must be hosts 1..{MAX_DEVICES} of the subnet")
        return 2
    key = os.environ.get(KEY_VARIABLE)
    secret: dict[str, Any] = {"password": key} if key else {}
    fleet = OnvifFleet.on_subnet(
        args.subnet,
        args.count,
        first_host=args.first_host,
        ptz=not args.fixed,
        faults=dict(args.fault),
        clock_offsets=dict(args.clock_offset),
        http_port=args.port,
        scene_dir=args.scene_dir,
        pictures=not args.no_pictures,
        username=args.username,
        **secret,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        with fleet:
            for device in fleet.devices:
                spec = device.spec
                streams = " ".join(filter(None, (spec.rtsp_main, spec.rtsp_sub))) or "-"
                state = spec.fault or ("ptz" if spec.ptz else "fixed")
                print(f"{device.url} {state} {spec.name!r} {streams}", flush=True)
            print(f"serving {len(fleet.devices)} ONVIF devices; Ctrl-C to stop", flush=True)
            stop.wait()
    except (OSError, SimulatorError, OnvifFleetError) as exc:
        print(f"onvif simulator: {exc}")
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "onvif":
        return run(args)
    raise AssertionError(args.command)


if __name__ == "__main__":
    raise SystemExit(main())
