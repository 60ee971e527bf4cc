"""The ``gb_platform`` fixture: simulated GB/T 28181 lower platforms against a node under test.

``gb_platform(server_port=...)`` starts a GbPlatformSimulator (simulator/gb_platform.py) on
an event loop of its own (GbPlatformThread) and returns it running; it registers in the
background (retrying every couple of seconds until the node answers), so a test waits for
``running.simulator.registered``. Everything started is stopped after the test (BYE to its
plays, REGISTER with Expires: 0). The node's gb28181 config must know the platform: use
GB_DEVICE_ID / GB_PASSWORD / GB_SERVER_ID / GB_DOMAIN, or pass others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from surveillance.simulator.gb_platform import GbChannelSpec, GbPlatformSimulator
from surveillance.simulator.gb_runner import GbPlatformThread
from tests.conftest import CLIP_CACHE

GB_DEVICE_ID = "34020000001110000001"  # type 111: a DVR, a lower platform's device
GB_PASSWORD = "gb-Sim-Pa55word"
GB_SERVER_ID = "34020000002000000001"  # type 200: the upper platform (the node)
GB_DOMAIN = "3402000000"

StartGbPlatform = Callable[..., GbPlatformThread]


def gb_channels(count: int, *, clip: str = "h264", first: int = 1) -> list[GbChannelSpec]:
    """``count`` IPC channels (type 132) 3402000000132000NNNN, named "通道 N" (GB2312 text)."""
    return [
        GbChannelSpec(
            channel_id=f"34020000001320{n:06d}",
            name=f"通道 {n}",
            clip=clip,
            civil_code="340200",
            business_group_id="34020000002150000001",
            longitude=120.0 + n / 10_000,
            latitude=30.0,
            ptz_type=1,
        )
        for n in range(first, first + count)
    ]


@pytest.fixture
def gb_platform() -> Iterator[StartGbPlatform]:
    started: list[GbPlatformThread] = []

    def start(*, server_port: int, **options: Any) -> GbPlatformThread:
        settings: dict[str, Any] = {
            "device_id": GB_DEVICE_ID,
            "password": GB_PASSWORD,
            "server_host": "127.0.0.1",
            "server_port": server_port,
            "server_id": GB_SERVER_ID,
            "domain": GB_DOMAIN,
            "channels": gb_channels(4),
            "clip_dir": CLIP_CACHE,
        }
        settings.update(options)
        running = GbPlatformThread(GbPlatformSimulator(**settings))
        running.start()
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        running.stop()
