"""Motion to alarm: held long enough, cleared with a delay, then a cooldown."""

from __future__ import annotations

from surveillance.zones.hold import Change, MotionHold


def test_hold_clear_and_cooldown() -> None:
    hold = MotionHold(hold_s=1.0, clear_s=3.0, cooldown_s=10.0)
    assert hold.update(True, 0.0) is None
    assert hold.update(False, 0.4) is None  # a flicker: the hold starts again
    assert hold.update(True, 0.6) is None
    assert hold.update(True, 1.4) is None
    assert hold.update(True, 1.6) is Change.RAISE
    assert hold.update(True, 2.0) is None  # one alarm, not one per picture
    assert hold.update(False, 4.0) is None  # a pause shorter than clear_s
    assert hold.update(True, 4.5) is None
    assert hold.update(False, 7.4) is None
    assert hold.update(False, 7.5) is Change.END
    assert hold.update(True, 8.0) is None  # cooling down until 17.5
    assert hold.update(True, 17.0) is None
    assert hold.update(True, 17.5) is Change.RAISE
