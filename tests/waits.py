"""Waiting in tests: for the condition a test needs, with a deadline, never a fixed time.

A fixed sleep is either too short on a loaded machine (a flaky test) or too long everywhere
else (a slow suite); waiting for the condition itself is neither.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL_S = 0.02  # how often a condition is looked at


def wait_until(condition: Callable[[], T], within_s: float, what: str) -> T:
    """The first truthy value ``condition()`` returns; AssertionError naming ``what`` (and the
    last value seen) if there is none within ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {within_s:g} s (last: {last!r})")
        time.sleep(POLL_S)


EVENTUALLY_S = 30.0  # generous: a loaded two-core CI machine


async def eventually(condition: Callable[[], T], what: str, within_s: float = EVENTUALLY_S) -> T:
    """``wait_until`` for a test on the event loop: it sleeps with asyncio, so the services
    under test keep running while it waits."""
    deadline = time.monotonic() + within_s
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {within_s:g} s (last: {last!r})")
        await asyncio.sleep(POLL_S)
