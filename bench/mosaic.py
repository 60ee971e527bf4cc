"""CPU of a server-side mosaic against ingest alone, measured in the same run.

One ``surveillance serve`` process ingests N simulated cameras (640x360 H.264, each with a
sub-stream), first with nothing watching (ingest only), then with one WebRTC viewer of an
N-tile mosaic at 1080p25 (decode of the N sub-streams, composition, x264, pass-through to
the viewer). The service's CPU (utime + stime from /proc) in each window, and the
difference, is the mosaic's cost; the budget (docs/architecture.md) is 0.5 core for 16 tiles::

    python -m bench.mosaic --tiles 16 --seconds 20 --repeat 3 --json mosaic.json
    python -m bench.mosaic --quick
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from bench.procs import Children
from bench.procstat import CpuWindow, measure_cpu
from bench.service import HOST, ServiceProcess, free_port
from surveillance.simulator import ClipSpec, MountSpec, Simulator

SOURCE = ClipSpec(codec="h264", profile="main", width=640, height=360, fps=25,
                  bitrate_kbps=800, gop_s=1.0, seconds=4.0)  # fmt: skip
MOSAIC_SIZE = 1080
MOSAIC_FPS = 25
BUDGET_CORES = 0.5  # docs/architecture.md: mosaic 16 tiles -> one 1080p25 stream
START_TIMEOUT_S = 60.0  # service up and every camera online
SETTLE_S = 3.0  # after a change, before a window opens: start-up costs are not steady state
FIRST_FRAME_TIMEOUT_S = 15.0
HTTP_TIMEOUT_S = 30.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.mosaic", description=__doc__)
    parser.add_argument("--tiles", type=int, default=16, help="cameras in the mosaic (16)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each window")
    parser.add_argument("--repeat", type=int, default=3, help="windows per phase, medians (3)")
    parser.add_argument("--quick", action="store_true", help="one 5 s window per phase")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path.home() / ".cache" / "surveillance",
        help="generated clips are kept here",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.repeat = 5.0, 1
    if not 1 <= args.tiles <= 36:
        parser.error("--tiles must be 1 to 36")
    return args


def grid_preset(tiles: int) -> str:
    side = max(1, math.ceil(math.sqrt(tiles)))
    return "1" if side == 1 else f"{side}x{side}"


def write_config(path: Path, simulator: Simulator, tiles: int, data_dir: Path, port: int) -> None:
    # Main and sub-stream both from the simulator: the mosaic must pick the sub-stream,
    # and ingest carries both in both windows, so only the mosaic differs between them.
    cameras = [
        {
            "id": f"cam{i:02d}",
            "name": f"Benchmark camera {i:02d}",
            "platform": "bench",
            "url": simulator.url(f"cam{i:02d}"),
            "sub_url": simulator.url(f"cam{i:02d}-sub"),
        }
        for i in range(tiles)
    ]
    config = {
        "server": {"host": HOST, "port": port, "data_dir": str(data_dir)},
        "platforms": [{"id": "bench", "name": "Benchmark simulator"}],
        "cameras": cameras,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def post_json(port: int, path: str, body: dict[str, Any], token: str) -> Any:
    conn = http.client.HTTPConnection(HOST, port, timeout=HTTP_TIMEOUT_S)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    try:
        conn.request("POST", path, json.dumps(body), headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"POST {path}: HTTP {response.status}: {data[:300]!r}")
    return json.loads(data)


class Viewer:
    """A WebRTC receiver of the mosaic (aiortc, in this process), counting frames."""

    def __init__(self) -> None:
        self.peer = RTCPeerConnection()
        self.frames = 0
        self.size: tuple[int, int] | None = None
        self._pull: asyncio.Task[None] | None = None

    async def connect(self, port: int, path: str, token: str) -> None:
        self.peer.addTransceiver("video", direction="recvonly")

        @self.peer.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            self._pull = asyncio.ensure_future(self._count(track))

        await self.peer.setLocalDescription(await self.peer.createOffer())
        offer = {"sdp": self.peer.localDescription.sdp}
        answer = await asyncio.to_thread(post_json, port, path, offer, token)
        await self.peer.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    async def _count(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame: Any = await track.recv()
            except MediaStreamError:
                return
            self.frames += 1
            self.size = (frame.width, frame.height)

    async def close(self) -> None:
        if self._pull is not None:
            self._pull.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pull
        await self.peer.close()


def wait_online(service: ServiceProcess, expected: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        cameras = service.cameras()
        subs_online = sum(1 for c in cameras if (c["sub_health"] or {}).get("state") == "online")
        online = sum(1 for c in cameras if c["state"] == "online")
        if online >= expected and subs_online >= expected:
            return
        time.sleep(0.5)
    raise RuntimeError(f"not all {expected} cameras came online")


async def _windows(service: ServiceProcess, seconds: float, repeat: int) -> list[CpuWindow]:
    return [
        await asyncio.to_thread(measure_cpu, {"service": [service.pid]}, seconds)
        for _ in range(repeat)
    ]


async def measure(
    service: ServiceProcess, tiles: int, seconds: float, repeat: int
) -> dict[str, Any]:
    windows = await _windows(service, seconds, repeat)
    ingest_pct = statistics.median(w.groups["service"] for w in windows)

    cameras = ",".join(f"cam{i:02d}" for i in range(tiles))
    path = f"/api/mosaic/{grid_preset(tiles)}/webrtc?size={MOSAIC_SIZE}&fps={MOSAIC_FPS}"
    viewer = Viewer()
    try:
        await viewer.connect(service.port, f"{path}&cameras={cameras}", service.credentials.token)
        deadline = time.monotonic() + FIRST_FRAME_TIMEOUT_S
        while viewer.frames == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the mosaic viewer received no frame")
            await asyncio.sleep(0.1)
        await asyncio.sleep(SETTLE_S)
        frames_before, started = viewer.frames, time.monotonic()
        windows_b = await _windows(service, seconds, repeat)
        received_fps = (viewer.frames - frames_before) / (time.monotonic() - started)
        size = viewer.size
    finally:
        await viewer.close()
    mosaic_pct = statistics.median(w.groups["service"] for w in windows_b)
    each = [round(w.groups["service"] - ingest_pct, 1) for w in windows_b]
    return {
        "ingest_only_pct_of_core": round(ingest_pct, 1),
        "with_mosaic_pct_of_core": round(mosaic_pct, 1),
        "mosaic_pct_of_core": round(mosaic_pct - ingest_pct, 1),
        "mosaic_pct_of_core_per_window": each,
        "mosaic_cores": round((mosaic_pct - ingest_pct) / 100, 3),
        "budget_cores": BUDGET_CORES,
        "within_budget": (mosaic_pct - ingest_pct) / 100 <= BUDGET_CORES,
        "viewer_fps": round(received_fps, 1),
        # A busy machine makes the mosaic skip ticks, which also makes it cheaper: compare
        # runs by this, the cost of each frame the viewer received.
        "mosaic_ms_per_received_frame": round(10 * (mosaic_pct - ingest_pct) / received_fps, 2)
        if received_fps
        else None,
        "viewer_size": list(size) if size else None,
        "machine_pct_of_core": {
            "ingest_only": round(statistics.median(w.machine_pct for w in windows), 1),
            "with_mosaic": round(statistics.median(w.machine_pct for w in windows_b), 1),
        },
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    mounts = []
    for i in range(args.tiles):
        offset = (i * 0.37) % SOURCE.seconds  # cameras not in step, as real ones are not
        mounts.append(MountSpec(f"cam{i:02d}", SOURCE, start_offset_s=offset))
        mounts.append(MountSpec(f"cam{i:02d}-sub", SOURCE, start_offset_s=offset))
    with (
        tempfile.TemporaryDirectory(prefix="bench-mosaic-") as tmp,
        Children() as children,
        Simulator(mounts, clip_dir=args.cache_dir) as simulator,
    ):
        work = Path(tmp)
        port = free_port()
        config = work / "config.yaml"
        write_config(config, simulator, args.tiles, work / "data", port)
        service = ServiceProcess(children, config, port, work / "service.log")
        try:
            service.wait_ready(START_TIMEOUT_S)
            wait_online(service, args.tiles)
            time.sleep(SETTLE_S)
            results = asyncio.run(measure(service, args.tiles, args.seconds, args.repeat))
        finally:
            service.stop()
    return {
        "tiles": args.tiles,
        "layout": grid_preset(args.tiles),
        "mosaic": f"{MOSAIC_SIZE}p{MOSAIC_FPS}",
        "source": f"{SOURCE.width}x{SOURCE.height} {SOURCE.codec} {SOURCE.fps} fps",
        "window_s": args.seconds,
        **results,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    print(
        f"{results['tiles']} tiles -> {results['mosaic']}: "
        f"service {results['ingest_only_pct_of_core']}% of a core with ingest only, "
        f"{results['with_mosaic_pct_of_core']}% with the mosaic: "
        f"mosaic {results['mosaic_cores']} core (budget {BUDGET_CORES}; per window "
        f"{results['mosaic_pct_of_core_per_window']}%); viewer got {results['viewer_fps']} fps "
        f"at {results['viewer_size']} ({results['mosaic_ms_per_received_frame']} ms of CPU each)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0 if results["within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
