"""Per-address limits: token buckets (bursts of twice the rate, refilled over time, bounded
tables) and rate-limited log lines."""

from __future__ import annotations

import logging

import pytest

from surveillance.gb28181 import limits
from surveillance.gb28181.limits import FloodLimiter, LogLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_buckets_burst_refill_reserve_and_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    flood = FloodLimiter(10.0, clock=clock)
    assert sum(flood.allow("10.0.0.1") for _ in range(100)) == 20  # a burst of twice the rate
    assert flood.allow("10.0.0.2")  # another address has its own bucket
    clock.now += 0.5
    assert sum(flood.allow("10.0.0.1") for _ in range(100)) == 5  # 0.5 s refills 5
    clock.now += 100
    assert sum(flood.allow("10.0.0.1") for _ in range(100)) == 20  # never more than the burst
    assert flood.reserve("10.0.0.1") == pytest.approx(0.1)  # owes one token: 0.1 s
    assert flood.reserve("10.0.0.1") == pytest.approx(0.2)  # then two
    with pytest.raises(ValueError):
        FloodLimiter(0)
    monkeypatch.setattr(limits, "MAX_ADDRESSES", 50)
    bounded = FloodLimiter(1.0, clock=clock)
    for n in range(500):
        bounded.allow(f"10.1.{n // 256}.{n % 256}")
    assert len(bounded._buckets) == 50


def test_log_lines_are_limited_per_address_and_kind(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    logs = LogLimiter(logging.getLogger("test.limits"), every_s=60, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.limits"):
        for _ in range(1000):
            logs.warning("10.0.0.1", "malformed", "bad CSeq")
        logs.warning("10.0.0.1", "flood", "dropped")
        logs.warning("10.0.0.2", "malformed", "bad CSeq")
        clock.now += 61
        logs.warning("10.0.0.1", "malformed", "bad CSeq")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "SIP from 10.0.0.1: malformed: bad CSeq",
        "SIP from 10.0.0.1: flood: dropped",
        "SIP from 10.0.0.2: malformed: bad CSeq",
        "SIP from 10.0.0.1: malformed: bad CSeq (999 more not logged)",
    ]
