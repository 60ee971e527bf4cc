"""PtzControl: steering cameras from the wall, one operator at a time.

- **Leases** (services/ptz_leases.py): a command takes the camera's lease when it is free,
  ended or the caller's own, and renews it; held by another it is refused (409, naming who
  and for how long). A strictly higher role may take it over (``take(takeover=True)``).
- **Deadman**: a continuous move lasts ``move_timeout_s`` after the device took it or its
  last refresh came, whichever is later (a device slower than ``move_timeout_s`` to answer
  is not stopped right after it starts; a refresh pushes the deadline when it arrives,
  before its own round trip). ONVIF devices get it as the move's Timeout too (they stop
  even if this node goes away); here a timer sends the stop, for GB/T 28181 channels
  (whose moves carry no timeout) and for devices that ignore it. A wall refreshes a held
  button every ~400 ms.
- **Idle return home** (services/ptz_home.py): a camera steered and then left alone for
  ``idle_home_s`` goes home and its lease ends; one unreachable then is tried again.
- **What can be steered**: an ONVIF camera whose configuration does not say (``ptz``
  unset) is asked by the node holding it soon after start (a light probe in the
  background, a few at a time: it connects and reads the profiles), so the camera list's
  ``ptz`` and the wall's PTZ button are right before anyone opens a pad; a device known
  to have no PTZ is refused (409) without a lease. Unknown (not answered yet) counts as
  steerable (services/ptz_probe.py).
- **Audit**: ``camera.ptz`` for each distinct command (a refresh of the same move is not
  one; a new direction, a stop and every preset command are), failures with their reason
  (a failed refresh of the same move with the same reason is not audited again);
  ``ptz.lease`` when a lease is taken, taken over, released or ended by the return home;
  ``ptz.home`` (by ``system``) for each return home.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from surveillance.auth.audit import AuditAction, AuditEntry, AuditLog
from surveillance.auth.roles import Role
from surveillance.catalog import Camera, Catalog
from surveillance.config.models import PtzConfig
from surveillance.errors import CameraNotFound, CameraUnavailable, SurveillanceError
from surveillance.media.health import StreamState
from surveillance.onvif.errors import NoPtz
from surveillance.onvif.ptz import Preset
from surveillance.services.ingest import IngestService
from surveillance.services.ptz_drivers import PtzDriver, PtzDrivers, PtzKind, plain_reason
from surveillance.services.ptz_home import IdleHome
from surveillance.services.ptz_leases import ROLE_RANK, PtzLease, PtzLeaseHeld, PtzLeaseStore
from surveillance.services.ptz_probe import PtzProbe

log = logging.getLogger(__name__)

SYSTEM = "system"  # who the audit log names for what the node does by itself
REASON_CHARS = 200


@dataclass(frozen=True)
class Actor:
    """Who sends a command: a user, their role, where from (for the audit log)."""

    name: str
    role: Role
    client: str = ""


@dataclass(frozen=True)
class Move:
    pan: float  # -1 left .. 1 right; all three 0: stop
    tilt: float  # -1 down .. 1 up
    zoom: float  # -1 out .. 1 in

    @property
    def stops(self) -> bool:
        return self.pan == 0 and self.tilt == 0 and self.zoom == 0

    def detail(self) -> dict[str, Any]:
        return {"pan": self.pan, "tilt": self.tilt, "zoom": self.zoom}


@dataclass(frozen=True)
class PresetOrder:
    action: Literal["goto", "set", "remove"]
    token: str | None = None
    name: str | None = None

    def detail(self) -> dict[str, Any]:
        return {"preset": self.action, "token": self.token, "name": self.name}


Order = Move | PresetOrder


@dataclass(frozen=True)
class PtzState:
    camera_id: str
    controllable: bool
    kind: PtzKind | None
    reason: str | None
    lease: PtzLease | None  # held now, else None
    presets: list[Preset]


class PtzControl:
    def __init__(
        self,
        config: PtzConfig,
        drivers: PtzDrivers,
        leases: PtzLeaseStore,
        audit: AuditLog,
        ingest: IngestService,
        catalog: Catalog,
    ) -> None:
        self.config = config
        self.drivers = drivers
        self.leases = leases
        self._audit = audit
        self._ingest = ingest
        self._catalog = catalog
        self._last: dict[str, tuple[str, Order]] = {}  # camera -> (who, last command sent)
        # camera -> (who, command, reason) of the last failure audited: its refreshes are not
        self._last_failed: dict[str, tuple[str, Order, str]] = {}
        # A camera is moving while it has an entry; a handle that fired while a move was
        # in flight stays (see _deadman) for that move's answer to arm it again.
        self._deadmen: dict[str, asyncio.TimerHandle] = {}
        self._in_flight: dict[str, int] = {}  # camera -> moves sent, not answered yet
        self._tasks: set[asyncio.Task[None]] = set()
        self.probe = PtzProbe(catalog, drivers, ingest.holds)
        self.home = IdleHome(
            config.idle_home_s, drivers, leases, catalog, ingest.holds,
            moving=lambda camera_id: camera_id in self._deadmen,
            went_home=self._forget_last,
            record=self._record_system,
        )  # fmt: skip

    async def start(self) -> None:
        """Starts the background work and returns (never waits for a device)."""
        self.home.start()
        self.probe.start()

    async def stop(self) -> None:
        await self.probe.stop()
        await self.home.stop()
        for camera_id in list(self._deadmen):  # moving cameras stop with the node
            self._deadman(camera_id, now=True)
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        await self.drivers.close()

    # -- reading ----------------------------------------------------------------------------
    async def state(self, camera: Camera) -> PtzState:
        """What a wall shows of the camera's PTZ; presets read from the device when it
        answers (empty when not, or not steerable)."""
        lease = await asyncio.to_thread(self.leases.get, camera.id)
        held = lease if lease is not None and lease.held(time.time()) else None
        kind = self.drivers.kind(camera)
        controllable, reason = self.drivers.controllable(camera)
        presets: list[Preset] = []
        offline = self._offline(camera) if controllable else None
        if offline is not None:
            reason = str(offline)[:REASON_CHARS]  # what a command would be refused with
        elif controllable:
            try:
                presets = await self.drivers.driver(camera).presets()
            except NoPtz as no:
                controllable, reason = False, str(no)
            except SurveillanceError as exc:
                reason = str(exc)[:REASON_CHARS]
        return PtzState(camera.id, controllable, kind, reason, held, presets)

    def steerable(self, camera: Camera) -> bool:
        """Whether the camera can be steered, as far as known now (any thread; asks no
        device): the camera list's ``ptz``."""
        return self.drivers.controllable(camera)[0]

    async def held(self) -> list[PtzLease]:
        return await asyncio.to_thread(self.leases.held)

    # -- leases -----------------------------------------------------------------------------
    async def take(self, camera: Camera, actor: Actor, *, takeover: bool = False) -> PtzLease:
        """Take, take over or renew ``actor``'s lease; PtzLeaseHeld when another holds it
        and ``takeover`` is not asked by a strictly higher role."""
        self.drivers.driver(camera)  # NoPtz: nothing to hold
        await self._refuse_if_device_held(camera, actor, takeover)
        taken = await asyncio.to_thread(
            self.leases.take, camera.id, actor.name, actor.role, self.config.lease_s,
            takeover=takeover,
        )  # fmt: skip
        if taken.event != "renewed":
            detail: dict[str, Any] = {"event": taken.event}
            if taken.previous_holder is not None:
                detail["from"] = taken.previous_holder
            self._record(actor, AuditAction.PTZ_LEASE, camera.id, detail)
        return taken.lease

    async def _refuse_if_device_held(self, camera: Camera, actor: Actor, takeover: bool) -> None:
        """PtzLeaseHeld when another camera id of the same ONVIF device (one device listed
        twice in the catalog) is steered by someone else: one device, one operator."""
        if camera.onvif is None:
            return
        device = _device_of(camera.onvif.url)
        now = time.time()
        for other in list(self._catalog.cameras.values()):
            if other.id == camera.id or other.onvif is None:
                continue
            if _device_of(other.onvif.url) != device:
                continue
            lease = await asyncio.to_thread(self.leases.get, other.id)
            if lease is None or not lease.held(now) or lease.holder == actor.name:
                continue
            if takeover and ROLE_RANK.get(actor.role, 0) > lease.rank:
                continue
            raise PtzLeaseHeld(lease, now)

    async def release(self, camera: Camera, actor: Actor) -> None:
        ended = await asyncio.to_thread(
            self.leases.release, camera.id, actor.name, actor.role,
            keep_for_home=self.config.idle_home_s > 0,
        )  # fmt: skip
        if ended is not None:
            detail: dict[str, Any] = {"event": "released"}
            if ended.holder != actor.name:
                detail["from"] = ended.holder
            self._record(actor, AuditAction.PTZ_LEASE, camera.id, detail)

    # -- commands ---------------------------------------------------------------------------
    async def command(self, camera: Camera, actor: Actor, order: Order) -> Preset | None:
        """Send one command under the caller's lease (taken or renewed first); the saved
        preset for a "set". Refusals and failures are audited and raised."""
        last = self._last.get(camera.id)
        distinct = last != (actor.name, order)
        moves = isinstance(order, Move) and not order.stops
        if moves and last is not None and last[0] == actor.name and camera.id in self._deadmen:
            # The holder's refresh pushes the deadline when it arrives, not once it reached
            # the device: a refresh near the deadline is not beaten by the stop.
            self._arm_deadman(camera.id)
        try:
            driver = self.drivers.driver(camera)
            offline = self._offline(camera)
            if offline is not None:
                raise offline
            await self.take(camera, actor)  # PtzLeaseHeld: someone else steers
            try:
                saved = await self._send(camera.id, driver, order)
            except NoPtz:  # the device says it has no PTZ: nothing to hold
                await asyncio.to_thread(
                    self.leases.release, camera.id, actor.name, actor.role, keep_for_home=True
                )
                raise
            # Steered (only now: a camera whose device never took a command has no
            # reason to go home).
            await asyncio.to_thread(self.leases.steered, camera.id, actor.name)
        except SurveillanceError as exc:
            self._last.pop(camera.id, None)  # the next attempt is a command of its own
            # ...but a held button refreshing a move that keeps failing the same way is
            # one failure (an operator leaning on a dead camera's arrow for a minute).
            failed = (actor.name, order, plain_reason(exc))
            if self._last_failed.get(camera.id) != failed:
                self._last_failed[camera.id] = failed
                detail = {**order.detail(), "reason": str(exc)[:REASON_CHARS]}
                self._record(actor, AuditAction.CAMERA_PTZ, camera.id, detail, outcome="failed")
            raise
        self._last_failed.pop(camera.id, None)
        self.home.steered(camera.id)
        self._last[camera.id] = (actor.name, order)
        if distinct:
            detail = order.detail() if saved is None else {**order.detail(), "token": saved.token}
            self._record(actor, AuditAction.CAMERA_PTZ, camera.id, detail)
        return saved

    async def _send(self, camera_id: str, driver: PtzDriver, order: Order) -> Preset | None:
        if isinstance(order, Move) and not order.stops:
            # Armed before the move is sent, so a stop sent meanwhile (queued behind it at
            # the driver) disarms it; armed again from the device's answer, so a device
            # slower than move_timeout_s is not stopped right after it starts.
            was_moving = camera_id in self._deadmen
            self._arm_deadman(camera_id)
            self._in_flight[camera_id] = self._in_flight.get(camera_id, 0) + 1
            try:
                await driver.move(order.pan, order.tilt, order.zoom, self.config.move_timeout_s)
            except SurveillanceError:
                # The device took no move: nothing for the deadman to stop, unless an
                # earlier move may still run.
                self._answered(camera_id, moving=was_moving)
                raise
            self._answered(camera_id, moving=True)
            return None
        self._disarm_deadman(camera_id)
        if isinstance(order, Move):
            await driver.stop()
        elif order.action == "goto" and order.token is not None:
            await driver.goto(order.token)
        elif order.action == "set":
            return await driver.save(order.name or order.token or "", order.token)
        elif order.action == "remove" and order.token is not None:
            await driver.remove(order.token)
        return None

    def _offline(self, camera: Camera) -> CameraUnavailable | None:
        """Why the camera takes no command now (503; its stream's error, which the API
        shows without URLs to who may not read them), or None."""
        try:
            health = self._ingest.camera_health(camera.id)
        except CameraNotFound:
            return None
        if health.state is StreamState.OFFLINE:
            why = (health.main.last_error or "it does not answer")[:REASON_CHARS]
            return CameraUnavailable(camera.id, "offline", why)
        if health.state is StreamState.DISABLED:
            return CameraUnavailable(camera.id, "disabled", "turned off in the configuration")
        return None

    # -- deadman ----------------------------------------------------------------------------
    def _arm_deadman(self, camera_id: str) -> asyncio.TimerHandle:
        self._disarm_deadman(camera_id)
        loop = asyncio.get_running_loop()
        handle = loop.call_later(self.config.move_timeout_s, self._deadman, camera_id)
        self._deadmen[camera_id] = handle
        return handle

    def _answered(self, camera_id: str, *, moving: bool) -> None:
        """A move was answered: the deadline counts from now if the camera may be moving
        (and no stop came meanwhile: its deadman is still there)."""
        left = self._in_flight.get(camera_id, 1) - 1
        if left > 0:
            self._in_flight[camera_id] = left
        else:
            self._in_flight.pop(camera_id, None)
        if camera_id not in self._deadmen:
            return  # stopped meanwhile
        if moving or left > 0:
            self._arm_deadman(camera_id)
        else:
            self._disarm_deadman(camera_id)

    def _disarm_deadman(self, camera_id: str) -> None:
        handle = self._deadmen.pop(camera_id, None)
        if handle is not None:
            handle.cancel()

    def _deadman(self, camera_id: str, *, now: bool = False) -> None:
        """No refresh came: the move ends (the page went away, or lost its network). Not
        while a move is on its way to the device: its answer arms the deadman again
        (``now``: the node stops, every moving camera is stopped)."""
        if not now and self._in_flight.get(camera_id, 0) > 0:
            return  # the fired handle stays: the camera still counts as moving
        self._disarm_deadman(camera_id)
        self._last.pop(camera_id, None)
        self._spawn(self._deadman_stop(camera_id))

    async def _deadman_stop(self, camera_id: str) -> None:
        camera = self._catalog.camera(camera_id)
        if camera is None:
            return
        detail: dict[str, Any] = {"stop": "deadman", "after_s": self.config.move_timeout_s}
        try:
            await self.drivers.driver(camera).stop()
        except SurveillanceError as exc:
            reason = str(exc)[:REASON_CHARS]
            self._record_system(AuditAction.CAMERA_PTZ, camera_id, {**detail, "reason": reason})
            return
        self._record_system(AuditAction.CAMERA_PTZ, camera_id, detail)

    # -- helpers ----------------------------------------------------------------------------
    def _forget_last(self, camera_id: str) -> None:
        self._last.pop(camera_id, None)

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _record(
        self,
        actor: Actor,
        action: AuditAction,
        camera_id: str,
        detail: dict[str, Any],
        outcome: str = "ok",
    ) -> None:
        self._audit.record(
            AuditEntry(
                user=actor.name,
                action=action,
                camera_id=camera_id,
                client=actor.client,
                outcome=outcome,
                detail=detail,
            )
        )

    def _record_system(
        self, action: AuditAction, camera_id: str, detail: dict[str, Any], outcome: str = "ok"
    ) -> None:
        self._audit.record(
            AuditEntry(
                user=SYSTEM,
                action=action,
                camera_id=camera_id,
                outcome=outcome,
                detail=detail,
                actor_is_user=False,
            )
        )


def _device_of(url: str) -> str:
    """An ONVIF device's identity in its service URL: host and port."""
    parts = urlsplit(url)
    return f"{(parts.hostname or '').lower()}:{parts.port or 0}"
