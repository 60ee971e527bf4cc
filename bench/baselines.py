"""Reference points measured on the same streams: ``ffmpeg -c copy`` and naive OpenCV decoding."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import Children, python_env
from bench.procstat import tcp_received, tcp_received_by_pid

RECEIVING_BYTES_PER_S = 50_000  # a 2 Mbit/s stream delivers ~250 kB/s; probing reads far less
OPENCV_OPEN_TIMEOUT_S = 45.0  # the reader itself gives up on a capture after 30 s


def ffmpeg_command(url: str) -> list[str]:
    """Receive and demux, write nothing: the floor of what any RTSP client costs."""
    return [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp",
        "-i", url, "-c", "copy", "-f", "null", "-",
    ]  # fmt: skip


def start_ffmpeg(children: Children, urls: Sequence[str], log: Path) -> list[subprocess.Popen[Any]]:
    return [children.spawn(ffmpeg_command(url), log=log) for url in urls]


def wait_receiving(
    server_ports: Sequence[int], pids: Sequence[int], timeout_s: float
) -> tuple[int, float]:
    """Wait until every process receives stream data: (how many do, seconds waited).

    ``-loglevel error`` prints nothing while all is well, so the sign of life is the bytes
    its connection to the simulator receives, growing at a stream's rate.
    """
    started = time.monotonic()
    receiving: set[int] = set()
    previous = tcp_received_by_pid(server_ports)
    while len(receiving) < len(pids) and time.monotonic() - started < timeout_s:
        time.sleep(1.0)
        now = tcp_received_by_pid(server_ports)
        for pid in pids:
            if now.get(pid, 0) - previous.get(pid, 0) >= RECEIVING_BYTES_PER_S:
                receiving.add(pid)
        previous = now
    return len(receiving), time.monotonic() - started


@dataclass(frozen=True)
class Reception:
    """What a phase's processes received from the simulator over its CPU windows."""

    kbps_per_stream: float  # all bytes received, over the phase's stream count
    flowing: int  # connections that received at least half a stream's nominal rate


def received_by(server_ports: Sequence[int], pids: Sequence[int]) -> dict[tuple[int, str], int]:
    """Bytes received so far per connection of ``pids`` to any of ``server_ports``."""
    wanted = set(pids)
    return {k: v for k, v in tcp_received(server_ports).items() if k[0] in wanted}


def reception(
    before: dict[tuple[int, str], int],
    after: dict[tuple[int, str], int],
    wall_s: float,
    streams: int,
    nominal_kbps: float,
) -> Reception:
    rates = [(after[k] - before.get(k, 0)) * 8 / 1000 / wall_s for k in after]
    return Reception(
        kbps_per_stream=sum(rates) / max(1, streams),
        flowing=sum(rate >= nominal_kbps / 2 for rate in rates),
    )


class OpenCvReader:
    """The :mod:`bench.opencv_reader` process, asked for its frame counts over a pipe."""

    def __init__(self, children: Children, urls: Sequence[str], log: Path) -> None:
        # Without this OpenCV's FFmpeg backend tries UDP first; the others all use TCP.
        env = python_env(OPENCV_FFMPEG_CAPTURE_OPTIONS="rtsp_transport;tcp")
        self.urls = list(urls)
        self.proc = children.spawn(
            [sys.executable, "-m", "bench.opencv_reader", *self.urls],
            log=log,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_opened(self) -> dict[str, Any]:
        """Block until every capture opened or failed: ``{"opened": n, "failed": [urls]}``."""
        line = self._read_line()
        opened: dict[str, Any] = json.loads(line)
        return opened

    def frame_counts(self) -> tuple[float, list[int]]:
        """(monotonic time, frames read so far per URL)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        reply = json.loads(self._read_line())
        return float(reply["t"]), [int(n) for n in reply["frames"]]

    def _read_line(self) -> str:
        assert self.proc.stdout is not None
        line: str = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the OpenCV reader exited (status {self.proc.wait()})")
        return line
