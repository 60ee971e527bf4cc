"""When motion in a zone becomes an alarm, and when the alarm ends: pure timing.

Motion must last ``hold_s`` (one passing leaf is a picture or two, a person walking in
is seconds); the alarm ends after ``clear_s`` without motion, so someone pausing behind
a pillar does not end it and raise a second; after it ends, the zone stays quiet for
``cooldown_s`` (someone loitering raises an alarm a minute, not one every few seconds).
Time in which the zone could not be seen at all (a stream outage, the background warming
again after a reconnect) is no evidence that motion stopped: ``blind`` stops the clear
clock for it, so one intrusion across a short reconnect stays one alarm.
"""

from __future__ import annotations

from enum import Enum


class Change(Enum):
    RAISE = "raise"
    END = "end"


class MotionHold:
    def __init__(self, hold_s: float, clear_s: float, cooldown_s: float) -> None:
        self.hold_s, self.clear_s, self.cooldown_s = hold_s, clear_s, cooldown_s
        self.active = False
        self._moving_since: float | None = None
        self._last_motion: float | None = None
        self._ended_at: float | None = None

    def update(self, moving: bool, now: float) -> Change | None:
        """Feed one verdict at monotonic time ``now``; the alarm's change, if any."""
        if moving:
            self._last_motion = now
            if self._moving_since is None:
                self._moving_since = now
        else:
            self._moving_since = None
        if self.active:
            if self._last_motion is not None and now - self._last_motion >= self.clear_s:
                self.active = False
                self._ended_at = now
                return Change.END
            return None
        cooling = self._ended_at is not None and now - self._ended_at < self.cooldown_s
        held = self._moving_since is not None and now - self._moving_since >= self.hold_s
        if held and not cooling:
            self.active = True
            return Change.RAISE
        return None

    def blind(self, seconds: float) -> None:
        """The zone went unseen for ``seconds`` before the verdict about to be fed: they
        do not count towards ``clear_s`` (nor, for motion in progress, towards ``hold_s``)."""
        if self._last_motion is not None:
            self._last_motion += seconds
        if self._moving_since is not None:
            self._moving_since += seconds

    def reset(self) -> None:
        """Forget motion in progress (a reconnect); an active alarm ends by ``clear_s``."""
        self._moving_since = None
