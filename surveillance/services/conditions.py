"""Hold and hysteresis: when a condition seen in samples becomes an event, and when it ends.

A check fails now and then on a healthy camera (a bus parks in front of it, a light is
switched on); an event for every such sample would teach operators to ignore events. So a
condition must be seen failing for ``hold_s`` before it is raised, and seen clear for
``clear_s`` before it ends. A sample missed (no picture: the camera is offline, or settling
after a reconnect) changes nothing: the condition keeps the state it had.

Pure and clock-free: callers pass the time of each sample (the diagnosis service, and zone
motion with its own hold and clear).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Transition(Enum):
    RAISE = "raise"
    END = "end"


@dataclass(frozen=True)
class Timing:
    hold_s: float  # failing this long before the condition is raised
    clear_s: float  # clear this long before a raised condition ends


class Condition:
    """One condition's state."""

    def __init__(self) -> None:
        self.active = False
        self.since: float | None = None  # when the current run of opposite samples began
        self.raised_at: float | None = None  # the first failing sample of the raised run

    def update(self, failing: bool, at: float, timing: Timing) -> Transition | None:
        """One sample at ``at`` (seconds, any clock the caller keeps to)."""
        if failing == self.active:
            self.since = None  # the state is confirmed; any run against it is broken
            return None
        if self.since is None:
            self.since = at
        if failing and at - self.since >= timing.hold_s:
            self.active, self.raised_at, self.since = True, self.since, None
            return Transition.RAISE
        if not failing and at - self.since >= timing.clear_s:
            self.active, self.raised_at, self.since = False, None, None
            return Transition.END
        return None


class Conditions(Generic[K]):
    """Conditions by key (a check of a camera, a zone): created on first use."""

    def __init__(self) -> None:
        self._conditions: dict[K, Condition] = {}

    def update(self, key: K, failing: bool, at: float, timing: Timing) -> Transition | None:
        condition = self._conditions.get(key)
        if condition is None:
            if not failing:
                return None  # nothing to remember about a condition never seen failing
            condition = self._conditions[key] = Condition()
        return condition.update(failing, at, timing)

    def active(self, key: K) -> bool:
        condition = self._conditions.get(key)
        return condition is not None and condition.active

    def raised_at(self, key: K) -> float | None:
        condition = self._conditions.get(key)
        return None if condition is None else condition.raised_at

    def active_keys(self) -> list[K]:
        return [key for key, condition in self._conditions.items() if condition.active]
