"""The wall takes camera health from the service's pushed events (GET /api/cameras/events), not
from a 2 s poll: in real headless Chromium against the running service and the simulator, a
camera that goes down and comes back reaches its tile with no GET /api/cameras after load."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, Request

from surveillance.auth.roles import Role
from surveillance.simulator import Simulator
from tests.auth_helpers import bearer
from tests.web.conftest import ServiceProcess, signed_in_page, wait_for

pytestmark = pytest.mark.rtsp

OPERATOR = "operator1"


async def tile(page: Page) -> dict[str, Any]:
    found: dict[str, Any] = await page.evaluate(
        """() => {
          const root = document.querySelector(".tile[data-camera='door']");
          if (!root) return { state: null, live: null, notice: "" };
          return { state: root.dataset.state, live: root.dataset.live || null,
                   notice: root.querySelector(".notice").textContent };
        }"""
    )
    return found


async def test_health_reaches_the_tiles_by_pushed_events_without_polling(
    simulator: Simulator, service_factory: Any, browser: Browser
) -> None:
    camera = {"id": "door", "name": "Door", "platform": "town", "url": simulator.url("drop")}
    service: ServiceProcess = service_factory([camera])
    headers = bearer(service.node, OPERATOR, Role.OPERATOR)
    layout = {"name": "one", "title": "One", "cols": 1, "rows": 1,
              "tiles": [{"x": 0, "y": 0, "camera": "door"}]}  # fmt: skip
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
        assert (await client.put("/api/layouts/one", json=layout)).status_code == 200
    page = await signed_in_page(browser, service, OPERATOR, Role.OPERATOR)
    polls: list[str] = []

    def count_polls(request: Request) -> None:
        if request.url.endswith("/api/cameras"):
            polls.append(request.url)

    await page.goto(f"{service.url}/wall/one")
    await wait_for(lambda: _body_health_is(page, "events"), 10)
    page.on("request", count_polls)  # from here on: the page's load is done

    async def live() -> bool:
        shown = await tile(page)
        return shown["state"] == "online" and shown["live"] == "yes"

    await wait_for(live, 20)
    try:
        simulator.fault("drop", "refuse")  # the camera is gone, and refuses the reconnects

        async def down() -> dict[str, Any] | None:
            shown = await tile(page)
            return shown if shown["state"] in ("offline", "connecting") else None

        shown = await wait_for(down, 15)
        assert shown["live"] == "no"
        async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
            now = (await client.get("/api/cameras/door")).json()
        if now["state"] == "offline" and (now.get("retry_at") or now["health"].get("retry_at")):
            # The events carry when a failing camera retries: the tile says so.
            await wait_for(lambda: _notice_has(page, "retrying"), 5)
    finally:
        simulator.fault("drop", "resume")
    await wait_for(live, 30)
    assert await page.evaluate("document.body.dataset.health") == "events"
    assert polls == [], "the page polled /api/cameras while events flowed"


async def _body_health_is(page: Page, mode: str) -> bool:
    return bool(await page.evaluate("document.body.dataset.health") == mode)


async def _notice_has(page: Page, text: str) -> bool:
    return text in (await tile(page))["notice"]
