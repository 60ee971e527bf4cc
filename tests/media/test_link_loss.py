"""The link to a camera goes down while something on the way still answers: the camera's
error must say time-out, then unreachable, never "invalid data" (kind ``protocol``, which
tells the operator the camera sends garbage) and never FFmpeg's raw error number.

The camera is the real simulator, reached through a TCP relay on loopback. "Link down" is
the relay's own fault, and it is the one fake here, as no real part gives it without a
network: what a gateway or NAT does when the camera behind it is gone. Open connections
are held and carry nothing more (the camera's packets are lost), and new connections are
accepted and closed at once. Without this fix each retry failed 250 ms after the re-open
with "[Errno 1094995529] Invalid data found when processing input".
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from surveillance.media.backoff import Backoff
from surveillance.media.connections import SocketIndex
from surveillance.media.health import ErrorKind, StreamState
from surveillance.media.source import SourceOptions
from surveillance.media.stream import Stream
from surveillance.media.worker import IngestWorker
from surveillance.simulator import Simulator
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

READ_TIMEOUT_S = 3.0
STALL_AFTER_S = 1.0


class Relay:
    """A TCP relay on loopback to ``target``; ``link_down()`` cuts the far side."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._down = threading.Event()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def link_down(self) -> None:
        self._down.set()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._down.is_set():
                client.close()  # the gateway answers, the camera behind it cannot
                continue
            server = socket.create_connection(self._target, timeout=5)
            self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(None)
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            if self._down.is_set():
                continue  # lost on the way; the connection stays open, as a cut link does
            try:
                sink.sendall(data)
            except OSError:
                return


@pytest.fixture
def relay(simulator: Simulator) -> Iterator[Relay]:
    relay = Relay(("127.0.0.1", simulator.port))
    try:
        yield relay
    finally:
        relay.close()


def test_a_link_loss_reads_as_time_out_then_unreachable_never_invalid_data(
    simulator: Simulator, relay: Relay
) -> None:
    url = simulator.url("cam07").replace(f":{simulator.port}/", f":{relay.port}/")
    stream = Stream("cam07", ring_seconds=4, queue_packets=100, stall_after_s=STALL_AFTER_S)
    worker = IngestWorker(
        stream, url, SourceOptions("tcp", 2.0, READ_TIMEOUT_S), Backoff(0.2, 0.5), str
    )
    health = stream.health
    errors: list[tuple[ErrorKind | None, str | None]] = []
    worker.start()
    try:
        wait_until(lambda: health.state is StreamState.ONLINE, 20, "online through the relay")
        relay.link_down()
        deadline = time.monotonic() + READ_TIMEOUT_S + 6.0
        while time.monotonic() < deadline:
            # The ingest monitor's part: the node ends a session that stays silent.
            worker.end_if_hung(time.monotonic(), STALL_AFTER_S, SocketIndex())
            error = (health.last_error_kind, health.last_error)
            if error[1] is not None and (not errors or errors[-1] != error):
                errors.append(error)
            time.sleep(0.1)
    finally:
        worker.stop()
        worker.join(5)
    print(errors)
    assert errors, "the link loss was never reported"
    # The session the node shut down keeps its time-out as the reason.
    assert errors[0][0] is ErrorKind.TIMEOUT, errors
    assert health.reconnects >= 2, "no retry while the link was down"
    # Every retry while the link is down: unreachable, in words.
    assert errors[-1][0] is ErrorKind.UNREACHABLE, errors
    assert all(kind is not ErrorKind.PROTOCOL for kind, _ in errors), errors
    assert not any("Errno" in (message or "") for _, message in errors), errors
    assert health.warning_kind is not ErrorKind.PROTOCOL
