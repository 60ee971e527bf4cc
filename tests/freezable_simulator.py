"""A simulator of a test module's own, whose tests may freeze its process (SIGSTOP) to play
a platform that hangs with its connections open."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from surveillance.simulator import MountSpec, Simulator
from tests.conftest import CLIP_CACHE


@contextmanager
def freezable_simulator(mounts: list[MountSpec]) -> Iterator[Simulator]:
    sim = Simulator(mounts, clip_dir=CLIP_CACHE)
    sim.start(timeout_s=180)
    try:
        yield sim
    finally:
        if sim.pid is not None:
            os.kill(sim.pid, signal.SIGCONT)  # a frozen process would not hear its stop
        sim.stop()
