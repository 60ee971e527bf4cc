"""The log line of a session the node ends for silence says why, even when the worker's
report of the shut-down socket comes first (it takes the reason and clears it)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from surveillance.media.backoff import Backoff
from surveillance.media.connections import SessionSockets, SocketIndex
from surveillance.media.source import SourceOptions
from surveillance.media.stream import Stream
from surveillance.media.worker import IngestWorker
from tests.media.test_session_sockets import connection, inode


def test_a_session_ended_for_silence_is_logged_with_its_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = Stream("h1", ring_seconds=4, queue_packets=10, stall_after_s=1.0)
    worker = IngestWorker(stream, "rtsp://127.0.0.1/x", SourceOptions("tcp", 2.0, 3.0),
                          Backoff(0.2, 0.5), str)  # fmt: skip
    with connection() as (client, _server):
        reported = threading.Event()

        def reader() -> None:
            # The worker thread's part: FFmpeg reading the session's socket sees it end,
            # and the worker reports the failure.
            while client.recv(100):
                pass
            worker._report(OSError("End of file"))
            reported.set()

        class ReportFirst(SessionSockets):
            # Real sockets, shut down for real; only the order is made certain: the
            # worker's report lands before the monitor writes its log line (seen on a node
            # under load, not reproducible on demand otherwise).
            def shut_down_quiet(self, *args: object, **kwargs: object) -> int:
                done = super().shut_down_quiet(*args, **kwargs)  # type: ignore[arg-type]
                assert reported.wait(5)
                return done

        thread = threading.Thread(target=reader)
        thread.start()
        worker._sockets = ReportFirst({inode(client)})
        now = time.monotonic()
        stream.health.session_opened_at = now - 10  # opened 10 s ago, not a packet since
        with caplog.at_level(logging.WARNING, logger="surveillance.media.worker"):
            assert not worker.end_if_hung(now, 1.0, SocketIndex())  # the silence noted
            assert worker.end_if_hung(now + 0.5, 1.0, SocketIndex())  # and ended
        thread.join(5)
    ended = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stream h1: ")]
    assert ended == [
        "stream h1: no video for 3 s while the connection stayed open: closed by the node, "
        "to be re-opened"
    ]
    # The report took the reason: the camera's state says the same.
    assert stream.health.last_error is not None and "no video for 3 s" in stream.health.last_error
