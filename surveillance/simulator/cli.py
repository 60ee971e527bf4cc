"""``surveillance simulate``: serve simulated RTSP cameras until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit, urlunsplit

from surveillance.simulator.clips import ClipSpec
from surveillance.simulator.demo import demo_mounts
from surveillance.simulator.server import MountSpec, Simulator, SimulatorError

DEFAULT_CLIP_DIR = Path(".cache/simulator-clips")
REDACTED = "***"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cameras", type=int, default=4, help="generated cameras (default 4)")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="a varied demo set (sub-streams, Baseline, B-frames, H.265, SDP-only parameter "
        "sets) instead of --cameras identical cameras",
    )
    parser.add_argument(
        "--shared",
        action="store_true",
        help="serve cameras with the same clip and start offset from one pipeline (cheap for "
        "hundreds of cameras; each new client still starts at a keyframe)",
    )
    parser.add_argument("--codec", choices=["h264", "h265"], default="h264")
    parser.add_argument("--profile", choices=["baseline", "main", "high"], default="high")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--bitrate-kbps", type=int, default=2000)
    parser.add_argument("--gop-s", type=float, default=2.0, help="keyframe interval, seconds")
    parser.add_argument("--bframes", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the looped clip")
    parser.add_argument("--params-in-sdp-only", action="store_true")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default loopback)")
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument("--clip-dir", type=Path, default=DEFAULT_CLIP_DIR)
    parser.add_argument(
        "--footage",
        type=Path,
        nargs="*",
        default=[],
        metavar="PATH",
        help="recorded MP4 files to serve as extra cameras (video track only)",
    )


def build_mounts(args: argparse.Namespace) -> list[MountSpec]:
    if args.demo:
        mounts = demo_mounts(args.cameras, shared=args.shared)
    else:
        spec = ClipSpec(
            codec=args.codec,
            profile=args.profile,
            width=args.width,
            height=args.height,
            fps=args.fps,
            bitrate_kbps=args.bitrate_kbps,
            gop_s=args.gop_s,
            bframes=args.bframes,
            seconds=args.seconds,
        )
        mounts = [
            MountSpec(
                f"cam{n}",
                spec,
                params_in_sdp_only=args.params_in_sdp_only,
                start_offset_s=((n - 1) * args.gop_s) % args.seconds,
                shared=args.shared,
            )
            for n in range(1, args.cameras + 1)
        ]
    mounts += [MountSpec(f"footage{n}", path) for n, path in enumerate(args.footage, start=1)]
    if args.username:
        mounts = [
            MountSpec(
                m.path,
                m.clip,
                username=args.username,
                password=args.password,
                params_in_sdp_only=m.params_in_sdp_only,
                start_offset_s=m.start_offset_s,
                shared=m.shared,
            )
            for m in mounts
        ]
    return mounts


def redact(url: str) -> str:
    """Hide the password of a URL's userinfo; the user name stays to show which one to use."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{REDACTED}@{host}"))


def run(args: argparse.Namespace) -> int:
    mounts = build_mounts(args)
    if not mounts:
        print("nothing to serve: use --cameras N or --footage PATH")
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    print(f"preparing {len(mounts)} cameras (clips cached in {args.clip_dir}) ...", flush=True)
    try:
        with Simulator(mounts, clip_dir=args.clip_dir, host=args.host, port=args.port) as sim:
            for mount in mounts:
                print(redact(sim.url(mount.path)), flush=True)
            print("serving; Ctrl-C to stop", flush=True)
            while not stop.wait(1.0):
                if not sim.running:
                    print("the RTSP server exited unexpectedly")
                    return 1
    except SimulatorError as exc:
        print(f"simulator: {exc}")
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
