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


def test_unseen_time_does_not_clear_an_alarm() -> None:
    hold = MotionHold(hold_s=1.0, clear_s=3.0, cooldown_s=10.0)
    hold.update(True, 0.0)
    assert hold.update(True, 1.0) is Change.RAISE
    # Unseen from 1.0 to 6.0 (an outage and a re-warm): five seconds, but none of them seen
    # without motion, so the alarm goes on, and ends clear_s of seen pictures later.
    hold.blind(5.0)
    assert hold.update(False, 6.0) is None and hold.active
    assert hold.update(False, 8.9) is None
    assert hold.update(False, 9.0) is Change.END
