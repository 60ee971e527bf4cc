"""The pan/tilt/zoom mechanics of a simulated ONVIF camera.

Position is in the ONVIF generic spaces (ONVIF PTZ Service Spec, 5.7): pan and tilt in
[-1, 1], zoom in [0, 1]. A continuous move sets a velocity that a ticker integrates
(``advance``) until the move's timeout or a Stop; absolute moves, presets and home jump at
once, which is enough for a simulator. Every change of position is reported to ``on_view``
(the fleet points it at the RTSP picture's crop). Thread-safe: the device's loop moves it,
tests and benches read it from their own threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

PAN_TILT_UNITS_PER_S = 0.5  # at full speed (velocity 1.0)
ZOOM_UNITS_PER_S = 0.4
DEFAULT_MOVE_TIMEOUT_S = 10.0  # a ContinuousMove without Timeout stops by itself after this
MAX_PRESETS = 64

Position = tuple[float, float, float]
ViewCallback = Callable[[float, float, float], None]


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def clamp_position(pan: float, tilt: float, zoom: float) -> Position:
    return (_clamp(pan, -1.0, 1.0), _clamp(tilt, -1.0, 1.0), _clamp(zoom, 0.0, 1.0))


@dataclass(frozen=True)
class Preset:
    token: str
    name: str
    position: Position


class PresetsFull(Exception):
    pass


class PtzMechanics:
    def __init__(self, on_view: ViewCallback | None = None) -> None:
        self._lock = threading.Lock()
        self._position: Position = (0.0, 0.0, 0.0)
        self._velocity: Position = (0.0, 0.0, 0.0)
        self._move_ends_at = 0.0
        self._last_tick = 0.0
        self._home: Position = (0.0, 0.0, 0.0)
        self._presets: dict[str, Preset] = {}
        self._next_token = 1
        self.on_view = on_view
        self._report_failed = False  # logged once until a report works again

    def position(self) -> Position:
        with self._lock:
            return self._position

    def moving(self) -> bool:
        with self._lock:
            return self._velocity != (0.0, 0.0, 0.0)

    def continuous(self, pan: float, tilt: float, zoom: float, timeout_s: float | None) -> None:
        now = time.monotonic()
        with self._lock:
            self._velocity = (_clamp(pan, -1, 1), _clamp(tilt, -1, 1), _clamp(zoom, -1, 1))
            self._move_ends_at = now + (DEFAULT_MOVE_TIMEOUT_S if timeout_s is None else timeout_s)
            self._last_tick = now

    def stop(self, pan_tilt: bool = True, zoom: bool = True) -> None:
        with self._lock:
            pan_v, tilt_v, zoom_v = self._velocity
            self._velocity = (
                0.0 if pan_tilt else pan_v,
                0.0 if pan_tilt else tilt_v,
                0.0 if zoom else zoom_v,
            )

    def advance(self) -> None:
        """Integrate the velocity up to now (the device's ticker calls this at 20 Hz)."""
        now = time.monotonic()
        with self._lock:
            if self._velocity == (0.0, 0.0, 0.0):
                return
            until = min(now, self._move_ends_at)
            dt = max(0.0, until - self._last_tick)
            self._last_tick = now
            pan, tilt, zoom = self._position
            pan_v, tilt_v, zoom_v = self._velocity
            moved = clamp_position(
                pan + pan_v * PAN_TILT_UNITS_PER_S * dt,
                tilt + tilt_v * PAN_TILT_UNITS_PER_S * dt,
                zoom + zoom_v * ZOOM_UNITS_PER_S * dt,
            )
            if now >= self._move_ends_at:
                self._velocity = (0.0, 0.0, 0.0)
            changed = moved != self._position
            self._position = moved
        if changed:
            self._report(moved)

    def jump(self, pan: float, tilt: float, zoom: float) -> None:
        target = clamp_position(pan, tilt, zoom)
        with self._lock:
            self._velocity = (0.0, 0.0, 0.0)
            changed = target != self._position
            self._position = target
        if changed:
            self._report(target)

    def relative(self, pan: float, tilt: float, zoom: float) -> None:
        current = self.position()
        self.jump(current[0] + pan, current[1] + tilt, current[2] + zoom)

    def home(self) -> None:
        with self._lock:
            home = self._home
        self.jump(*home)

    def set_home(self) -> None:
        with self._lock:
            self._home = self._position

    def presets(self) -> list[Preset]:
        with self._lock:
            return sorted(self._presets.values(), key=lambda p: int(p.token))

    def set_preset(self, name: str | None, token: str | None) -> str:
        """Save the current position; a known token is overwritten, else a new one
        ("1", "2", ...) is made. Returns the token."""
        with self._lock:
            if token is None or token not in self._presets:
                if len(self._presets) >= MAX_PRESETS:
                    raise PresetsFull
                token = str(self._next_token)
                self._next_token += 1
            old = self._presets.get(token)
            label = name or (old.name if old else f"Preset {token}")
            self._presets[token] = Preset(token, label, self._position)
            return token

    def preset(self, token: str) -> Preset | None:
        with self._lock:
            return self._presets.get(token)

    def remove_preset(self, token: str) -> bool:
        with self._lock:
            return self._presets.pop(token, None) is not None

    def _report(self, position: Position) -> None:
        callback = self.on_view
        if callback is None:
            return
        try:
            callback(*position)
        except Exception as exc:  # the picture is gone (server stopped): the mechanics go on
            if not self._report_failed:
                log.warning("PTZ view not applied: %s", exc)
            self._report_failed = True
        else:
            self._report_failed = False
