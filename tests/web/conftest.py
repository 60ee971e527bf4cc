"""Browser tests: the real service over HTTP, the real RTSP simulator, real headless Chromium.

Chromium is Debian's (`/usr/bin/chromium`), driven by Playwright without its own browser
download (this machine reaches no browser-download host).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright

from surveillance.api.node import Node
from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from tests.auth_helpers import TEST_PASSWORD, ensure_user
from tests.service import ServiceProcess, free_port  # noqa: F401 - re-exported for the web tests

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
]


def service_config(cameras: list[dict[str, Any]], data_dir: Path) -> AppConfig:
    return AppConfig.model_validate(
        {
            "server": {"data_dir": str(data_dir)},
            "ingest": {"backoff_initial_s": 0.2, "backoff_max_s": 2},
            "platforms": [
                {"id": "town", "name": "Town CCTV"},
                {"id": "police", "name": "Safe city"},
            ],
            "cameras": cameras,
        }
    )


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


async def sign_in(context: BrowserContext, url: str, node: Node, name: str, role: Role) -> None:
    """Sign the browser context in as ``name`` (made with ``role`` if missing), the way the
    sign-in page does: its session and CSRF cookies are the pages' from then on."""
    ensure_user(node, name, role)
    response = await context.request.post(
        f"{url}/api/auth/login", data={"name": name, "password": TEST_PASSWORD}
    )
    assert response.status == 200, await response.text()
    cookies = {cookie["name"] for cookie in await context.cookies(url)}
    assert {"surveillance_session", "surveillance_csrf"} <= cookies, cookies


async def signed_in_page(
    browser: Browser,
    service: ServiceProcess,
    name: str,
    role: Role,
    viewport: ViewportSize | None = None,
) -> Page:
    """A page in a new browser context signed in as ``name``."""
    context = await browser.new_context(viewport=viewport)
    await sign_in(context, service.url, service.node, name, role)
    return await context.new_page()


async def wait_for(predicate: Any, within: float, step: float = 0.25) -> Any:
    """Poll an async predicate until it returns something truthy."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(step)
    raise AssertionError(f"not reached within {within} s; last value: {last!r}")


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[ServiceProcess] = []

    def make(cameras: list[dict[str, Any]]) -> ServiceProcess:
        service = ServiceProcess(service_config(cameras, tmp_path / "data"))
        service.start()
        started.append(service)
        return service

    yield make
    for service in started:
        service.stop()
