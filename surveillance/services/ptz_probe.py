"""Which ONVIF cameras can be steered, learnt from their devices before anyone asks.

A camera whose ``onvif`` section does not say ``ptz`` would otherwise count as steerable
(the camera list's ``ptz``, the wall's PTZ button) until someone opened its pad and the
device said no. So the node holding the camera asks its device in the background soon
after start (and a camera it takes over, at its next round): connect, read the media
profiles (one with a PTZ configuration: PTZ), disconnect. A few devices at a time, each
within the ONVIF request timeout; start never waits for it. A device that does not answer
stays unknown (steerable as far as known) and is asked again after :data:`PROBE_AGAIN_S`;
its timeout is remembered by its driver, so the first clicks on it are answered at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from surveillance.catalog import Catalog
from surveillance.errors import SurveillanceError
from surveillance.services.ptz_drivers import OnvifPtzDriver, PtzDrivers

log = logging.getLogger(__name__)

ROUND_S = 5.0  # how often the held ONVIF cameras are looked at for a probe due
CONCURRENCY = 8  # devices probed at once (each a connection and two or three requests)
PROBE_AGAIN_S = 60.0  # a probe that failed (device down or hung) is tried again after this
NO_PTZ_AGAIN_S = 3600.0  # a device found without PTZ is asked again after this (replaced?)


class PtzProbe:
    def __init__(self, catalog: Catalog, drivers: PtzDrivers, holds: Callable[[str], bool]) -> None:
        """``holds(camera_id)``: whether this node holds the camera (its owner asks it)."""
        self._catalog = catalog
        self._drivers = drivers
        self._holds = holds
        self._probed: dict[str, float] = {}  # camera -> monotonic time of its last probe
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._forever(), name="ptz-probe")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _forever(self) -> None:
        while True:
            try:
                await self.probe_due()
            except Exception:  # the next round tries again
                log.exception("ptz: probing the ONVIF devices failed")
            await asyncio.sleep(ROUND_S)

    async def probe_due(self) -> None:
        """Ask the devices of the held ONVIF cameras whose configuration does not say
        whether they have PTZ and whose answer is not known (or was no, long ago)."""
        now = time.monotonic()
        cameras = list(self._catalog.cameras.values())
        self._probed = {k: v for k, v in self._probed.items() if k in self._catalog.cameras}
        due: list[tuple[str, OnvifPtzDriver]] = []
        for camera in cameras:
            if camera.onvif is None or camera.onvif.ptz is not None or not camera.enabled:
                continue
            if not self._holds(camera.id):
                continue
            driver = self._drivers.onvif_driver(camera)
            if driver is None or driver.has_ptz is True:
                continue
            again = NO_PTZ_AGAIN_S if driver.has_ptz is False else PROBE_AGAIN_S
            if now - self._probed.get(camera.id, -math.inf) >= again:
                self._probed[camera.id] = now
                due.append((camera.id, driver))
        gate = asyncio.Semaphore(CONCURRENCY)

        async def probe(camera_id: str, driver: OnvifPtzDriver) -> None:
            async with gate:
                try:
                    await driver.probe()
                except SurveillanceError as exc:  # remembered by the driver; asked again later
                    log.info("ptz: the device of camera %s was not probed: %s", camera_id, exc)

        await asyncio.gather(*(probe(camera_id, driver) for camera_id, driver in due))
