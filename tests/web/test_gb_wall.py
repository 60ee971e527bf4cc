"""GB/T 28181 channels on the wall in real headless Chromium: a simulated platform registers
to the running service, its channels become cameras, and a layout of them plays (an H.264
channel over fMP4, an H.265 one transcoded, as for RTSP cameras of those codecs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser

from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from surveillance.simulator.gb_platform import GbChannelSpec, GbPlatformSimulator
from surveillance.simulator.gb_runner import GbPlatformThread
from tests.auth_helpers import bearer
from tests.services.test_gb_e2e import channel_id, free_port_pair, rtp_range
from tests.web.conftest import ServiceProcess, signed_in_page, wait_for

OPERATOR = "operator1"
OUR_ID = "34020000002000000001"
DOMAIN = "3402000000"
DEVICE = "34020000002000000002"
PASSWORD = "gb-Pa55word"  # the simulated platform's test password
H264 = f"city.{channel_id(1)}"
H265 = f"city.{channel_id(2)}"
WAIT_S = 40.0


@pytest.fixture
def gb_service(tmp_path: Path) -> Iterator[tuple[ServiceProcess, GbPlatformThread]]:
    sip_port = free_port_pair()
    first, last = rtp_range()
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(tmp_path / "data")},
            "ingest": {"backoff_initial_s": 0.2, "backoff_max_s": 2},
            "gb28181": {
                "enabled": True,
                "sip_id": OUR_ID,
                "domain": DOMAIN,
                "sip_port": sip_port,
                "rtp_port_min": first,
                "rtp_port_max": last,
                "platforms": [
                    {
                        "id": "city",
                        "name": "City platform",
                        "device_id": DEVICE,
                        "password": PASSWORD,
                        "transport": "tcp-passive",
                    }
                ],
            },
        }
    )
    service = ServiceProcess(config)
    service.start()
    platform = GbPlatformThread(
        GbPlatformSimulator(
            device_id=DEVICE,
            password=PASSWORD,
            server_host="127.0.0.1",
            server_port=sip_port,
            server_id=OUR_ID,
            domain=DOMAIN,
            channels=[
                GbChannelSpec(channel_id(1), "Market square", clip="h264"),
                GbChannelSpec(channel_id(2), "Bridge (H.265)", clip="h265"),
            ],
        )
    )
    platform.start()
    try:
        yield service, platform
    finally:
        platform.stop()
        service.stop()


async def test_gb_channels_play_on_the_wall(
    gb_service: tuple[ServiceProcess, GbPlatformThread], browser: Browser
) -> None:
    service, platform = gb_service
    headers = bearer(service.node, OPERATOR, Role.OPERATOR)
    layout = {
        "name": "gb",
        "title": "GB channels",
        "cols": 2,
        "rows": 1,
        "tiles": [
            {"x": 0, "y": 0, "w": 1, "h": 1, "camera": H264},
            {"x": 1, "y": 0, "w": 1, "h": 1, "camera": H265},
        ],
    }
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:

        async def listed() -> bool:
            cameras = (await client.get("/api/cameras")).json()
            return {H264, H265} <= {c["id"] for c in cameras}

        await wait_for(listed, WAIT_S)
        response = await client.put("/api/layouts/gb", json=layout)
        assert response.status_code == 200, response.text

    page = await signed_in_page(browser, service, OPERATOR, Role.OPERATOR)
    await page.goto(f"{service.url}/wall/gb")

    async def frames() -> dict[str, int]:
        tiles: list[dict[str, Any]] = await page.evaluate("window.wall.tiles()")
        return {t["camera"]: (t["stats"] or {}).get("framesDecoded", 0) for t in tiles}

    async def decoding() -> dict[str, int] | None:
        counts = await frames()
        return counts if counts.get(H264, 0) > 0 and counts.get(H265, 0) > 0 else None

    first = await wait_for(decoding, WAIT_S)
    await page.wait_for_timeout(1500)
    second = await frames()
    assert second[H264] > first[H264] and second[H265] > first[H265], (first, second)
    tiles = {t["camera"]: t for t in await page.evaluate("window.wall.tiles()")}
    assert tiles[H264]["stats"]["path"] == "mse", tiles[H264]
    assert tiles[H265]["stats"]["path"] == "transcode", tiles[H265]
    assert tiles[H264]["state"] == tiles[H265]["state"] == "online"
    assert await page.text_content(f".tile[data-camera='{H264}'] .tile-name") == "Market square"
    # Each channel was asked for once and plays over TCP (the platform connected to us).
    assert platform.simulator.invites == 2
    player = service.node.gb_player
    assert player is not None
    assert sorted(s.camera_id for s in player.streams()) == [H264, H265]
    assert {s.transport for s in player.streams()} == {"tcp-passive"}
