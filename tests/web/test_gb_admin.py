"""The admin page's GB/T 28181 section in real Chromium: the platforms the node knows, a
platform's channels, and an override of a channel camera's name and tags set and reset.

The node starts with a platform's channels stored by an earlier run (as after a restart),
so there are channel cameras without a platform registering."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from surveillance.db import create_db_engine, database_url, upgrade
from surveillance.gb28181.records import GbChannelRecord, GbRegistration
from surveillance.gb28181.store import GbStore
from tests.service import ServiceProcess
from tests.web.conftest import signed_in_page, wait_for

DEVICE = "34020000002000000002"
CHANNELS = [f"340200000013200{n:05d}" for n in range(3)]
WAIT_MS = 20_000
WAIT_S = 20.0


async def _is(value: Awaitable[object], wanted: object) -> bool:
    return await value == wanted


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(tmp_path / "data")},
            "tags": [{"id": "north", "name": "North"}],
            "gb28181": {
                "enabled": True,
                "platforms": [
                    {"id": "city", "name": "City platform", "device_id": DEVICE,
                     "password": "web-Secret-77", "coordinates": "wgs84"},
                ],
            },
        }
    )  # fmt: skip
    config = config.model_copy(
        update={"gb28181": config.gb28181.model_copy(update={"sip_port": 0})}
    )
    engine = create_db_engine(database_url(config))
    upgrade(engine)
    store = GbStore(engine)
    now = time.time()
    # A registration that expired while the node was down: one still valid would be taken
    # over as online at start (tests/services/test_gb_registry.py).
    store.record_registration(
        GbRegistration("city", DEVICE, "192.0.2.7", 5070, "udp", now - 4000, now - 400)
    )
    store.replace_channels(
        "city", [GbChannelRecord("city", c, f"Channel {n}", status="ON", latitude=31.8,
                                 longitude=117.2) for n, c in enumerate(CHANNELS)], at=now,
    )  # fmt: skip
    engine.dispose()
    running = ServiceProcess(config)
    running.start()
    yield running
    running.stop()


async def test_admin_lists_gb_platforms_and_overrides_a_channel(
    browser: Browser, service: ServiceProcess
) -> None:
    page = await signed_in_page(browser, service, "root", Role.ADMIN)
    await page.goto(f"{service.url}/admin")
    row = page.locator('#gb-table tr[data-platform="city"]')
    await row.wait_for(timeout=WAIT_MS)
    assert "City platform (city)" in await row.inner_text()
    assert await row.locator(".status").inner_text() != "online"  # not registered this run
    assert await row.locator(".channels").inner_text() == "0/3"
    await row.locator(".show-channels").click()
    channels = page.locator("#gb-channels-table tbody tr[data-camera]")
    await wait_for(lambda: _is(channels.count(), 3), WAIT_S)
    first = page.locator(f'#gb-channels-table tr[data-camera="city.{CHANNELS[0]}"]')
    assert "31.80000, 117.20000" in await first.inner_text()
    await first.locator(".edit").click()
    await page.locator("#gb-channels-table .edit-name").fill("Main gate")
    await page.locator("#gb-channels-table .edit-tags").fill("north")
    await page.locator('#gb-channels-table tr.editor button[type="submit"]').click()
    await wait_for(lambda: _is(first.locator(".name").inner_text(), "Main gate"), WAIT_S)
    assert await first.locator(".tags").inner_text() == "north"
    assert await first.locator(".detail").inner_text() == "set by root"
    camera = service.node.catalog.cameras[f"city.{CHANNELS[0]}"]
    assert (camera.name, camera.tags) == ("Main gate", ("north",))
    await first.locator(".reset").click()
    await wait_for(lambda: _is(first.locator(".name").inner_text(), "Channel 0"), WAIT_S)
    assert await channels.count() == 3
    assert service.node.catalog.cameras[f"city.{CHANNELS[0]}"].name == "Channel 0"
