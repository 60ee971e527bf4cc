"""What feeds a camera stream: the ingest source protocol, the factories that make one per
camera kind, and the stand-in for a kind this node has no source for.

The RTSP worker (media/worker.py) is one source; a GB/T 28181 channel's worker
(media/gb_worker.py) is another. The ingest service picks the factory by
``Camera.source_kind`` (the URL's scheme), so a new kind of camera is a new factory
registered at start (``IngestService.register_source``), not a change to the ingest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from surveillance.catalog import Camera
from surveillance.media.connections import SocketIndex
from surveillance.media.health import ErrorKind, StreamState
from surveillance.media.stream import Stream


class IngestSource(Protocol):
    """One camera stream's reader: a thread that connects, delivers into ``stream``
    (``Stream.deliver``), reconnects with back-off, and closes the stream's consumers when it
    ends. ``media.worker.IngestWorker`` is the model."""

    stream: Stream

    def start(self) -> None:
        """Start reading (or keep a thread that was asked to stop but has not yet)."""
        ...

    def stop(self) -> None:
        """Ask the thread to end; returns at once."""
        ...

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; True if it has."""
        ...

    @property
    def running(self) -> bool:
        """True while the thread is alive and has not been asked to stop."""
        ...

    def end_if_hung(self, now: float, stall_after_s: float, index: SocketIndex) -> bool:
        """Called by the monitor twice a second: end a session silent for too long (a
        source with its own read time-out returns False)."""
        ...


# (the stream to feed, the camera, whether it is the sub-stream) -> its source
WorkerFactory = Callable[[Stream, Camera, bool], IngestSource]


class MissingSource:
    """The source of a camera whose kind has no factory on this node (a GB/T 28181 channel
    on a node without the GB service): it never connects, and every start shows the stream
    offline with the reason, so a viewer, snapshot or recorder is told at once."""

    def __init__(self, stream: Stream, kind: str) -> None:
        self.stream = stream
        self.reason = f"no {kind} source on this node"

    def start(self) -> None:
        self.stream.health.set_error(ErrorKind.UNSUPPORTED, self.reason, StreamState.OFFLINE)

    def stop(self) -> None:
        pass

    def join(self, timeout: float | None = None) -> bool:
        return True

    @property
    def running(self) -> bool:
        return False

    def end_if_hung(self, now: float, stall_after_s: float, index: SocketIndex) -> bool:
        return False
