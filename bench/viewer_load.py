"""One viewer's load on the node, and what is left of it afterwards (issue 10, item 14).

One ``surveillance serve`` process ingests a few simulated cameras. One user (the bench
admin, API token) then does what acceptance testing did: asks for ten different 2160p
MJPEG mosaics, eight transcodes of one camera, and a thousand WebRTC offers it never
completes. The script prints how many of each were accepted (the rest get 429 from the
``limits``), the service's CPU, resident memory and open file descriptors at baseline,
under load, and after the load ended and the idle time-outs passed::

    python -m bench.viewer_load
    python -m bench.viewer_load --offers 200 --hold 5 --json load.json

Bounded: it runs for about a minute whatever happens, and is no test (figures vary by
machine); its numbers go in reports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from aiortc import RTCPeerConnection

from bench.procs import Children
from bench.procstat import measure_cpu, rss_mb
from bench.service import HOST, CameraEntry, ServiceProcess, free_port, write_config
from surveillance.simulator import ClipSpec, MountSpec, Simulator

SOURCE = ClipSpec(codec="h264", profile="main", width=1280, height=720, fps=25,
                  bitrate_kbps=2000, gop_s=1.0, seconds=4.0)  # fmt: skip
CAMERAS = 4
START_TIMEOUT_S = 60.0
SETTLE_S = 3.0
# After the load: the mosaic and transcoder idle time (10 s), the peers' connect deadline
# (15 s) and the on-demand reaper, with some slack.
AFTER_S = 30.0
MOSAICS = 10
TRANSCODES = 8


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.viewer_load", description=__doc__)
    parser.add_argument("--offers", type=int, default=1000, help="unanswered offers (1000)")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds of load measured")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path.home() / ".cache" / "surveillance",
        help="generated clips are kept here",
    )
    return parser.parse_args(argv)


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def snapshot(pid: int) -> dict[str, float]:
    return {"rss_mb": round(rss_mb(pid) or 0.0, 1), "fds": open_fds(pid)}


async def offer_sdp() -> str:
    peer = RTCPeerConnection()
    peer.addTransceiver("video", direction="recvonly")
    await peer.setLocalDescription(await peer.createOffer())
    sdp = str(peer.localDescription.sdp)
    await peer.close()
    return sdp


async def read_forever(client: httpx.AsyncClient, url: str, status: Counter[int]) -> None:
    """One MJPEG viewer: reads and drops the stream until cancelled."""
    async with client.stream("GET", url) as response:
        status[response.status_code] += 1
        if response.status_code != 200:
            return
        async for _ in response.aiter_bytes():
            pass


async def load(service: ServiceProcess, offers: int, hold_s: float) -> dict[str, Any]:
    pid = service.pid
    base = f"http://{HOST}:{service.port}"
    results: dict[str, Any] = {}
    async with httpx.AsyncClient(
        base_url=base, headers=service.credentials.headers(), timeout=30
    ) as client:
        # Ten different mosaics: a frame rate each, so none shares a renderer.
        mosaic_status: Counter[int] = Counter()
        cameras = ",".join(f"cam{i}" for i in range(CAMERAS))
        viewers = [
            asyncio.create_task(
                read_forever(
                    client,
                    f"/api/mosaic/2x2.mjpeg?size=2160&fps={fps}&cameras={cameras}",
                    mosaic_status,
                )
            )
            for fps in range(1, MOSAICS + 1)
        ]
        sdp = await offer_sdp()
        transcode_status: Counter[int] = Counter()
        for _ in range(TRANSCODES):
            body = {"camera": "cam0", "sdp": sdp, "transcode": True}
            transcode_status[(await client.post("/api/live/webrtc", json=body)).status_code] += 1
        offer_status: Counter[int] = Counter()
        started = time.monotonic()
        for _ in range(offers):
            answer = await client.post("/api/live/webrtc", json={"camera": "cam1", "sdp": sdp})
            offer_status[answer.status_code] += 1
        results["offers_s"] = round(time.monotonic() - started, 1)
        await asyncio.sleep(SETTLE_S)
        under = snapshot(pid)
        window = await asyncio.to_thread(measure_cpu, {"service": [pid]}, hold_s)
        under["cpu_pct_of_core"] = round(window.groups["service"], 1)
        for viewer in viewers:
            viewer.cancel()
        for viewer in viewers:
            with contextlib.suppress(asyncio.CancelledError):
                await viewer
    results.update(
        {
            "mosaics": dict(mosaic_status),
            "transcodes": dict(transcode_status),
            "offers": dict(offer_status),
            "under_load": under,
        }
    )
    return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    mounts = [
        MountSpec(f"cam{i}", SOURCE, start_offset_s=(i * 0.37) % SOURCE.seconds)
        for i in range(CAMERAS)
    ]
    with (
        tempfile.TemporaryDirectory(prefix="bench-viewer-load-") as tmp,
        Children() as children,
        Simulator(mounts, clip_dir=args.cache_dir) as simulator,
    ):
        work = Path(tmp)
        port = free_port()
        config = work / "config.yaml"
        cameras = [CameraEntry(f"cam{i}", simulator.url(f"cam{i}")) for i in range(CAMERAS)]
        write_config(config, cameras, work / "data", port)
        service = ServiceProcess(children, config, port, work / "service.log")
        try:
            service.wait_ready(START_TIMEOUT_S)
            service.wait_online(CAMERAS, START_TIMEOUT_S)
            time.sleep(SETTLE_S)
            pid = service.pid
            baseline = snapshot(pid)
            baseline["cpu_pct_of_core"] = round(
                measure_cpu({"service": [pid]}, args.hold).groups["service"], 1
            )
            results = asyncio.run(load(service, args.offers, args.hold))
            time.sleep(AFTER_S)
            after = snapshot(pid)
            after["cpu_pct_of_core"] = round(
                measure_cpu({"service": [pid]}, args.hold).groups["service"], 1
            )
        finally:
            service.stop()
    return {
        "source": f"{CAMERAS} x {SOURCE.width}x{SOURCE.height} {SOURCE.codec} {SOURCE.fps} fps",
        "baseline": baseline,
        **results,
        f"after_{AFTER_S:g}s": after,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
