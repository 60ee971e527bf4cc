"""GbControl: PTZ of GB/T 28181 channels, and the platforms' alarms into the event bus.

PTZ (GB/T 28181-2016 s.9.3, Annex A.2.3.1): a MESSAGE with a ``DeviceControl`` body holding
the 8-byte ``PTZCmd`` (gb28181/ptz.py) to the channel, at the address its platform
registered from; the platform answers 200 when it took it. Nothing else of a camera can be
steered by this service yet (no ONVIF): a camera that is not a GB channel is a conflict.

Alarms (s.9.4, Annex A.2.5): a platform reports an alarm once, by a ``MESSAGE Alarm``; it
reports no end. Each becomes a ``device.alarm`` event keyed by the platform, the device and
the alarm's method and type, so a device repeating the same alarm updates one event. The
event ends ``ALARM_HOLD_S`` after the last report of it: a device still in alarm reports it
again (most repeat every few seconds to a minute), one that stopped ends by itself. An
``alarm``-severity event stays open after its end until someone acknowledges it (the event
store's rule), so an ended alarm is never lost from the wall.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from surveillance.catalog import Camera, Catalog
from surveillance.config.models import Gb28181Config
from surveillance.errors import Conflict, SurveillanceError, Unavailable
from surveillance.events.records import EventSpec, EventType, Severity
from surveillance.gb28181 import ids, manscdp, ptz
from surveillance.gb28181.manscdp import AlarmNotify
from surveillance.gb28181.sip_message import new_request
from surveillance.gb28181.transactions import SipTimeout
from surveillance.services.event_bus import EventBus
from surveillance.services.gb_signalling import Signalling

log = logging.getLogger(__name__)

PTZ_ANSWER_TIMEOUT_S = 4.0  # how long the platform has to take a PTZ command
# How long a device alarm stays active after its last report (see the module's docstring).
ALARM_HOLD_S = 60.0
# Alarms active at once across platforms; a platform reporting more distinct alarms than
# this (a fault or a hostile sender) has the new ones dropped, logged once a minute.
MAX_ACTIVE_ALARMS = 2000
LOG_EVERY_S = 60.0
SUMMARY_CHARS = 200
MANSCDP_TYPE = "Application/MANSCDP+xml"  # GB/T 28181-2016 s.9.3.1

# GB/T 28181-2016 A.2.5: AlarmMethod.
ALARM_METHODS = {
    1: "telephone alarm",
    2: "device alarm",
    3: "SMS alarm",
    4: "GPS alarm",
    5: "video analysis alarm",
    6: "device fault",
    7: "other alarm",
}
# AlarmPriority 1 (first level, the most urgent) to 4.
PRIORITY_SEVERITY = {1: Severity.ALARM, 2: Severity.WARNING}


class NotControllable(Conflict):
    """The camera cannot be steered by this service."""


class PlatformUnavailable(Unavailable):
    """The channel's platform is not registered, or did not answer."""


class ControlRefused(SurveillanceError):
    """The platform answered the command with a refusal."""

    status_code = 502


@dataclass(frozen=True)
class PtzMove:
    pan: float  # -1 (left) .. 1 (right); 0 with tilt and zoom 0: stop
    tilt: float  # -1 (down) .. 1 (up)
    zoom: float  # -1 (out) .. 1 (in)

    def command(self) -> str:
        return ptz.ptz_command(pan=self.pan, tilt=self.tilt, zoom=self.zoom)

    def detail(self) -> dict[str, Any]:
        return {"pan": self.pan, "tilt": self.tilt, "zoom": self.zoom}


@dataclass(frozen=True)
class PtzPreset:
    action: str  # "set" | "goto" | "remove"
    number: int  # 1..255

    def command(self) -> str:
        return ptz.preset_command(self.action, self.number)

    def detail(self) -> dict[str, Any]:
        return {"preset": self.action, "number": self.number}


class GbControl:
    def __init__(
        self,
        config: Gb28181Config,
        signalling: Signalling | None,
        catalog: Catalog,
        events: EventBus,
    ) -> None:
        self._config = config
        self._signalling = signalling
        self._catalog = catalog
        self._events = events
        self._platforms = {p.id: p for p in config.platforms}
        self._serials = itertools.count(1)
        self._ends: dict[str, asyncio.TimerHandle] = {}  # active alarm key -> its end
        self._tasks: set[asyncio.Task[None]] = set()
        # One writer thread: an alarm's raise and its end reach the bus in the order made.
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gb-alarms")
        self._dropped_logged_at = 0.0

    # -- PTZ ------------------------------------------------------------------------------
    def channel_of(self, camera: Camera) -> tuple[str, str]:
        """(platform id, channel id) of a camera PTZ can steer; NotControllable naming why."""
        split = ids.split_camera_id(camera.id)
        if camera.source_kind != "gb28181" or split is None or split[0] not in self._platforms:
            raise NotControllable(
                f"camera {camera.id!r} is not a GB/T 28181 channel: PTZ is sent to GB/T 28181 "
                "channels only (this service does not speak ONVIF)"
            )
        return split

    async def ptz(self, camera: Camera, order: PtzMove | PtzPreset) -> None:
        """Send the command; returns when the platform took it. NotControllable,
        PlatformUnavailable (not registered, no answer) or ControlRefused."""
        platform_id, channel_id = self.channel_of(camera)
        signalling = self._signalling
        peer = signalling.peer(platform_id) if signalling is not None else None
        if signalling is None or peer is None:
            raise PlatformUnavailable(f"platform {platform_id} is not registered")
        local = signalling.local
        domain = self._platforms[platform_id].device_id[:10]
        body = manscdp.device_control(next(self._serials), channel_id, order.command())
        message = new_request(
            "MESSAGE",
            f"sip:{channel_id}@{domain}",
            local=local,
            to_uri=f"sip:{channel_id}@{domain}",
            transport=peer.transport.upper(),
            body=body,
            content_type=MANSCDP_TYPE,
        )
        try:
            response = await signalling.client.request(message, peer, PTZ_ANSWER_TIMEOUT_S)
        except SipTimeout as exc:
            raise PlatformUnavailable(
                f"platform {platform_id} did not answer the PTZ command "
                f"within {PTZ_ANSWER_TIMEOUT_S:g} s"
            ) from exc
        except OSError as exc:
            raise PlatformUnavailable(
                f"the PTZ command cannot be sent to platform {platform_id}: {exc.strerror or exc}"
            ) from exc
        if response.status >= 300:
            raise ControlRefused(
                f"platform {platform_id} refused the PTZ command: "
                f"{response.status} {response.reason[:80]}"
            )

    # -- alarms ---------------------------------------------------------------------------
    def on_alarm(self, platform_id: str, alarm: AlarmNotify) -> None:
        """The registry's hook for a platform's MESSAGE Alarm (on the loop; returns at once:
        the event is written in a worker thread)."""
        loop = asyncio.get_running_loop()
        spec = self.alarm_event(platform_id, alarm)
        if spec.key not in self._ends and len(self._ends) >= MAX_ACTIVE_ALARMS:
            now = time.monotonic()
            if now - self._dropped_logged_at >= LOG_EVERY_S:
                self._dropped_logged_at = now
                log.warning(
                    "gb28181: %d device alarms active: platform %s's new alarm dropped",
                    len(self._ends),
                    platform_id,
                )
            return
        handle = self._ends.pop(spec.key, None)
        if handle is not None:
            handle.cancel()
        self._ends[spec.key] = loop.call_later(ALARM_HOLD_S, self._end_later, spec.key)
        self._write(self._events.raise_event, spec)

    def alarm_event(self, platform_id: str, alarm: AlarmNotify) -> EventSpec:
        """The event of one alarm report: on the channel's camera when the device is one of
        the platform's channels, else on the platform."""
        camera = self._catalog.camera(ids.camera_id(platform_id, alarm.device_id))
        method = ALARM_METHODS.get(alarm.method or 0, "alarm")
        where = camera.name if camera is not None else f"device {alarm.device_id}"
        description = _printable(alarm.description or "")
        summary = f"{where}: {method}" + (f": {description}" if description else "")
        detail: Mapping[str, Any] = {
            "device_id": alarm.device_id,
            "priority": alarm.priority,
            "method": alarm.method,
            "alarm_type": alarm.alarm_type,
            "time": alarm.time,
            "description": description or None,
            "longitude": alarm.longitude,
            "latitude": alarm.latitude,
        }
        return EventSpec(
            type=EventType.DEVICE_ALARM,
            severity=PRIORITY_SEVERITY.get(alarm.priority or 0, Severity.INFO),
            key=(
                f"device.alarm:{platform_id}:{alarm.device_id}:"
                f"{alarm.method or 0}:{alarm.alarm_type or 0}"
            ),
            summary=summary[:SUMMARY_CHARS],
            camera_id=camera.id if camera is not None else None,
            platform_id=platform_id,
            detail=detail,
        )

    def _end_later(self, key: str) -> None:
        self._ends.pop(key, None)
        self._write(self._events.end_event, key)

    def _write(self, write: Callable[[Any], object], argument: Any) -> None:
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._logged(loop.run_in_executor(self._writer, write, argument)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _logged(work: Awaitable[object]) -> None:
        try:
            await work
        except Exception:  # one alarm's write failing never stops the next ones
            log.exception("gb28181: device alarm event not written")

    async def stop(self) -> None:
        """End the alarms still active (no report will come to end them), while the bus
        still takes writes."""
        keys = list(self._ends)
        for handle in self._ends.values():
            handle.cancel()
        self._ends.clear()
        for key in keys:
            self._write(self._events.end_event, key)
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        self._writer.shutdown(wait=False)


def _printable(text: str) -> str:
    """A platform's free text, safe to show: no control characters, one line, bounded."""
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(cleaned.split())[:SUMMARY_CHARS]
