"""The simulator's own CPU with N 720p 2 Mbit/s cameras, each read by one RTSP client.

Not a test (timing is never asserted): run it by hand, for example::

    python -m bench.simulator_cpu 300 --repeat 3                # unshared, 25 mounts a process
    python -m bench.simulator_cpu 300 --repeat 3 --shared       # shared mounts, one process

The cameras are the ingest benchmark's (``bench.cameras.staggered_mounts``: one clip, five
start offsets). Unshared, they are split into processes of ``--mounts-per-process`` as
``bench.ingest`` used to; shared (``MountSpec.shared``), every camera with the same start
offset is served by one media, all in one process. The clients are one asyncio process
of minimal RTSP/TCP readers (DESCRIBE, SETUP interleaved, PLAY, read and discard), or with
``--ffmpeg`` one ``ffmpeg -c copy`` process per camera. Printed per window: the simulator's
CPU (all its processes, % of one core), the clients', the whole machine's, and what the
clients received (Mbit/s per camera, and how many cameras got at least half the clip's
rate). The figure quoted is the median over ``--repeat`` windows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.baselines import ffmpeg_command
from bench.cameras import camera_ids, staggered_mounts
from bench.harness import CLIP_CACHE
from bench.procs import Children
from bench.procstat import measure_cpu, tcp_received_by_pid
from bench.stats import median
from surveillance.simulator import ClipSpec, SimulatorFleet, ensure_clip

CLIP = ClipSpec(profile="high", bitrate_kbps=2000, gop_s=2.0, seconds=10.0)  # bench.ingest's
CLIENT_SETTLE_S = 8.0  # for every client to connect and reach steady state
CONNECT_GAP_S = 0.01  # between two clients' connections: no burst of hundreds of DESCRIBEs


async def _raw_client(url: str, received: list[int], index: int) -> None:
    """Minimal RTSP/TCP client: DESCRIBE, SETUP interleaved, PLAY, then read and discard."""
    host_port = url.removeprefix("rtsp://").split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    cseq = 0

    async def request(method: str, target: str, headers: str = "") -> str:
        nonlocal cseq
        cseq += 1
        writer.write(f"{method} {target} RTSP/1.0\r\nCSeq: {cseq}\r\n{headers}\r\n".encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        length = re.search(r"Content-Length: (\d+)", head)
        body = (await reader.readexactly(int(length.group(1)))).decode() if length else ""
        return head + body

    sdp = await request("DESCRIBE", url, "Accept: application/sdp\r\n")
    control = re.findall(r"a=control:(\S+)", sdp)[-1]
    track = control if control.startswith("rtsp://") else f"{url}/{control}"
    setup = await request("SETUP", track, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
    session = re.search(r"Session: ([^;\r]+)", setup)
    assert session, setup
    await request("PLAY", url, f"Session: {session.group(1)}\r\nRange: npt=0-\r\n")
    while chunk := await reader.read(1 << 16):
        received[index] += len(chunk)


class RawClients:
    """Every camera read by a minimal client, all in one asyncio loop in a thread of ours."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.received = [0] * len(urls)
        self._urls = list(urls)
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._thread.start()

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        tasks = []
        for index, url in enumerate(self._urls):
            tasks.append(asyncio.create_task(_raw_client(url, self.received, index)))
            await asyncio.sleep(CONNECT_GAP_S)
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def _received(raw: RawClients | None, ports: list[int], pids: list[int]) -> list[int]:
    """Bytes each client has received so far: counted by the raw clients themselves, or
    for ffmpeg read from the kernel's tcp_info of its connection."""
    if raw is not None:
        return list(raw.received)
    by_pid = tcp_received_by_pid(ports)
    return [by_pid.get(pid, 0) for pid in pids]


def measure(args: argparse.Namespace, count: int) -> dict[str, Any]:
    clip = replace(CLIP, seconds=args.clip_seconds)
    ensure_clip(clip, args.clip_dir)
    ids = camera_ids(count)
    mounts = [replace(m, shared=args.shared) for m in staggered_mounts(ids, clip)]
    per_process = count if args.shared else args.mounts_per_process
    rates: list[list[float]] = []
    with (
        SimulatorFleet(mounts, clip_dir=args.clip_dir, mounts_per_process=per_process) as sim,
        Children() as children,
    ):
        urls = [sim.url(i) for i in ids]
        raw = None
        if args.ffmpeg:
            procs = []
            for url in urls:
                procs.append(children.spawn(ffmpeg_command(url)))
                time.sleep(CONNECT_GAP_S)
            client_pids = [p.pid for p in procs]
        else:
            raw = RawClients(urls)
            client_pids = [os.getpid()]  # the raw clients run in this process
        try:
            time.sleep(CLIENT_SETTLE_S + CONNECT_GAP_S * count)
            windows = []
            for _ in range(args.repeat):
                before = _received(raw, sim.ports, client_pids)
                window = measure_cpu({"simulator": sim.pids, "clients": client_pids}, args.seconds)
                windows.append(window)
                after = _received(raw, sim.ports, client_pids)
                rates.append(
                    [(a - b) * 8 / window.wall_s / 1e6 for a, b in zip(after, before, strict=True)]
                )
            status = sim.status()
        finally:
            if raw is not None:
                raw.close()
    nominal = clip.bitrate_kbps / 1000
    result: dict[str, Any] = {
        "cameras": count,
        "shared": args.shared,
        "processes": -(-count // per_process),
        "connected": sum(int(m["clients"]) for m in status.values()),
        "simulator_pct": [round(w.groups["simulator"], 1) for w in windows],
        "clients_pct": [round(w.groups["clients"], 1) for w in windows],
        "machine_pct": [round(w.machine_pct, 1) for w in windows],
    }
    if rates:
        result["mbps_per_camera"] = [round(sum(r) / count, 2) for r in rates]
        result["flowing"] = [sum(x >= nominal / 2 for x in r) for r in rates]
    result["simulator_pct_median"] = median(result["simulator_pct"])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("counts", nargs="+", type=int, help="camera counts to measure in turn")
    parser.add_argument("--shared", action="store_true", help="shared mounts (one process)")
    parser.add_argument("--mounts-per-process", type=int, default=25, help="unshared only")
    parser.add_argument("--ffmpeg", action="store_true", help="ffmpeg -c copy clients")
    parser.add_argument("--seconds", type=float, default=20.0, help="CPU window")
    parser.add_argument("--repeat", type=int, default=3, help="windows")
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("--clip-dir", type=Path, default=CLIP_CACHE)
    args = parser.parse_args(argv)
    for count in args.counts:
        print(measure(args, count), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
