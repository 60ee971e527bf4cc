"""A stream's health (media/health.py ``HealthSnapshot``) to JSON and back, for cluster mode:
a camera's owner publishes its health in ``camera_status`` and in notifications, and the
other nodes show it (services/remote_health.py).

The wire form is the snapshot's fields by name, enums by value, times as the owner's
``time.time()``. Reading is strict about types (the text comes from the database, which
any node, of any version, writes): a status that does not read is refused with
``ValueError``, never shown half-read; fields a newer node adds are ignored.

A camera's device health (services/device_health.py: clock offset, events) travels beside
its streams' as ``device``; an older node sends none, which reads as nothing known.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from surveillance.media.health import ErrorKind, HealthSnapshot, StreamState
from surveillance.services.device_health import EVENTS_STATES, NO_DEVICE, DeviceHealth

_FIELDS = {field.name: field for field in dataclasses.fields(HealthSnapshot)}
_ENUMS: dict[str, type[StreamState] | type[ErrorKind]] = {
    "state": StreamState,
    "last_error_kind": ErrorKind,
    "warning_kind": ErrorKind,
}
_INTS = {"width", "height", "reconnects", "packets", "bytes", "ring_bytes", "consumers",
         "dropped_by_consumers"}  # fmt: skip
_TEXTS = {"codec", "profile", "last_error", "warning"}
_BOOLS = {"attempting"}
MAX_TEXT = 2000  # an error message longer than this is cut (the payload must stay small)


def to_wire(snapshot: HealthSnapshot) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(snapshot, name)
        if name in _ENUMS and value is not None:
            value = value.value
        elif name in _TEXTS and isinstance(value, str):
            value = value[:MAX_TEXT]
        elif isinstance(value, float) and not math.isfinite(value):
            value = None  # JSON has no NaN or infinity
        wire[name] = value
    return wire


def from_wire(wire: Mapping[str, Any]) -> HealthSnapshot:
    """ValueError when a field is missing or of the wrong type."""
    values: dict[str, Any] = {}
    for name, field in _FIELDS.items():
        if name not in wire:
            raise ValueError(f"health status without {name!r}")
        values[name] = _read(name, wire[name], nullable="None" in str(field.type))
    return HealthSnapshot(**values)


def _read(name: str, value: Any, *, nullable: bool) -> Any:
    if value is None:
        if nullable:
            return None
        raise ValueError(f"health status: {name!r} may not be null")
    if name in _ENUMS:
        if not isinstance(value, str):
            raise ValueError(f"health status: {name!r} is not a text")
        return _ENUMS[name](value)  # ValueError for an unknown value
    if name in _BOOLS:
        if not isinstance(value, bool):
            raise ValueError(f"health status: {name!r} is not true or false")
        return value
    if name in _TEXTS:
        if not isinstance(value, str):
            raise ValueError(f"health status: {name!r} is not a text")
        return value[:MAX_TEXT]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"health status: {name!r} is not a number")
    if name in _INTS:
        if not isinstance(value, int):
            raise ValueError(f"health status: {name!r} is not a whole number")
        return value
    if not math.isfinite(value):
        raise ValueError(f"health status: {name!r} is not finite")
    return float(value)


def device_to_wire(device: DeviceHealth) -> dict[str, Any]:
    offset = device.clock_offset_s
    return {
        "clock_offset_s": offset if offset is None or math.isfinite(offset) else None,
        "clock_flagged": device.clock_flagged,
        "onvif_events": device.onvif_events,
    }


def device_from_wire(wire: Any) -> DeviceHealth:
    """None (an older node) reads as nothing known; ValueError when it does not read."""
    if wire is None:
        return NO_DEVICE
    if not isinstance(wire, Mapping):
        raise ValueError("device health is not an object")
    offset, flagged, events = (
        wire.get("clock_offset_s"),
        wire.get("clock_flagged"),
        wire.get("onvif_events"),
    )
    if offset is not None and (
        isinstance(offset, bool) or not isinstance(offset, int | float) or not math.isfinite(offset)
    ):
        raise ValueError("device health: 'clock_offset_s' is not a finite number")
    if not isinstance(flagged, bool):
        raise ValueError("device health: 'clock_flagged' is not true or false")
    if events is not None and events not in EVENTS_STATES:
        raise ValueError("device health: 'onvif_events' is not a known state")
    return DeviceHealth(None if offset is None else float(offset), flagged, events)
