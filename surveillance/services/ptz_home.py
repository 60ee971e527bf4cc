"""The idle return home: a camera steered and then left alone goes to its home preset.

A camera steered and left alone for ``idle_home_s`` goes to its home preset (ONVIF
``home_preset``, else the device's home position; a GB/T 28181 channel has none) and its
lease ends. The lease rows say which cameras were steered, so the node holding the camera
does it, after a restart or a hand-over too.

A device that cannot be reached then (it lost its network for a minute) still owes the
return: its row is kept (a restart tries again) and it is tried again with a bounded
back-off (:data:`HOME_RETRY_FIRST_S` doubling up to :data:`HOME_RETRY_MAX_S`) for as long
as the camera stays steered-and-idle. The first failure is audited and logged, the
retries of the same failure are not (one dead camera would write a row a minute for
ever). These attempts run in the background: they neither wait out nor leave the
driver's remembered failure, so the operator's first command once the device answers
again is not refused because of them (services/ptz_drivers.py, ``background``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from surveillance.auth.audit import AuditAction
from surveillance.catalog import Catalog
from surveillance.db.outage_log import OutageLog
from surveillance.errors import SurveillanceError
from surveillance.onvif.errors import DeviceFault, NoPtz
from surveillance.services.ptz_drivers import OnvifPtzDriver, PtzDrivers, plain_reason
from surveillance.services.ptz_leases import PtzLease, PtzLeaseStore

log = logging.getLogger(__name__)

IDLE_TICK_MAX_S = 1.0  # how often the node looks for cameras due home (at most)
HOME_RETRY_FIRST_S = 5.0  # a camera that failed to go home is tried again after this,
HOME_RETRY_MAX_S = 60.0  # then twice as long each time, up to this
REASON_CHARS = 200

# (action, camera, detail, outcome): PtzControl's audit entry by ``system``.
RecordSystem = Callable[[AuditAction, str, dict[str, Any], str], None]


@dataclass
class _Owed:
    """A camera that failed to go home: when to try again and what went wrong."""

    retry_at: float  # monotonic
    delay_s: float
    reason: str
    attempts: int


class IdleHome:
    def __init__(
        self,
        idle_home_s: float,
        drivers: PtzDrivers,
        leases: PtzLeaseStore,
        catalog: Catalog,
        holds: Callable[[str], bool],
        moving: Callable[[str], bool],
        went_home: Callable[[str], None],
        record: RecordSystem,
        retry_first_s: float = HOME_RETRY_FIRST_S,
        retry_max_s: float = HOME_RETRY_MAX_S,
    ) -> None:
        self.idle_home_s = idle_home_s
        self._drivers = drivers
        self._leases = leases
        self._catalog = catalog
        self._holds = holds  # whether this node holds the camera
        self._moving = moving  # whether a move of the camera is running (its deadman armed)
        self._went_home = went_home  # PtzControl forgets the camera's last command
        self._record = record
        self._retry_first_s = retry_first_s
        self._retry_max_s = retry_max_s
        self._owed: dict[str, _Owed] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.idle_home_s > 0:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def steered(self, camera_id: str) -> None:
        """Someone steered the camera: a return home it owed starts afresh."""
        self._owed.pop(camera_id, None)

    async def _loop(self) -> None:
        tick = min(IDLE_TICK_MAX_S, self.idle_home_s / 4)
        outage = OutageLog(log, "ptz: the idle return home")
        while True:
            await asyncio.sleep(tick)
            try:
                await self.send_idle_home()
            except SQLAlchemyError as exc:  # the leases are in the database: wait for it
                outage.failed(exc)
                continue
            except Exception:  # the next tick tries again; one bad camera stops nothing
                log.exception("ptz: the idle return home failed")
            outage.worked()

    async def send_idle_home(self) -> None:
        """Every camera this node holds that was steered and then left for idle_home_s."""
        due = time.time() - self.idle_home_s
        idle = await asyncio.to_thread(self._leases.idle, due)
        idle_ids = {lease.camera_id for lease in idle}
        for camera_id in [c for c in self._owed if c not in idle_ids]:
            del self._owed[camera_id]  # steered again, or gone home elsewhere
        for lease in idle:
            if not self._holds(lease.camera_id) or self._moving(lease.camera_id):
                continue
            owed = self._owed.get(lease.camera_id)
            if owed is not None and owed.retry_at > time.monotonic():
                continue
            await self._go_home(lease)

    async def _go_home(self, lease: PtzLease) -> None:
        camera = self._catalog.camera(lease.camera_id)
        home: str | None = None
        why: str | None = "a GB/T 28181 channel has no home position"
        try:
            if camera is None:
                raise NoPtz(f"camera {lease.camera_id} is no longer in the catalog")
            driver = self._drivers.driver(camera)
            if isinstance(driver, OnvifPtzDriver) and camera.onvif is not None:
                home, why = await _send_home(camera.id, driver, camera.onvif.home_preset)
        except NoPtz as no:
            why = str(no)  # nothing to send it to: its lease ends all the same
        except SurveillanceError as exc:
            self._failed(lease.camera_id, exc)
            return
        owed = self._owed.pop(lease.camera_id, None)
        if not await asyncio.to_thread(self._leases.went_home, lease):
            return  # someone steered it meanwhile: it stays theirs
        self._went_home(lease.camera_id)
        await self._drivers.let_go(lease.camera_id)
        detail: dict[str, Any] = {"to": home, "idle_s": self.idle_home_s}
        if why is not None:
            detail["why"] = why[:REASON_CHARS]
        if owed is not None:
            detail["attempts"] = owed.attempts + 1
        self._record(AuditAction.PTZ_HOME, lease.camera_id, detail, "ok")
        event = {"event": "expired-home", "holder": lease.holder}
        self._record(AuditAction.PTZ_LEASE, lease.camera_id, event, "ok")

    def _failed(self, camera_id: str, exc: SurveillanceError) -> None:
        """The camera still owes its return: tried again after a back-off; audited and
        logged once per reason."""
        reason = plain_reason(exc)[:REASON_CHARS]
        owed = self._owed.get(camera_id)
        delay = self._retry_first_s if owed is None else min(owed.delay_s * 2, self._retry_max_s)
        attempts = 1 if owed is None else owed.attempts + 1
        self._owed[camera_id] = _Owed(time.monotonic() + delay, delay, reason, attempts)
        if owed is not None and owed.reason == reason:
            log.debug("ptz: camera %s still did not go home (%d attempts)", camera_id, attempts)
            return
        log.warning(
            "ptz: camera %s did not go home: %s; tried again (after %.0f s, then less often)",
            camera_id, exc, delay,
        )  # fmt: skip
        failed = {"to": None, "reason": reason, "retry_s": delay}
        self._record(AuditAction.PTZ_HOME, camera_id, failed, "failed")


async def _send_home(
    camera_id: str, driver: OnvifPtzDriver, preset: str | None
) -> tuple[str, str | None]:
    """Where the camera went, and why not to its home preset (None: it did, or it has
    none). A home preset the device refuses (removed, never saved) is no reason to leave
    the camera where it was: it goes to the device's home position."""
    if preset is not None:
        try:
            await driver.goto(preset, background=True)
            return f"preset {preset}", None
        except DeviceFault as refused:
            why = f"its home preset {preset} was refused: {refused}"
            log.warning("ptz: camera %s: %s; sent to its home position", camera_id, why)
            await driver.home(background=True)
            return "home position", why
    await driver.home(background=True)
    return "home position", None
