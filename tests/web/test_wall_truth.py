"""A wall tile tells the truth about the picture it shows, in real headless Chromium against the
running service and the simulated cameras: the health of the stream it plays, a picture that
stopped moving, and a delivery path on which the video does not advance."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, Route

from surveillance.auth.roles import Role
from surveillance.simulator import Simulator
from tests.auth_helpers import bearer
from tests.web.conftest import ServiceProcess, free_port, signed_in_page, wait_for

pytestmark = pytest.mark.rtsp

OPERATOR = "operator1"


def one_tile(camera: str) -> dict[str, Any]:
    tile = {"x": 0, "y": 0, "w": 1, "h": 1, "camera": camera}
    return {"name": "one", "title": "One", "cols": 1, "rows": 1, "tiles": [tile]}


async def wall_of_one(
    service: ServiceProcess, browser: Browser, camera: str, before_load: Any = None
) -> Page:
    """The wall page showing ``camera`` alone; ``before_load(page)`` runs before it opens."""
    headers = bearer(service.node, OPERATOR, Role.OPERATOR)
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
        response = await client.put("/api/layouts/one", json=one_tile(camera))
    assert response.status_code == 200, response.text
    page = await signed_in_page(browser, service, OPERATOR, Role.OPERATOR)
    if before_load is not None:
        await before_load(page)
    await page.goto(f"{service.url}/wall/one")
    return page


async def tile(page: Page) -> dict[str, Any]:
    """The one tile: its state, whether its picture is live, its notice and player stats
    (all empty while the page is still loading)."""
    found: dict[str, Any] = await page.evaluate(
        """async () => {
          const root = document.querySelector(".tile");
          if (!root || !window.wall) return { stats: null, live: null, notice: "", state: null };
          const [shown] = await window.wall.tiles();
          return { ...shown, live: root.dataset.live || null,
                   notice: root.querySelector(".notice").textContent,
                   health: root.querySelector(".health").textContent,
                   path: root.querySelector(".path").textContent };
        }"""
    )
    return found


async def live_and_moving(page: Page) -> dict[str, Any] | None:
    shown = await tile(page)
    stats = shown["stats"] or {}
    return shown if shown["live"] == "yes" and stats.get("framesPresented", 0) > 10 else None


async def test_a_tile_whose_picture_stops_says_so_within_two_seconds(
    simulator: Simulator, service_factory: Any, browser: Browser
) -> None:
    camera = {"id": "gate", "name": "Gate", "platform": "town", "url": simulator.url("stall")}
    service: ServiceProcess = service_factory([camera])
    page = await wall_of_one(service, browser, "gate")
    await wait_for(lambda: live_and_moving(page), 20)
    try:
        # The platform stops sending but keeps its connection open: the service calls the
        # camera stalled only after 3 s, the tile must not wait for that.
        simulator.fault("stall", "stall")
        stopped = time.monotonic()

        async def flagged() -> dict[str, Any] | None:
            shown = await tile(page)
            return shown if shown["live"] == "no" else None

        shown = await wait_for(flagged, 10, step=0.05)
        took = time.monotonic() - stopped
        assert took <= 3.5, f"flagged after {took:.1f} s"
        assert "NO PICTURE FOR" in shown["notice"], shown
        assert await page.locator(".tile.not-live").count() == 1
        # It stays flagged, whatever the health says meanwhile.
        for _ in range(8):
            await asyncio.sleep(0.5)
            assert (await tile(page))["live"] == "no"
    finally:
        simulator.fault("stall", "resume")
    # Pictures again: the flag clears by itself.
    shown = await wait_for(lambda: live_and_moving(page), 30)
    assert shown["notice"] == ""
    assert await page.locator(".tile.not-live").count() == 0


async def test_a_sub_stream_tile_shows_the_sub_streams_health(
    simulator: Simulator, service_factory: Any, browser: Browser
) -> None:
    # The main stream is dead, the sub-stream plays: the tile plays the sub-stream and says
    # it is online; full screen plays the main stream and says it is not.
    dead = f"rtsp://127.0.0.1:{free_port()}/x"
    camera = {"id": "dock", "name": "Dock", "platform": "town", "url": dead,
              "sub_url": simulator.url("cam04")}  # fmt: skip
    service: ServiceProcess = service_factory([camera])
    page = await wall_of_one(service, browser, "dock")
    shown = await wait_for(lambda: live_and_moving(page), 20)
    assert shown["stream"] == "sub"
    assert shown["state"] == "online" and shown["health"] == "online", shown
    assert shown["path"].endswith("· sub")
    headers = bearer(service.node, OPERATOR, Role.OPERATOR)
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
        camera_out = (await client.get("/api/cameras/dock")).json()
    assert camera_out["health"]["state"] != "online"  # what the tile used to show

    await page.dblclick(".tile")

    async def main_not_live() -> dict[str, Any] | None:
        shown = await tile(page)
        return shown if shown["stream"] == "main" and shown["state"] != "online" else None

    shown = await wait_for(main_not_live, 10)
    assert shown["live"] == "no" and shown["stats"] is None
    assert shown["notice"].startswith(shown["state"].upper())


async def test_a_b_frame_camera_reconnected_many_times_never_lands_on_webrtc(
    simulator: Simulator, service_factory: Any, browser: Browser
) -> None:
    camera = {"id": "bf", "name": "B-frames", "platform": "town", "url": simulator.url("bframes")}
    service: ServiceProcess = service_factory([camera])
    page = await wall_of_one(service, browser, "bf")
    await wait_for(lambda: live_and_moving(page), 20)
    headers = bearer(service.node, OPERATOR, Role.OPERATOR)
    paths: set[str] = set()
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:

        async def reconnects() -> int:
            health = (await client.get("/api/cameras/bf")).json()["health"]
            return int(health["reconnects"]) if health["state"] == "online" else -1

        for _ in range(8):
            before = await reconnects()
            simulator.fault("bframes", "drop")  # closes the node's connection: it reconnects

            async def reconnected(before: int = before) -> bool:
                return await reconnects() > before

            await wait_for(reconnected, 15, step=0.05)
            # Right after a reconnect is when a B-frame verdict from a lucky sample went
            # wrong: a player started now plans on the stream's first packets.
            await page.reload()
            shown = await wait_for(lambda: live_and_moving(page), 20)
            paths.add(shown["stats"]["path"])
            # The tile that kept playing through the reconnect is read all through it too.
            for _ in range(10):
                stats = (await tile(page))["stats"]
                if stats and stats["path"]:
                    paths.add(stats["path"])
                await asyncio.sleep(0.1)
    assert paths == {"mse"}, paths


async def test_a_failing_camera_says_when_it_retries(
    simulator: Simulator, service_factory: Any, browser: Browser
) -> None:
    """The tile counts down to the service's own `retry_at` (backoff 0.5 s doubling to at
    most 10 s, with jitter), and the camera's "offline since" stays put across attempts."""
    dead = f"rtsp://127.0.0.1:{free_port()}/x"
    camera = {"id": "dead", "name": "Dead", "platform": "town", "url": dead}
    service: ServiceProcess = service_factory([camera])
    headers = bearer(service.node, "retry-reader", Role.VIEWER)
    page = await wall_of_one(service, browser, "dead")

    async def retrying() -> dict[str, Any] | None:
        shown = await tile(page)
        return shown if "retrying in" in shown["notice"] else None

    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
        first = (await client.get("/api/cameras/dead")).json()["health"]
        for _ in range(3):  # several attempts: the count follows each one's retry_at
            shown = await wait_for(retrying, 15)
            now = datetime.now(UTC)
            health = (await client.get("/api/cameras/dead")).json()["health"]
            assert shown["state"] == "offline" and shown["live"] == "no"
            assert shown["notice"].startswith("OFFLINE")
            seconds = int(shown["notice"].split("retrying in ")[1].split(" s")[0])
            assert 1 <= seconds <= 10, shown["notice"]  # ingest.backoff_max_s is 10
            if health["retry_at"] is not None:
                due = datetime.fromisoformat(health["retry_at"]) - now
                assert abs(due.total_seconds() - seconds) <= 2.5 or due < timedelta(0), (
                    shown["notice"], health["retry_at"])  # fmt: skip
            await asyncio.sleep(1.5)
        assert health["state"] == "offline"
        assert health["state_since"] == first["state_since"]  # not reset at every attempt


async def test_a_webrtc_tile_whose_video_does_not_advance_switches_path_by_itself(
    simulator: Simulator, service_factory: Any, browser: Browser
) -> None:
    camera = {"id": "bf", "name": "B-frames", "platform": "town", "url": simulator.url("bframes")}
    service: ServiceProcess = service_factory([camera])
    plans: list[dict[str, Any]] = []

    async def misjudged_plan(route: Route) -> None:
        # A fake, and the only one here: the service no longer sends a B-frame camera over
        # WebRTC (media/reorder.py), so the misjudgement the page must recover from is
        # produced by answering its first plan with "webrtc". Everything after it is real:
        # aiortc sends the B-frame stream, Chromium shows its keyframes only.
        body = json.loads(route.request.post_data or "{}")
        plans.append(body)
        response = await route.fetch()
        plan = await response.json()
        if len(plans) == 1:
            plan["path"] = "webrtc"
        await route.fulfill(response=response, json=plan)

    async def intercept(page: Page) -> None:
        await page.route("**/api/live/plan", misjudged_plan)

    page = await wall_of_one(service, browser, "bf", before_load=intercept)

    async def switched() -> dict[str, Any] | None:
        shown = await tile(page)
        stats = shown["stats"] or {}
        return shown if stats.get("path") == "mse" else None

    started = time.monotonic()
    shown = await wait_for(switched, 25)
    assert time.monotonic() - started < 20
    assert plans[0].get("avoid", []) == []
    assert plans[-1]["avoid"] == ["webrtc"], plans
    assert shown["stats"]["avoid"] == ["webrtc"]
    await wait_for(lambda: live_and_moving(page), 15)
    # And it stays there: one switch, no flapping.
    await asyncio.sleep(3)
    assert (await tile(page))["stats"]["path"] == "mse"
    assert len(plans) == 2, plans
