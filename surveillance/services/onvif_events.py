"""Cameras' own motion and tamper detection into the event bus, by ONVIF PullPoint.

For every ONVIF camera with ``onvif.events`` (the default) that this node holds, one task
keeps a PullPoint subscription (onvif/events.py): it long-polls PullMessages, renews the
subscription before it ends, and makes a new one after a failure, backing off (exponential,
full jitter: a site's cameras coming back after a switch reboot do not all knock at once).
A device without an events service, or refusing PullPoint, is logged once and asked again
only every ``UNSUPPORTED_RETRY_S`` (a firmware update may bring them), never in a loop.

A notification with State true raises ``device.motion`` (INFO: a camera's own detector
fires often; zones armed on the wall are the alarms) or ``device.tamper`` (ALARM: someone
covered, blinded or turned the camera); while it lasts, each new true updates the same
event (its key), and State false ends it. A subscription lost ends the camera's open
events: nobody can say any more that the condition holds (a device that comes back reports
its current state again when subscribed: ONVIF Core Specification, "Properties", the
messages with PropertyOperation "Initialized").

Every camera's state (subscribed, unsupported, failing) is shown with its health.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from surveillance.catalog import Camera, Catalog, OnvifEndpoint
from surveillance.config.models import OnvifConfig
from surveillance.events.records import EventSpec, EventType, Severity
from surveillance.media.backoff import Backoff
from surveillance.onvif.client import OnvifClient
from surveillance.onvif.errors import OnvifError
from surveillance.onvif.events import EventsUnsupported, OnvifNotification, PullPoint
from surveillance.services.device_health import EventsState

log = logging.getLogger(__name__)

CONTROL_INTERVAL_S = 2.0  # how often the held ONVIF cameras are matched with their tasks
PULL_WAIT_S = 10.0  # PullMessages' long poll
PULL_LIMIT = 20  # messages per pull
TERMINATION_S = 60.0  # the subscription's life, renewed when a third is left
BACKOFF_INITIAL_S = 1.0  # after a failure, before subscribing again...
BACKOFF_MAX_S = 60.0  # ...growing to this
UNSUPPORTED_RETRY_S = 3600.0  # a device without PullPoint is asked again this often
JOIN_S = 3.0  # how long stop() waits for a task's unsubscribe
MIN_PULL_INTERVAL_S = 0.2  # pulls of one camera, at most five a second
# Conditions (kind and video source) of one camera open at once: a camera has a few video
# sources; a device naming a new one in every message must not fill the events table.
MAX_CONDITIONS = 16
LOG_EVERY_S = 60.0  # a device over a limit says so this often at most


class EventSink(Protocol):
    """What camera events need of the event bus (services/event_bus.py EventBus)."""

    def raise_event(self, spec: EventSpec) -> Any: ...

    def end_event(self, key: str, at: float | None = None) -> Any: ...


def _connect(endpoint: OnvifEndpoint, timeout_s: float) -> OnvifClient:
    return OnvifClient(endpoint.url, endpoint.username, endpoint.password, timeout_s=timeout_s)


KINDS = {
    "motion": (EventType.DEVICE_MOTION, Severity.INFO, "Motion detected by the camera"),
    "tamper": (EventType.DEVICE_TAMPER, Severity.ALARM, "Camera tampered with"),
}


def event_key(kind: str, camera_id: str, source: str | None) -> str:
    return f"device.{kind}:{camera_id}" + (f":{source}" if source else "")


class OnvifEvents:
    def __init__(
        self,
        catalog: Catalog,
        holds: Callable[[str], bool],
        events: EventSink,
        config: OnvifConfig,
        on_change: Callable[[str], None],
    ) -> None:
        """``holds``: whether this node holds the camera; ``on_change(camera_id)``: its
        events state changed (shown with its health)."""
        self._catalog = catalog
        self._holds = holds
        self._events = events
        self._config = config
        self._on_change = on_change
        self._states: dict[str, EventsState] = {}
        self._tasks: dict[str, tuple[Camera, asyncio.Task[None]]] = {}
        self._control: asyncio.Task[None] | None = None
        # Per camera: subscriptions tried and made so far (tests, diagnostics).
        self.attempts: Counter[str] = Counter()
        self.subscriptions: Counter[str] = Counter()
        self._too_many_logged: dict[str, float] = {}

    def state(self, camera_id: str) -> EventsState | None:
        """Any thread."""
        return self._states.get(camera_id)

    # -- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._control = asyncio.create_task(self._control_forever(), name="onvif-events")

    async def stop(self) -> None:
        """Unsubscribes and ends the open events, while the bus still takes them."""
        if self._control is not None:
            self._control.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._control
            self._control = None
        await self._stop_tasks(list(self._tasks))

    async def _control_forever(self) -> None:
        while True:
            try:
                await self._reconcile()
            except Exception:  # never ends the loop
                log.exception("onvif events: control failed")
            await asyncio.sleep(CONTROL_INTERVAL_S)

    def _wanted(self) -> dict[str, Camera]:
        return {
            camera.id: camera
            for camera in self._catalog.cameras.values()
            if camera.onvif is not None
            and camera.onvif.events
            and camera.enabled
            and self._holds(camera.id)
        }

    async def _reconcile(self) -> None:
        wanted = self._wanted()
        stale = [
            camera_id
            for camera_id, (camera, _) in self._tasks.items()
            if wanted.get(camera_id) != camera  # gone, let go, or changed (its URL...)
        ]
        await self._stop_tasks(stale)
        for camera_id, camera in wanted.items():
            running = self._tasks.get(camera_id)
            if running is None or running[1].done():
                task = asyncio.create_task(self._follow(camera), name=f"onvif-events:{camera_id}")
                self._tasks[camera_id] = (camera, task)

    async def _stop_tasks(self, camera_ids: list[str]) -> None:
        stopping = [self._tasks.pop(camera_id) for camera_id in camera_ids]
        for _, task in stopping:
            task.cancel()
        if stopping:
            await asyncio.wait([task for _, task in stopping], timeout=JOIN_S)
        for camera, _ in stopping:
            self._set_state(camera.id, None)

    # -- one camera ---------------------------------------------------------------------------
    async def _follow(self, camera: Camera) -> None:
        open_keys: set[str] = set()
        backoff = Backoff(BACKOFF_INITIAL_S, BACKOFF_MAX_S)
        try:
            while True:
                try:
                    await self._subscribed(camera, open_keys, backoff)
                except EventsUnsupported as error:
                    await self._end_all(open_keys)
                    if self.state(camera.id) != "unsupported":
                        log.info("onvif events: %s: %s; asked again in %g s", camera.id,
                                 error, UNSUPPORTED_RETRY_S)  # fmt: skip
                    self._set_state(camera.id, "unsupported")
                    await asyncio.sleep(UNSUPPORTED_RETRY_S)
                    continue
                except OnvifError as error:
                    await self._end_all(open_keys)
                    if self.state(camera.id) != "failing":  # once per outage
                        log.warning("onvif events: %s: %s; subscribing again", camera.id, error)
                except Exception:  # an answer of a shape nobody foresaw: the same, loudly
                    await self._end_all(open_keys)
                    if self.state(camera.id) != "failing":
                        log.exception("onvif events: %s failed; subscribing again", camera.id)
                self._set_state(camera.id, "failing")
                await asyncio.sleep(backoff.next_delay())
        finally:
            # Cancelled (let go, removed, node stopping): its open events end with it.
            await self._end_all(open_keys)

    async def _subscribed(self, camera: Camera, open_keys: set[str], backoff: Backoff) -> None:
        """One subscription's life: returns or raises when it is lost."""
        endpoint = camera.onvif
        assert endpoint is not None
        timeout_s = self._config.request_timeout_s
        self.attempts[camera.id] += 1
        async with _connect(endpoint, timeout_s) as client:
            pull = PullPoint(client, endpoint.url, termination_s=TERMINATION_S, timeout_s=timeout_s)
            await pull.subscribe()
            self.subscriptions[camera.id] += 1
            if self.state(camera.id) != "subscribed":
                log.info("onvif events: %s subscribed", camera.id)
            self._set_state(camera.id, "subscribed")
            backoff.reset()
            try:
                while True:
                    if pull.renew_due:
                        await pull.renew()
                    started = time.monotonic()
                    await self._apply(camera, await pull.pull(PULL_WAIT_S, PULL_LIMIT), open_keys)
                    # A device answering every pull at once with messages gets no more
                    # than one pull each MIN_PULL_INTERVAL_S.
                    await asyncio.sleep(max(0.0, started + MIN_PULL_INTERVAL_S - time.monotonic()))
            except asyncio.CancelledError:
                # Stopped: end the subscription on the device (after a failure it is
                # likely dead, and it ends by itself at its termination time anyway).
                with contextlib.suppress(OnvifError):
                    await pull.unsubscribe()
                raise

    async def _apply(
        self, camera: Camera, notifications: list[OnvifNotification], open_keys: set[str]
    ) -> None:
        """One pull's notifications: per condition, at most a raise (it was true at some
        point) and an end (its last word is false), whatever a device sends."""
        conditions: dict[str, tuple[OnvifNotification | None, bool]] = {}
        for note in notifications:
            if note.kind is None or note.state is None:
                continue
            key = event_key(note.kind, camera.id, note.source)
            known = key in conditions or key in open_keys
            if not known and len(open_keys | conditions.keys()) >= MAX_CONDITIONS:
                self._too_many(camera.id)
                continue
            true_note, _ = conditions.get(key, (None, False))
            conditions[key] = (note if note.state else true_note, note.state)
        for key, (true_note, last) in conditions.items():
            if true_note is not None and await self._write(
                self._events.raise_event, self._spec(camera, key, true_note)
            ):
                open_keys.add(key)
            # A false also ends an event a previous subscription (or run) left active: it is
            # in the initial state a new subscription gets.
            if not last and await self._write(self._events.end_event, key):
                open_keys.discard(key)

    @staticmethod
    def _spec(camera: Camera, key: str, note: OnvifNotification) -> EventSpec:
        assert note.kind is not None
        event_type, severity, summary = KINDS[note.kind]
        return EventSpec(
            type=event_type,
            severity=severity,
            key=key,
            summary=f"{camera.name}: {summary.lower()}",
            camera_id=camera.id,
            platform_id=camera.platform_id,
            detail={
                "topic": note.topic,
                "source": note.source,
                # The camera's own time of it: by ITS clock (see the clock offset).
                "device_time": note.at.isoformat(),
            },
        )

    def _too_many(self, camera_id: str) -> None:
        now = time.monotonic()
        if now - self._too_many_logged.get(camera_id, -LOG_EVERY_S) >= LOG_EVERY_S:
            self._too_many_logged[camera_id] = now
            log.warning(
                "onvif events: %s reports more than %d sources at once; the others dropped",
                camera_id,
                MAX_CONDITIONS,
            )

    async def _end_all(self, open_keys: set[str]) -> None:
        at = time.time()
        for key in list(open_keys):
            if await self._write(self._events.end_event, key, at):
                open_keys.discard(key)

    @staticmethod
    async def _write(write: Callable[..., Any], *args: Any) -> bool:
        try:
            await asyncio.to_thread(write, *args)
        except Exception:  # the database may be full or gone: the subscription goes on
            log.exception("onvif events: event not written")
            return False
        return True

    def _set_state(self, camera_id: str, state: EventsState | None) -> None:
        if self._states.get(camera_id) == state:
            return
        states = dict(self._states)
        if state is None:
            states.pop(camera_id, None)
        else:
            states[camera_id] = state
        self._states = states
        self._on_change(camera_id)
