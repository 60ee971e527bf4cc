"""A wall of transcoded tiles, closed or reloaded: the next page gets the transcode slots the
closed page held within seconds, and a page never competes with itself for them.

Headless Chromium here decodes H.265 neither over MSE nor WebRTC, so both H.265 tiles are
transcoded, and a user may watch ``limits.transcodes_per_user`` (2) transcodes at once: the
page's two tiles take both slots, and the next page gets them only once the closed page's
viewers are let go.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page

from surveillance.auth.roles import Role
from surveillance.simulator import Simulator
from tests.auth_helpers import bearer
from tests.web.conftest import ServiceProcess, signed_in_page, wait_for

pytestmark = pytest.mark.rtsp

OPERATOR = "operator1"
# Without the page's word the server notices a closed page's peers by ICE consent's
# time-out, about 30 s; with it the slots are free at once. Pictures on the next page take
# the transcoder's start as well (it is still warm: it lingers after its last viewer).
NEXT_PAGE_PICTURES_S = 12

NOTICES = """() => [...document.querySelectorAll(".tile .notice")].map((n) => n.textContent)"""


def cameras(simulator: Simulator) -> list[dict[str, Any]]:
    return [
        {"id": f"hevc{i}", "name": f"Forest {i}", "platform": "town", "url": simulator.url("h265")}
        for i in (1, 2)
    ]


LAYOUT = {
    "name": "hevc",
    "title": "Two H.265 cameras",
    "cols": 2,
    "rows": 1,
    "tiles": [
        {"x": 0, "y": 0, "w": 1, "h": 1, "camera": "hevc1"},
        {"x": 1, "y": 0, "w": 1, "h": 1, "camera": "hevc2"},
    ],
}


@pytest.fixture
def service(simulator: Simulator, service_factory: Any) -> ServiceProcess:
    running: ServiceProcess = service_factory(cameras(simulator))
    headers = bearer(running.node, OPERATOR, Role.OPERATOR)
    response = httpx.put(f"{running.url}/api/layouts/hevc", json=LAYOUT, headers=headers)
    assert response.status_code == 200, response.text
    return running


async def both_transcoded_and_moving(page: Page, seen: list[str]) -> bool:
    seen.extend(await page.evaluate(NOTICES))
    tiles: list[dict[str, Any]] = await page.evaluate("window.wall.tiles()")
    stats = [t["stats"] or {} for t in tiles]
    # Both tiles of the layout (none before the page has built them).
    playing = [s.get("path") == "transcode" and s.get("framesDecoded", 0) > 0 for s in stats]
    return len(playing) == 2 and all(playing)


async def test_a_closed_pages_transcodes_are_free_for_the_next_page_within_seconds(
    service: ServiceProcess, browser: Browser
) -> None:
    first = await signed_in_page(browser, service, OPERATOR, Role.OPERATOR)
    await first.goto(f"{service.url}/wall/hevc?mode=wall")
    seen: list[str] = []
    await wait_for(lambda: both_transcoded_and_moving(first, seen), 40)

    # Reloaded: the same page asks again while its former self held both slots.
    await first.reload()
    started = time.monotonic()
    await wait_for(lambda: both_transcoded_and_moving(first, seen), NEXT_PAGE_PICTURES_S)
    reload_s = time.monotonic() - started

    # Closed, and the wall opened again in a new page of the same user.
    context = first.context
    await first.close()
    second = await context.new_page()
    await second.goto(f"{service.url}/wall/hevc?mode=wall")
    started = time.monotonic()
    await wait_for(lambda: both_transcoded_and_moving(second, seen), NEXT_PAGE_PICTURES_S)
    reopen_s = time.monotonic() - started

    # Nothing on the wall told an audience to do what nobody in front of a wall can.
    assert not [n for n in seen if "close one first" in n], (seen, reload_s, reopen_s)


async def test_a_tile_waiting_for_a_slot_says_so_and_gets_it_by_itself(
    service: ServiceProcess, browser: Browser
) -> None:
    """Another page of the same user holds both slots: the wall waits, says so in words a
    wall can live with, and plays as soon as the other page goes."""
    other = await signed_in_page(browser, service, OPERATOR, Role.OPERATOR)
    await other.goto(f"{service.url}/wall/hevc")
    await wait_for(lambda: both_transcoded_and_moving(other, []), 40)

    # Only the user who opened a viewer ends it by its id.
    viewers = [t["stats"]["viewer"] for t in await other.evaluate("window.wall.tiles()")]
    assert all(viewers), viewers
    stranger = (await signed_in_page(browser, service, "operator2", Role.OPERATOR)).context
    csrf = {c["name"]: c["value"] for c in await stranger.cookies(service.url)}
    refused = await stranger.request.delete(
        f"{service.url}/api/live/webrtc/{viewers[0]}",
        headers={"X-CSRF-Token": csrf["surveillance_csrf"]},
    )
    assert refused.status == 404, await refused.text()

    wall = await signed_in_page(browser, service, OPERATOR, Role.OPERATOR)
    await wall.goto(f"{service.url}/wall/hevc?mode=wall")

    async def waiting() -> list[str] | None:
        notices: list[str] = await wall.evaluate(NOTICES)
        return notices if all("Waiting for a free transcoder" in n for n in notices) else None

    await wait_for(waiting, 15)
    await other.close()
    await wait_for(lambda: both_transcoded_and_moving(wall, []), NEXT_PAGE_PICTURES_S + 4)
