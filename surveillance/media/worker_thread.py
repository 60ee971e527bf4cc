"""The life cycle every ingest worker shares: one thread, reconnect with back-off, forever.

The RTSP worker (media/worker.py) and the GB/T 28181 one (media/gb_worker.py) differ in how a
session is opened and read; how their thread starts, stops, retries and ends is one story,
told here once, so the ingest service, the monitor and every consumer see both alike.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

from surveillance.media.backoff import Backoff
from surveillance.media.health import StreamState
from surveillance.media.source import SourceOptions, describe_error
from surveillance.media.stream import Stream


class ReconnectingWorker(ABC):
    """A thread that runs :meth:`_session` again and again, with back-off between tries,
    until :meth:`stop`; each session's failure goes to :meth:`_report`, which reads it in
    the worker's own terms and records it with :meth:`_set_offline`."""

    # The thread is named "<prefix>:<stream key>" (seen in thread dumps and profilers).
    thread_name_prefix: ClassVar[str]

    def __init__(
        self,
        stream: Stream,
        options: SourceOptions,
        backoff: Backoff,
        redact: Callable[[str], str],
    ) -> None:
        self.stream = stream
        self._options = options
        self._backoff = backoff
        self._redact = redact
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def _session(self) -> None:
        """Open one session and deliver from it until it ends or the worker is stopped;
        raise why it ended (a return is taken for a stop)."""

    @abstractmethod
    def _report(self, exc: BaseException) -> None:
        """Record why a session failed or ended (:meth:`_set_offline`)."""

    def start(self) -> None:
        """Start the thread, or keep a thread that was asked to stop but has not yet."""
        self._stop.clear()
        # Whoever (re)starts the worker wants a fresh attempt, not the last run's verdict.
        self.stream.health.failed_attempts = 0
        if self._thread is not None and self._thread.is_alive():
            # Asked to stop a moment ago (an on-demand stream parked as idle, its ring
            # cleared) and wanted again before its thread ended: the kept thread delivers
            # on, and a waiter must wait for its next keyframe, not read "idle" and give up.
            if self.stream.health.state is StreamState.IDLE:
                self.stream.health.set_state(StreamState.CONNECTING)
            return
        self.stream.health.set_state(StreamState.CONNECTING)
        # Daemon: a thread blocked in a read on a silent socket must not hold up exit;
        # it ends by itself within its read time-out once stop() is called.
        self._thread = threading.Thread(
            target=self._run, name=f"{self.thread_name_prefix}:{self.stream.key}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end, and end at once what it is blocked in (:meth:`_interrupt`):
        a stopped camera may already be read by another node."""
        self._stop.set()
        self._interrupt()

    def _interrupt(self) -> None:  # noqa: B027 - optional: a worker may have nothing to end
        """End the session's blocking call now (from any thread), if the worker can; else
        the thread ends when that call returns by itself. A back-off sleep ends at once."""

    def join(self, timeout: float | None = None) -> bool:
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    @property
    def running(self) -> bool:
        """True while the thread is alive and has not been asked to stop."""
        alive = self._thread is not None and self._thread.is_alive()
        return alive and not self._stop.is_set()

    def _run(self) -> None:
        health = self.stream.health
        while not self._stop.is_set():
            # A camera retrying after a failure stays offline with its reason, since the
            # time it went offline: "connecting" would hide it, and reset its "since".
            if health.failed_attempts == 0:
                health.set_state(StreamState.CONNECTING)
            health.set_retry(None, attempting=True)
            try:
                self._session()
            except Exception as exc:
                self._report(exc)
            if self._stop.is_set():
                break
            health.reconnects += 1
            delay = self._backoff.next_delay()
            health.set_retry(time.time() + delay, attempting=False)
            self._stop.wait(delay)
        health.set_retry(None, attempting=False)
        self.stream.close_consumers()

    def _set_offline(self, exc: BaseException) -> None:
        """Put the stream offline with the operator's reading of ``exc`` (redacted)."""
        health = self.stream.health
        was_receiving = health.state in (StreamState.ONLINE, StreamState.STALLED)
        error = describe_error(
            exc,
            while_opening=not was_receiving,
            timeout_s=(
                self._options.read_timeout_s if was_receiving else self._options.connect_timeout_s
            ),
        )
        message = self._redact(error.message)
        repeated = health.last_error == message and not was_receiving
        health.failed_attempts += 1
        health.set_error(
            error.kind, message, StreamState.OFFLINE, credentials_exposed=error.credentials_exposed
        )
        # Hundreds of cameras retrying forever: say it once, not at every attempt. Logged
        # under the worker's own module (media.worker, media.gb_worker), where one looks.
        logging.getLogger(type(self).__module__).log(
            logging.DEBUG if repeated else logging.WARNING,
            "stream %s offline: %s", self.stream.key, message,
        )  # fmt: skip
