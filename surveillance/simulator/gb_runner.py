"""Run a simulated GB platform on an event loop of its own, in a thread.

Tests and the benchmark drive the service (in process or under uvicorn) from ordinary
threads; the simulated platform must keep its own time (keepalives, real-time RTP) whatever
they block on, so it gets its own loop. Calls cross with ``run_coroutine_threadsafe``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from surveillance.simulator.gb_platform import GbPlatformSimulator

T = TypeVar("T")
CALL_TIMEOUT_S = 60.0


class GbPlatformThread:
    """``with GbPlatformThread(sim) as running:`` starts (registers) it; leaving stops it."""

    def __init__(self, simulator: GbPlatformSimulator) -> None:
        self.simulator = simulator
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"gb-sim-{simulator.device_id}", daemon=True
        )

    def start(self, local_port: int = 0) -> None:
        self._thread.start()
        try:
            self.call(lambda: self.simulator.start(local_port))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self.call(self.simulator.stop)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CALL_TIMEOUT_S)
            self._loop.close()

    def call(
        self, coroutine: Callable[[], Coroutine[Any, Any, T]], timeout_s: float = CALL_TIMEOUT_S
    ) -> T:
        """Run ``coroutine()`` on the platform's loop and wait for its result."""

        async def run() -> T:
            return await coroutine()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout_s)

    def fault(self, name: str) -> None:
        """Set a fault (GbPlatformSimulator.fault), done when this returns."""

        async def apply() -> None:
            self.simulator.fault(name)

        self.call(apply)

    def __enter__(self) -> GbPlatformThread:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
