"""Measure the simulator's CPU with N 720p 2 Mbit/s mounts, one ``ffmpeg -c copy`` client each.

Not a test (timing is never asserted): run it by hand,
``python -m bench.simulator_cpu 20 200``. It prints the server's CPU as a
percentage of one core, averaged over the measurement window, and the clients' total.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from surveillance.simulator import ClipSpec, MountSpec, Simulator

CLIENT_SETTLE_S = 8.0  # time for every client to connect and reach steady state
MEASURE_S = 20.0
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, softirq included, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def bytes_sent(port: int) -> int:
    """Bytes the server has sent on all its TCP connections (from ``ss -ti``)."""
    out = subprocess.run(
        ["ss", "-tinH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum(int(m) for m in re.findall(r"bytes_sent:(\d+)", out))


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


async def _raw_clients(urls: list[str], seconds: float) -> list[int]:
    received = [0] * len(urls)
    tasks = [asyncio.create_task(_raw_client(u, received, i)) for i, u in enumerate(urls)]
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return received


def measure_raw(count: int, clip_dir: Path) -> None:
    """Same load, but one asyncio process reads every stream: no per-client process cost."""
    spec = ClipSpec(width=1280, height=720, bitrate_kbps=2000, fps=25, seconds=10)
    mounts = [MountSpec(f"cam{i}", spec, start_offset_s=(i * 2.0) % 10) for i in range(count)]
    with Simulator(mounts, clip_dir=clip_dir) as sim:
        pid = sim.pid
        assert pid is not None
        urls = [sim.url(f"cam{i}") for i in range(count)]
        result: list[float] = []

        def sample() -> None:
            time.sleep(CLIENT_SETTLE_S)
            cpu0, sent0, wall0 = cpu_seconds(pid), bytes_sent(sim.port), time.monotonic()
            time.sleep(MEASURE_S)
            wall = time.monotonic() - wall0
            result.extend(
                [
                    (cpu_seconds(pid) - cpu0) / wall * 100,
                    (bytes_sent(sim.port) - sent0) * 8 / wall / 1e6,
                ]
            )

        sampler = threading.Thread(target=sample)
        sampler.start()
        asyncio.run(_raw_clients(urls, CLIENT_SETTLE_S + MEASURE_S + 1))
        sampler.join()
        server, mbps = result
        print(
            f"{count} mounts, raw clients: server {server:.1f}% of one core, "
            f"sent {mbps:.0f} Mbit/s ({mbps / count:.2f} per client)",
            flush=True,
        )


def measure(count: int, clip_dir: Path) -> None:
    spec = ClipSpec(width=1280, height=720, bitrate_kbps=2000, fps=25, seconds=10)
    mounts = [MountSpec(f"cam{i}", spec, start_offset_s=(i * 2.0) % 10) for i in range(count)]
    clients: list[subprocess.Popen[bytes]] = []
    with Simulator(mounts, clip_dir=clip_dir) as sim:
        try:
            for i in range(count):
                clients.append(
                    subprocess.Popen(
                        [
                            "ffmpeg",
                            "-nostdin",
                            "-v",
                            "error",
                            "-rtsp_transport",
                            "tcp",
                            "-i",
                            sim.url(f"cam{i}"),
                            "-c",
                            "copy",
                            "-f",
                            "null",
                            "-",
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
                time.sleep(0.02)  # do not hit the server with 200 DESCRIBEs at once
            time.sleep(CLIENT_SETTLE_S)
            pid = sim.pid
            assert pid is not None
            connected = sum(m["clients"] for m in sim.status().values())
            server0 = cpu_seconds(pid)
            clients0 = sum(cpu_seconds(c.pid) for c in clients if c.poll() is None)
            sent0 = bytes_sent(sim.port)
            busy0, total0 = machine_busy()
            wall0 = time.monotonic()
            time.sleep(MEASURE_S)
            wall = time.monotonic() - wall0
            mbps = (bytes_sent(sim.port) - sent0) * 8 / wall / 1e6
            busy1, total1 = machine_busy()
            machine = (busy1 - busy0) / (total1 - total0) * 100
            server = (cpu_seconds(pid) - server0) / wall * 100
            alive = [c for c in clients if c.poll() is None]
            client_cpu = (sum(cpu_seconds(c.pid) for c in alive) - clients0) / wall * 100
            queued = [m["queued_bytes"] for m in sim.status().values()]
            print(f"appsrc queue max {max(queued)} mean {sum(queued) / len(queued):.0f} bytes")
            print(
                f"{count} mounts, {connected} clients connected, {len(alive)} alive: "
                f"server {server:.1f}% of one core, clients total {client_cpu:.1f}%, "
                f"sent {mbps:.0f} Mbit/s ({mbps / max(1, connected):.2f} per client), "
                f"whole machine {machine:.0f}% busy",
                flush=True,
            )
        finally:
            for client in clients:
                client.kill()
            for client in clients:
                client.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("counts", nargs="+", type=int)
    parser.add_argument("--clip-dir", type=Path, default=Path(tempfile.gettempdir()) / "sim-clips")
    parser.add_argument("--raw", action="store_true", help="one asyncio reader, not ffmpeg")
    args = parser.parse_args()
    for count in args.counts:
        (measure_raw if args.raw else measure)(count, args.clip_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
