"""A camera's stream after a client of it died abruptly (a node killed with SIGKILL) and
another client took it over, slowly, while other cameras of the same clip kept streaming:
the new client's frames come one frame interval apart, never re-timed by another camera."""

from __future__ import annotations

import itertools
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from surveillance.simulator import (
    ClipSpec,
    MountSpec,
    Simulator,
    SimulatorUnavailable,
    find_gst_python,
)
from tests.conftest import CLIP_CACHE, missing
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

CLIP = ClipSpec(width=320, height=240, fps=25, bitrate_kbps=400, gop_s=1.0, seconds=2.0)
FRAME_TICKS = 90_000 // 25  # RTP clock (90 kHz) per frame
# The taken-over camera, and two of the same clip half a second and a second behind it:
# they push the same access units of the clip later than it does.
MOUNTS = {"taken": 1.0, "behind1": 0.5, "behind2": 0.0}
# Between SETUP and PLAY, as a node opening many cameras at once after a failover: the
# media's first frames wait in its queue, blocked until the PLAY.
PLAY_DELAY_S = 1.2
FRAMES = 50

READER = """
import sys, threading, time, av
def read(url):
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=15) as c:
        for n, _ in enumerate(c.demux(video=0)):
            if n == 10:
                print(url, flush=True)
for url in sys.argv[1:]:
    threading.Thread(target=read, args=(url,), daemon=True).start()
time.sleep(3600)
"""


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    try:
        find_gst_python()
    except SimulatorUnavailable as exc:
        missing(str(exc))
    mounts = [MountSpec(path, CLIP, start_offset_s=offset) for path, offset in MOUNTS.items()]
    with Simulator(mounts, clip_dir=CLIP_CACHE) as simulator:
        yield simulator


def start_reader(urls: list[str]) -> subprocess.Popen[str]:
    """A real PyAV client in its own process, reading every URL over RTSP/TCP."""
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, *urls], stdout=subprocess.PIPE, text=True
    )
    assert reader.stdout is not None
    for _ in urls:  # each line: one URL read for 10 packets
        assert reader.stdout.readline(), "the reader died before reading"
    return reader


class RtspClient:
    """The few RTSP/1.0 requests (RFC 2326) a camera client makes, over one TCP connection
    with RTP interleaved in it (s.10.12): enough to hold back the PLAY, which FFmpeg cannot."""

    def __init__(self, url: str) -> None:
        self.url = url
        host, port = url.split("/")[2].split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.buffer = b""
        self.cseq = 0
        self.session = ""

    def request(self, method: str, url: str, *headers: str) -> dict[str, str]:
        self.cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self.cseq}", *headers]
        if self.session:
            lines.append(f"Session: {self.session}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = self._read_until(b"\r\n\r\n").decode()
        status, *fields = head.split("\r\n")
        assert " 200 " in status, f"{method}: {status}"
        reply = {k.strip().lower(): v.strip() for k, v in (f.split(":", 1) for f in fields if f)}
        self._read_exact(int(reply.get("content-length", "0")))
        if "session" in reply:
            self.session = reply["session"].split(";")[0]
        return reply

    def rtp_packet(self) -> bytes:
        """The next interleaved packet on channel 0 (RTP); RTCP on channel 1 is skipped."""
        while True:
            header = self._read_exact(4)
            assert header[:1] == b"$", f"not interleaved data: {header!r}"
            payload = self._read_exact(int.from_bytes(header[2:4], "big"))
            if header[1] == 0:
                return payload

    def _read_until(self, end: bytes) -> bytes:
        while end not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(end, 1)
        return head

    def _read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        assert data, "the server closed the connection"
        self.buffer += data


def test_a_camera_taken_over_after_its_client_was_killed_streams_at_the_frame_rate(
    sim: Simulator,
) -> None:
    # The other cameras of the clip stream to a client that stays.
    others = start_reader([sim.url("behind1"), sim.url("behind2")])
    try:
        # The node that read the camera is killed outright: no TEARDOWN, the socket just closes.
        victim = start_reader([sim.url("taken")])
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        wait_until(lambda: sim.status()["taken"]["clients"] == 0, 30, "the dead client gone")

        client = RtspClient(sim.url("taken"))
        try:
            client.request("DESCRIBE", client.url, "Accept: application/sdp")
            client.request(
                "SETUP", client.url + "/stream=0", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1"
            )
            time.sleep(PLAY_DELAY_S)  # the client's own pace, not a wait for the server
            client.request("PLAY", client.url, "Range: npt=0.000-")
            stamps: list[int] = []  # RTP timestamp of each frame, in arrival order
            while len(stamps) < FRAMES:  # the socket's timeout bounds each read
                packet = client.rtp_packet()
                stamp = int.from_bytes(packet[4:8], "big")
                if not stamps or stamp != stamps[-1]:
                    stamps.append(stamp)
        finally:
            client.sock.close()
    finally:
        others.kill()
        others.wait()
    steps = [(b - a) % 2**32 for a, b in itertools.pairwise(stamps)]
    # Each frame one frame interval after the one before: a frame re-timed by another
    # camera's clock jumps by seconds (and the client waits that long for it).
    assert steps == [FRAME_TICKS] * (FRAMES - 1), steps
