"""Stopping a worker ends its connection to the camera at once, in whatever phase it is: the
pre-flight, FFmpeg's open (the RTSP handshake), waiting for video on an open session, or the
back-off between tries; and its thread (what ``ingest.reading`` reports) ends only once the
connection is closed. A node that lost a camera's lease stops it at its local deadline: a
connection left open past that is a camera read by two nodes.

Every time-out is set far above the waits here (60 s), so only the stop can end them."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from surveillance.media.backoff import Backoff
from surveillance.media.health import StreamState
from surveillance.media.source import SourceOptions
from surveillance.media.stream import Stream
from surveillance.media.worker import IngestWorker
from surveillance.simulator import Simulator
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

LONG_S = 60.0  # every time-out: the stop must end the connection long before
STOPPED_WITHIN_S = 10.0  # generous (a loaded CI machine); the stop itself takes a moment
_ESTABLISHED = "01"


def established_to(port: int) -> int:
    """How many ESTABLISHED TCP connections go to ``port`` on this machine's loopback, read
    from the kernel's table (not the worker's own bookkeeping)."""
    count = 0
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            count += remote_port == port and fields[3] == _ESTABLISHED
    return count


def worker_for(url: str) -> IngestWorker:
    stream = Stream("cam", ring_seconds=4, queue_packets=10, stall_after_s=1.0)
    options = SourceOptions("tcp", connect_timeout_s=LONG_S, read_timeout_s=LONG_S)
    return IngestWorker(stream, url, options, Backoff(LONG_S, LONG_S), str)


def stop_and_watch(worker: IngestWorker, port: int) -> None:
    """Stop the worker; the connection must close within STOPPED_WITHIN_S, and the thread
    must never be seen ended while a connection to the camera is still there."""
    worker.stop()

    def ended() -> bool:
        alive = not worker.join(0)
        open_now = established_to(port)  # read after: a thread seen ended has closed
        assert alive or open_now == 0, "the worker ended with its connection still open"
        return not alive

    wait_until(ended, STOPPED_WITHIN_S, "the stopped worker's thread to end")
    assert established_to(port) == 0


@contextmanager
def silent_server(answer_first: bool) -> Iterator[tuple[int, list[socket.socket]]]:
    """A TCP server that accepts and never says a word: a camera (or a gateway before it)
    that hangs in the RTSP handshake, which no simulator fault gives (its stall still
    answers DESCRIBE). ``answer_first``: close the first connection at once (the node's
    pre-flight, which then lets FFmpeg try), so FFmpeg's own open is the one that hangs."""
    accepted: list[socket.socket] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.2)
        done = threading.Event()

        def serve() -> None:
            while not done.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                if answer_first and not accepted:
                    conn.close()
                accepted.append(conn)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            yield listener.getsockname()[1], accepted
        finally:
            done.set()
            thread.join(5)
            for conn in accepted:
                conn.close()


@pytest.mark.parametrize("phase", ["pre-flight", "ffmpeg-open"])
def test_a_stop_ends_a_connection_hung_in_the_handshake(phase: str) -> None:
    with silent_server(answer_first=phase == "ffmpeg-open") as (port, accepted):
        worker = worker_for(f"rtsp://127.0.0.1:{port}/cam")
        worker.start()
        wanted = 2 if phase == "ffmpeg-open" else 1
        wait_until(lambda: len(accepted) >= wanted, STOPPED_WITHIN_S, f"{phase} connection")
        wait_until(lambda: established_to(port) >= 1, STOPPED_WITHIN_S, "an open connection")
        stop_and_watch(worker, port)
        assert len(accepted) == wanted  # no new try after the stop
        # Ended by the node, not by the camera: no failure of the camera's is reported.
        assert worker.stream.health.state is StreamState.CONNECTING


def test_a_stop_ends_a_session_waiting_for_video(simulator: Simulator) -> None:
    """The simulator's stall: the session opens and no video comes (waiting for the first
    keyframe, or demuxing a silent session)."""
    simulator.fault("stall", "stall")
    try:
        worker = worker_for(simulator.url("stall"))
        worker.start()
        wait_until(lambda: established_to(simulator.port) >= 1, STOPPED_WITHIN_S, "a session")
        stop_and_watch(worker, simulator.port)
    finally:
        simulator.fault("stall", "resume")


def test_a_stop_ends_a_reading_session_and_a_back_off_at_once(simulator: Simulator) -> None:
    worker = worker_for(simulator.url("cam00"))
    worker.start()
    wait_until(lambda: worker.stream.health.state is StreamState.ONLINE, 30, "video")
    stop_and_watch(worker, simulator.port)
    # A camera refusing connections: the worker sleeps its (60 s) back-off, and a stop
    # ends that sleep.
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    refused = worker_for(f"rtsp://127.0.0.1:{port}/cam")
    refused.start()
    wait_until(lambda: refused.stream.health.state is StreamState.OFFLINE, 30, "a refusal")
    refused.stop()
    assert refused.join(STOPPED_WITHIN_S)
