"""Wall mode's status line counts a camera by what the wall shows of it, in real headless
Chromium against the running service and the simulator: a camera whose main stream is
online but whose sub-stream (what its grid tile plays) is stalled shows a not-live tile,
and is counted down, not online."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, Page

from surveillance.auth.roles import Role
from surveillance.simulator import Simulator
from tests.web.conftest import ServiceProcess, signed_in_page, wait_for

pytestmark = pytest.mark.rtsp

OPERATOR = "operator1"

LINE = """() => {
  const line = document.getElementById("status-line");
  const tile = document.querySelector(".tile[data-camera='dual']");
  return { ...line.dataset, text: line.textContent, tile: tile ? tile.dataset.state : null };
}"""


async def status(page: Page) -> dict[str, Any]:
    found: dict[str, Any] = await page.evaluate(LINE)
    return found


async def test_a_stalled_sub_stream_counts_its_camera_down(
    simulator: Simulator, service_factory: Any, browser: Browser
) -> None:
    gate = {"id": "gate", "name": "North gate", "platform": "town",
            "url": simulator.url("baseline")}  # fmt: skip
    dual = {"id": "dual", "name": "Depot yard", "platform": "town",
            "url": simulator.url("cam04"), "sub_url": simulator.url("stall")}  # fmt: skip
    service: ServiceProcess = service_factory([gate, dual])
    page = await signed_in_page(browser, service, OPERATOR, Role.OPERATOR)
    await page.goto(f"{service.url}/wall?mode=wall")
    await page.wait_for_selector(".tile[data-state]")
    await page.evaluate("window.wall.startTour('t', [{dwell_s: 600, grid: {cols: 2, rows: 1, "
                        "tiles: [{x: 0, y: 0, w: 1, h: 1, camera: 'gate'}, "
                        "{x: 1, y: 0, w: 1, h: 1, camera: 'dual'}]}}])")  # fmt: skip

    async def all_online() -> dict[str, Any] | None:
        found = await status(page)
        return found if found["online"] == "2" and found["tile"] == "online" else None

    await wait_for(all_online, 20)
    simulator.fault("stall", "stall")
    try:
        # Stalled from 3 s of silence: the tile says so, and so does the line.
        async def sub_stalled() -> dict[str, Any] | None:
            found = await status(page)
            return found if found["tile"] == "stalled" else None

        await wait_for(sub_stalled, 10, step=0.1)
        counted = await status(page)
    finally:
        simulator.fault("stall", "resume")
    cameras = await page.evaluate("fetch('/api/cameras').then((r) => r.json())")
    dual = next(c for c in cameras if c["id"] == "dual")
    assert dual["state"] == "online", dual  # the main stream, which the old count went by
    assert counted["online"] == "1" and counted["expected"] == "2", counted
    assert counted["down"] == "1" and "1 down" in counted["text"], counted
