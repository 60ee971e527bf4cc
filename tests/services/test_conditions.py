"""Hold and hysteresis: a condition is raised after failing hold_s, ends after clear_s clear,
and a missed sample or a short blip changes nothing."""

from __future__ import annotations

from surveillance.services.conditions import Conditions, Timing, Transition

TIMING = Timing(hold_s=10, clear_s=20)


def test_hold_then_clear_with_hysteresis() -> None:
    conditions: Conditions[str] = Conditions()
    assert conditions.update("dark", False, 0, TIMING) is None
    assert conditions.update("dark", True, 5, TIMING) is None
    assert conditions.update("dark", False, 10, TIMING) is None  # a blip resets the hold
    assert conditions.update("dark", True, 15, TIMING) is None
    assert conditions.update("dark", True, 20, TIMING) is None
    assert conditions.update("dark", True, 25, TIMING) is Transition.RAISE
    assert conditions.raised_at("dark") == 15 and conditions.active_keys() == ["dark"]
    assert conditions.update("dark", True, 30, TIMING) is None  # raised once
    # Samples missed while the camera was away (none between 30 and 90) change nothing.
    assert conditions.update("dark", False, 90, TIMING) is None
    assert conditions.update("dark", True, 95, TIMING) is None  # failing again: still active
    assert conditions.update("dark", False, 100, TIMING) is None
    assert conditions.update("dark", False, 115, TIMING) is None
    assert conditions.update("dark", False, 120, TIMING) is Transition.END
    assert not conditions.active("dark") and conditions.raised_at("dark") is None
    # Keys are independent; a zero hold raises on the first failing sample.
    assert conditions.update("frozen", True, 0, Timing(0, 0)) is Transition.RAISE
    assert conditions.update("frozen", False, 1, Timing(0, 0)) is Transition.END
    assert conditions.active_keys() == []
