"""What a camera's device says of itself beside its streams' health: its clock's offset from
the server's (services/onvif_clock.py) and whether its ONVIF events arrive
(services/onvif_events.py).

It travels with the camera's health: ``CameraHealth.device`` (services/platform_rollup.py),
the camera list and its event stream (``clock_offset_s``, ``clock_flagged``,
``onvif_events``), and in cluster mode the owner's published status (services/health_wire.py),
so every node shows what the camera's owner measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

# "subscribed": a PullPoint subscription is open; "unsupported": the device has no events
# service (or refuses PullPoint), asked again hourly; "failing": the subscription broke and
# is being made again (with back-off).
EventsState = Literal["subscribed", "unsupported", "failing"]
EVENTS_STATES: tuple[EventsState, ...] = ("subscribed", "unsupported", "failing")


@dataclass(frozen=True)
class DeviceHealth:
    clock_offset_s: float | None = None  # device UTC minus server UTC; None: not read (yet)
    clock_flagged: bool = False  # |offset| above onvif.clock_offset_warn_s
    onvif_events: EventsState | None = None  # None: not an ONVIF camera with events, or not held


NO_DEVICE = DeviceHealth()

DeviceHealthOf = Callable[[str], DeviceHealth]  # camera id -> what its device says


class ClockReadings(Protocol):
    """services/onvif_clock.py CameraClocks."""

    def offset_and_flag(self, camera_id: str) -> tuple[float | None, bool]: ...


class EventStates(Protocol):
    """services/onvif_events.py OnvifEvents."""

    def state(self, camera_id: str) -> EventsState | None: ...


def local_device_health(clocks: ClockReadings, events: EventStates) -> DeviceHealthOf:
    """The device health of a camera this node holds, from its own measurements."""

    def of(camera_id: str) -> DeviceHealth:
        offset, flagged = clocks.offset_and_flag(camera_id)
        state = events.state(camera_id)
        if offset is None and state is None:
            return NO_DEVICE
        return DeviceHealth(offset, flagged, state)

    return of


def node_device_health(
    holds: Callable[[str], bool], local: DeviceHealthOf, remote: DeviceHealthOf | None
) -> DeviceHealthOf:
    """A camera's device health on this node: its own measurements for a camera it holds,
    the owner's published word for another's (cluster mode, ``remote``)."""

    def of(camera_id: str) -> DeviceHealth:
        if holds(camera_id):
            return local(camera_id)
        return NO_DEVICE if remote is None else remote(camera_id)

    return of
