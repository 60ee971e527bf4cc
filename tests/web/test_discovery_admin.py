"""The admin page's "Find cameras (ONVIF)" section in real Chromium against simulated ONVIF
devices: a run started from the page, each device's outcome shown (a hostile device name as
text, never markup), rows chosen and downloaded as CSV that loads as configuration; a
device the catalog has as it is cannot be chosen ("select all" takes the new ones), and a
ported range's silent address is counted, not listed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator

from surveillance.auth.roles import Role
from surveillance.config import load_config
from surveillance.config.models import AppConfig
from surveillance.simulator.onvif_fleet import OnvifFleet
from tests.onvif_net import test_subnet
from tests.service import ServiceProcess
from tests.web.conftest import signed_in_page, wait_for

SUBNET = test_subnet()
FIRST_HOST = 230  # 127.0.S.230-232 (.233 silent): apart from the other ONVIF tests' devices
HTTP_PORT = 8085
USER, PASSWORD = "admin", "admin-pass"
# What a hostile device may call itself: markup, a script, a right-to-left override, and a
# word long enough to push the table past the page's width.
HOSTILE = '<img src=x onerror="window.pwned=1">&amp; \u202eevil ' + "L" * 110
WAIT_S = 30.0
STREAM = f"rtsp://{SUBNET}.{FIRST_HOST + 9}:8554/main"  # every device's; on no device's host


def device_url(index: int) -> str:
    return f"http://{SUBNET}.{FIRST_HOST + index}:{HTTP_PORT}/onvif/device_service"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(tmp_path / "data")},
            "onvif": {"discovery": {"inspect_timeout_s": 4.0, "answer_wait_s": 1.0}},
            "platforms": [{"id": "site", "name": "Site", "username": USER, "password": PASSWORD}],
            # The third device, as the catalog has it: "same".
            "cameras": [{"id": "known", "name": "Known", "platform": "site", "url": STREAM,
                         "onvif": {"url": device_url(2)}}],
        }
    )  # fmt: skip
    with OnvifFleet.on_subnet(
        SUBNET,
        3,
        first_host=FIRST_HOST,
        http_port=HTTP_PORT,
        faults={1: "hostile-xml"},
        pictures=False,
        name=HOSTILE,
        rtsp_main=STREAM,
    ):
        running = ServiceProcess(config)
        running.start()
        yield running
        running.stop()


async def test_admin_finds_cameras_and_downloads_rows(
    browser: Browser, service: ServiceProcess, tmp_path: Path
) -> None:
    page = await signed_in_page(browser, service, "root", Role.ADMIN)
    await page.goto(f"{service.url}/admin")
    await page.locator("#discovery").wait_for(timeout=WAIT_S * 1000)
    await page.fill("#discovery-targets", f"{SUBNET}.{FIRST_HOST}-{FIRST_HOST + 3}:{HTTP_PORT}")
    await page.uncheck("#discovery-multicast")
    await page.fill("#discovery-username", USER)
    await page.fill("#discovery-password", PASSWORD)
    await page.click("#discovery-start")
    progress = page.locator("#discovery-progress")
    await wait_for(lambda: _done(progress), WAIT_S)
    assert "3 devices, 1 address did not answer" in await progress.inner_text()
    assert await page.input_value("#discovery-password") == ""  # the page keeps no copy
    good_url, bad_url, known_url = device_url(0), device_url(1), device_url(2)
    good = page.locator(f'#discovery-table tr[data-device="{good_url}"]')
    bad = page.locator(f'#discovery-table tr[data-device="{bad_url}"]')
    known = page.locator(f'#discovery-table tr[data-device="{known_url}"]')
    # The name as text: the override shown replaced (U+FFFD), no element made from it.
    assert await good.locator(".name").inner_text() == HOSTILE.replace("\u202e", "\ufffd")
    assert await page.locator("#discovery-table img").count() == 0
    assert await page.evaluate("window.pwned") is None
    assert "Surveillance Sim SimPTZ" in await good.inner_text()
    page_width = "document.documentElement.scrollWidth <= window.innerWidth"
    assert await page.evaluate(page_width)  # the long name wraps in its cell
    assert await good.locator(".status").inner_text() == "new"
    outcome = await bad.locator(".outcome").inner_text()
    assert outcome.startswith("malformed: ") and "DTD or entities" in outcome
    assert await bad.locator("input.pick").is_disabled()
    assert PASSWORD not in await page.content()

    assert await known.locator(".status").inner_text() == "same (known)"
    assert await known.locator("input.pick").is_disabled()
    await page.check("#discovery-all")  # the new devices only
    assert await good.locator("input.pick").is_checked()
    assert not await known.locator("input.pick").is_checked()
    await page.fill("#discovery-platform", "site")
    await page.fill("#discovery-prefix", "web-")
    async with page.expect_download() as waiting:
        await page.click("#discovery-download")
    download = await waiting.value
    rows = tmp_path / "found.csv"
    await download.save_as(rows)
    (tmp_path / "config.yaml").write_text(
        "platforms: [{id: site, name: Site}]\ncamera_files: [found.csv]\n"
    )
    (camera,) = load_config(tmp_path / "config.yaml", env={}).cameras
    assert camera.id.startswith("web-") and camera.onvif is not None
    assert camera.onvif.url == good_url and "<img" in camera.name  # text, as the device said


async def _done(progress: Locator) -> bool:
    return ": done," in await progress.inner_text()
