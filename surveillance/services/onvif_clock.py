"""Camera clocks: how far each ONVIF camera's clock is from the server's.

A camera stamps its pictures (the time burnt into the image, its events' times) by its own
clock; an investigator comparing them with the server's times must know the difference. So
for every ONVIF camera this node holds, the offset (device UTC minus server UTC, from
GetSystemDateAndTime, which the ONVIF Core Specification's access classes put in PRE_AUTH:
anyone may read it before authenticating) is read at start (and at once for a camera taken
over from another node) and every ``onvif.clock_check_s``, shown in the camera's health, and
recorded on evidence items made from its footage. A camera further off than
``onvif.clock_offset_warn_s`` is flagged and gets one ``camera.clock`` warning event, which
ends when a later reading finds the clock back within the limit.

A reading that fails (the camera is down) keeps the last one: the clock did not change
because it could not be asked, and ``measured_at`` says how old it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from surveillance.catalog import Camera, Catalog, OnvifEndpoint
from surveillance.config.models import OnvifConfig
from surveillance.events.records import EventSpec, EventType, Severity
from surveillance.onvif.client import OnvifClient
from surveillance.onvif.errors import OnvifError

log = logging.getLogger(__name__)

READ_CONCURRENCY = 16  # clocks read at once (each a short HTTP request)
# How often the held cameras are looked at: each is read when clock_check_s has passed since
# its last attempt, and a camera this node has just taken over (cluster mode) at once.
ROUND_S = 5.0
LOG_EVERY_S = 600.0  # a camera whose clock cannot be read says so this often at most


class EventSink(Protocol):
    """What the clocks need of the event bus (services/event_bus.py EventBus)."""

    def raise_event(self, spec: EventSpec) -> Any: ...

    def end_event(self, key: str, at: float | None = None) -> Any: ...


@dataclass(frozen=True)
class ClockReading:
    offset_s: float  # device UTC minus server UTC, at the request's midpoint
    measured_at: float  # wall time of the reading
    flagged: bool  # |offset_s| > onvif.clock_offset_warn_s


async def read_offset(endpoint: OnvifEndpoint, timeout_s: float) -> float:
    """The device's clock offset (OnvifError when it cannot be read)."""
    async with OnvifClient(
        endpoint.url, endpoint.username, endpoint.password, timeout_s=timeout_s
    ) as client:
        return await client.clock_offset_s()


def clock_key(camera_id: str) -> str:
    return f"camera.clock:{camera_id}"


def _ahead_or_behind(offset_s: float) -> str:
    way = "ahead of" if offset_s >= 0 else "behind"
    return f"{abs(offset_s):.1f} s {way} the server's"


class CameraClocks:
    def __init__(
        self,
        catalog: Catalog,
        holds: Callable[[str], bool],
        events: EventSink,
        config: OnvifConfig,
        on_change: Callable[[str], None],
    ) -> None:
        """``holds``: whether this node holds the camera (cluster mode: its owner reads its
        clock); ``on_change(camera_id)``: a reading changed what its health shows."""
        self._catalog = catalog
        self._holds = holds
        self._events = events
        self._config = config
        self._on_change = on_change
        self._readings: dict[str, ClockReading] = {}  # replaced whole: read by any thread
        self._failed_logged: dict[str, float] = {}
        self._attempted: dict[str, float] = {}  # monotonic time of each camera's last read
        self._task: asyncio.Task[None] | None = None

    # -- what others read (any thread) ------------------------------------------------------
    def reading(self, camera_id: str) -> ClockReading | None:
        return self._readings.get(camera_id)

    def offset_and_flag(self, camera_id: str) -> tuple[float | None, bool]:
        """For the camera's health and its evidence (services/device_health.py)."""
        reading = self._readings.get(camera_id)
        return (None, False) if reading is None else (reading.offset_s, reading.flagged)

    # -- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._check_forever(), name="onvif-clocks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _check_forever(self) -> None:
        while True:
            try:
                await self._round()
            except Exception:  # never ends the loop; the next round reads them again
                log.exception("camera clocks: a round failed")
            await asyncio.sleep(ROUND_S)

    # -- one round ----------------------------------------------------------------------------
    def _cameras(self) -> list[Camera]:
        return [
            camera
            for camera in self._catalog.cameras.values()
            if camera.onvif is not None and camera.enabled and self._holds(camera.id)
        ]

    async def _round(self) -> None:
        """Read the clocks of the held ONVIF cameras that are due (bounded concurrency)."""
        cameras = self._cameras()
        held = {camera.id for camera in cameras}
        self._attempted = {k: v for k, v in self._attempted.items() if k in held}
        gone = [camera_id for camera_id in self._readings if camera_id not in held]
        if gone:  # let go (cluster mode): its new owner reads it, raises or ends its flag
            self._readings = {k: v for k, v in self._readings.items() if k in held}
            for camera_id in gone:
                self._on_change(camera_id)
        gate = asyncio.Semaphore(READ_CONCURRENCY)

        async def one(camera: Camera) -> None:
            async with gate:
                await self._check(camera)

        now = time.monotonic()
        due = [
            camera
            for camera in cameras
            if now - self._attempted.get(camera.id, -math.inf) >= self._config.clock_check_s
        ]
        for camera in due:
            self._attempted[camera.id] = now
        await asyncio.gather(*(one(camera) for camera in due))

    async def _check(self, camera: Camera) -> None:
        endpoint = camera.onvif
        if endpoint is None:
            return
        try:
            offset = await read_offset(endpoint, self._config.request_timeout_s)
        except OnvifError as error:
            now = time.monotonic()
            if now - self._failed_logged.get(camera.id, -LOG_EVERY_S) >= LOG_EVERY_S:
                self._failed_logged[camera.id] = now
                log.warning("camera clocks: %s: %s", camera.id, error)
            return
        self._failed_logged.pop(camera.id, None)
        flagged = abs(offset) > self._config.clock_offset_warn_s
        before = self._readings.get(camera.id)
        reading = ClockReading(offset, time.time(), flagged)
        if not self._holds(camera.id):
            return  # let go while it was read
        self._readings = {**self._readings, camera.id: reading}
        if (
            before is None
            or round(before.offset_s, 1) != round(offset, 1)
            or (before.flagged != flagged)
        ):
            self._on_change(camera.id)
        await self._tell_bus(camera, reading, before)

    async def _tell_bus(
        self, camera: Camera, reading: ClockReading, before: ClockReading | None
    ) -> None:
        try:
            if reading.flagged:
                # Raised at every reading while off: one event (its key), updated with the
                # newest offset.
                spec = EventSpec(
                    type=EventType.CAMERA_CLOCK,
                    severity=Severity.WARNING,
                    key=clock_key(camera.id),
                    summary=f"{camera.name}: clock {_ahead_or_behind(reading.offset_s)}",
                    camera_id=camera.id,
                    platform_id=camera.platform_id,
                    detail={
                        "offset_s": round(reading.offset_s, 3),
                        "warn_s": self._config.clock_offset_warn_s,
                    },
                )
                await asyncio.to_thread(self._events.raise_event, spec)
            elif before is None or before.flagged:
                # Back within the limit (or the first reading since the node started: a
                # flag a previous owner left active ends with it).
                await self._end_flag(camera.id)
        except Exception:  # the database may be full or gone: the readings stand
            log.exception("camera clocks: the clock event of %s not written", camera.id)

    async def _end_flag(self, camera_id: str) -> None:
        try:
            await asyncio.to_thread(self._events.end_event, clock_key(camera_id))
        except Exception:  # the database may be full or gone
            log.exception("camera clocks: the clock event of %s not ended", camera_id)
