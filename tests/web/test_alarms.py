"""Alarms on the wall, in real headless Chromium against the running service and the RTSP
simulator: an operator draws a zone with the mouse on the intruder camera's picture; the
motion in it raises an alarm that pins the camera to the alarm tile of every wall showing
it, flashes it and pauses the tour; the alarm is acknowledged from the alarms panel and the
wall goes back to its tour; "Case" turns it into a case whose evidence (picture and clip) is
on the case page. And a storm (a platform's cameras going down together) is ONE item in the
panel, with no tile pinned or flashing and no sound: warnings only mark."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Dialog, Page

from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from surveillance.simulator import Simulator
from tests.auth_helpers import bearer
from tests.service import ServiceProcess, free_port
from tests.web.conftest import signed_in_page, wait_for

pytestmark = pytest.mark.rtsp

OPERATOR = "operator1"  # draws zones (zones.edit); no cases.write
HANDLER = "handler1"  # acknowledges and reports cases (events.ack, cases.write)
# A hostile camera name: shown as text everywhere, never run or parsed.
YARD_NAME = '<script>alert("yard")</script> "Yard" \u05d7\u05e6\u05e8'
ZONE_NAME = "Fence <img src=x onerror=alert(1)> 'east'"
# The intruder scene's walker stays inside x 0.55-0.85, y 0.45-0.85 of the picture.
ZONE = [(0.5, 0.4), (0.92, 0.4), (0.92, 0.92), (0.5, 0.92)]


def page_of(*cameras: str) -> dict[str, Any]:
    tiles = [{"x": i, "y": 0, "camera": camera} for i, camera in enumerate(cameras)]
    return {"cols": len(cameras), "rows": 1, "tiles": tiles}


def node_config(cameras: list[dict[str, Any]], data_dir: Path, events: dict[str, Any]) -> AppConfig:
    return AppConfig.model_validate(
        {
            "server": {"data_dir": str(data_dir)},
            "ingest": {"backoff_initial_s": 0.2, "backoff_max_s": 2},
            "platforms": [
                {"id": "town", "name": "Town CCTV"},
                {"id": "police", "name": "Safe city"},
            ],
            "cameras": cameras,
            # Diagnosis is other tests' business: off, so only what these tests raise shows.
            "events": {"diagnosis": {"enabled": False}, **events},
        }
    )


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Any]:
    started: list[ServiceProcess] = []

    def make(cameras: list[dict[str, Any]], events: dict[str, Any]) -> ServiceProcess:
        service = ServiceProcess(node_config(cameras, tmp_path / "data", events))
        service.start()
        started.append(service)
        return service

    yield make
    for service in started:
        service.stop()


WALL = """() => ({
  alarms: window.wall && window.wall.alarms ? window.wall.alarms() : null,
  tour: document.getElementById("tour-status").textContent,
  tiles: [...document.querySelectorAll(".tile")].map((tile) => ({
    camera: tile.dataset.camera,
    pinned: tile.classList.contains("alarm-pinned"),
    animation: getComputedStyle(tile).animationName,
    badges: [...tile.querySelectorAll(".badge.event")].map((b) => b.textContent),
  })),
  items: [...document.querySelectorAll("#alarm-list > .alarm-item")].map((item) => ({
    id: Number(item.dataset.event), type: item.dataset.type, state: item.dataset.state,
    severity: [...item.classList].find((c) => c.startsWith("severity-")),
    where: item.querySelector(".alarm-where").textContent,
    summary: item.querySelector(".alarm-summary").textContent,
    folded: item.querySelectorAll(".alarm-child").length,
    buttons: [...item.querySelectorAll("button")].map((b) => b.textContent),
  })),
  panelShown: document.getElementById("alarm-panel").checkVisibility(),
  scripts: document.querySelectorAll(
    "#alarm-panel script, #alarm-panel img:not(.alarm-thumb), .zone-editor script").length,
  buttonsShown: [...document.querySelectorAll("#alarm-list button")]
    .filter((b) => b.checkVisibility()).length,
})"""


async def wall(page: Page) -> dict[str, Any]:
    shown: dict[str, Any] = await page.evaluate(WALL)
    return shown


async def draw_zone(page: Page, points: list[tuple[float, float]], close: bool) -> None:
    """Clicks the points on the zone editor's picture, then the first again to close it."""
    box = await page.locator("#zone-editor .zone-picture").bounding_box()
    assert box is not None and box["width"] > 100, box
    for x, y in [*points, *(points[:1] if close else [])]:
        await page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])


async def test_a_drawn_zone_alarm_pins_the_wall_pauses_the_tour_and_becomes_a_case(
    simulator: Simulator, services: Any, browser: Browser
) -> None:
    cameras = [
        {"id": "yard", "name": YARD_NAME, "platform": "town", "url": simulator.url("intruder")},
        *({"id": f"cam{i:02d}", "name": f"Camera {i}", "platform": "town",
           "url": simulator.url(f"cam{i:02d}")} for i in range(3)),
    ]  # fmt: skip
    service: ServiceProcess = services(cameras, {"zones": {"hold_s": 0.5, "cooldown_s": 600}})
    headers = bearer(service.node, OPERATOR, Role.OPERATOR)
    room = {"name": "room", "title": "Room", "alarm_tile": 1, **page_of("yard", "cam00")}
    tour = {
        "name": "rounds",
        "title": "Rounds",
        "dwell_s": 4,
        "pages": [{"grid": page_of("cam00", "cam01")}, {"grid": page_of("cam01", "cam02")}],
    }
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
        assert (await client.put("/api/layouts/room", json=room)).status_code == 200
        assert (await client.get("/api/layouts/room")).json()["alarm_tile"] == 1
        assert (await client.put("/api/tours/rounds", json=tour)).status_code == 200

    # The wall screen: the room's layout running the tour (no yard on it), a handler's.
    screen = await signed_in_page(browser, service, HANDLER, Role.HANDLER)
    dialogs: list[str] = []

    async def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    screen.on("dialog", refuse)
    await screen.goto(f"{service.url}/wall/room?tour=rounds")
    await wait_for(lambda: screen.evaluate("document.body.dataset.events === 'events'"), 15)
    await wait_for(lambda: _touring(screen), 10)

    # The desk: the operator opens "Zones…" from the yard tile's menu.
    desk = await signed_in_page(
        browser, service, OPERATOR, Role.OPERATOR, {"width": 1600, "height": 900}
    )
    desk.on("dialog", refuse)
    await desk.goto(f"{service.url}/wall/room")
    yard_tile = desk.locator(".tile[data-camera=yard]")
    await yard_tile.locator(".tile-menu-button").click()
    await desk.locator(".tile-menu-item", has_text="Zones…").click()
    editor = desk.locator("#zone-editor")
    await editor.wait_for()
    assert YARD_NAME in (await editor.locator(".zone-title").text_content() or "")
    await wait_for(
        lambda: desk.evaluate(
            "document.querySelector('#zone-editor .zone-picture').naturalWidth > 0"
        ),
        15,
    )

    # Two points are not a zone: the server's 422 shows beside the outline.
    await editor.locator("input[name=name]").fill(ZONE_NAME)
    await draw_zone(desk, ZONE[:2], close=False)
    await editor.locator(".zone-save").click()
    points_error = editor.locator(".zone-error[data-field=points]")
    await wait_for(lambda: points_error.text_content(), 10)
    assert "3" in (await points_error.text_content() or "")
    assert "422" in (await editor.locator(".zone-status").text_content() or "")

    # Drawn again, closed, one point dragged a little; saved.
    await editor.locator(".zone-clear").click()
    await draw_zone(desk, ZONE, close=True)
    assert await editor.locator("polygon.zone-shape.closed").count() == 1
    box = await desk.locator("#zone-editor .zone-picture").bounding_box()
    assert box is not None
    corner = (box["x"] + ZONE[2][0] * box["width"], box["y"] + ZONE[2][1] * box["height"])
    await desk.mouse.move(*corner)
    await desk.mouse.down()
    await desk.mouse.move(
        corner[0] + 0.04 * box["width"], corner[1] + 0.04 * box["height"], steps=4
    )
    await desk.mouse.up()
    await editor.locator(".zone-save").click()
    await wait_for(lambda: editor.locator(".zone-item").count(), 10)
    assert await editor.locator(".zone-item .zone-name").first.text_content() == ZONE_NAME
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
        (zone,) = (await client.get("/api/cameras/yard/zones")).json()
    assert zone["name"] == ZONE_NAME and zone["armed_now"] is True
    assert len(zone["points"]) == 4
    assert abs(zone["points"][2][0] - 0.96) < 0.02 and abs(zone["points"][2][1] - 0.96) < 0.02
    await editor.locator(".zone-close").click()

    # "Set reference picture", from the same menu: one click takes the current picture.
    await yard_tile.locator(".tile-menu-button").click()
    await desk.locator(".tile-menu-item", has_text="Set reference picture").click()
    reference = desk.locator("#reference-dialog")
    await reference.locator(".reference-set").click()
    said = await wait_for(reference.locator(".zone-status").text_content, 15)
    assert said == "Reference picture set.", said
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
        quality = (await client.get("/api/cameras/yard/quality")).json()
    assert quality["reference"]["set_by"] == OPERATOR
    await reference.locator("button", has_text="Close").click()

    # The desk silences alarms; this browser remembers it.
    await desk.locator("#alarm-mute").click()
    assert await desk.locator("#alarm-mute").text_content() == "Sound off"
    assert await desk.evaluate("localStorage.getItem('surveillance.alarms.muted')") == "1"

    # The intruder walks in: the alarm pins yard on the alarm tile (1) of every wall showing
    # the room, flashing; the screen's tour is paused; the panel lists it; a beep is asked.
    async def pinned(page: Page) -> dict[str, Any] | None:
        shown = await wall(page)
        tile = shown["tiles"][1]
        return shown if tile["pinned"] and tile["camera"] == "yard" else None

    shown = await wait_for(lambda: pinned(screen), 60)
    assert shown["tiles"][1]["animation"] == "alarm-flash"
    assert not shown["tiles"][0]["pinned"]
    assert "(paused)" in shown["tour"], shown["tour"]
    assert shown["alarms"]["beeps"] >= 1
    (item,) = shown["items"]
    assert item["type"] == "zone.motion" and item["severity"] == "severity-alarm"
    assert item["state"] == "open" and item["where"] == YARD_NAME
    assert item["summary"] == f"Motion in zone {ZONE_NAME}"
    assert item["buttons"] == ["Ack", "Case"]
    await wait_for(lambda: pinned(desk), 10)  # the desk's wall too
    thumb = "[...document.querySelectorAll('#alarm-list .alarm-thumb')]"
    await wait_for(lambda: screen.evaluate(f"{thumb}.some((i) => i.naturalWidth > 0)"), 15)
    paused_page = await screen.evaluate("document.getElementById('tour-status').dataset.page")

    # Acknowledged: the wall goes back to the tour's page, and the tour goes on.
    await screen.locator(f"#alarm-list .alarm-item[data-event='{item['id']}'] .alarm-ack").click()

    async def back_on_tour() -> dict[str, Any] | None:
        shown = await wall(screen)
        cameras = [tile["camera"] for tile in shown["tiles"]]
        on_page = cameras in (["cam00", "cam01"], ["cam01", "cam02"])
        unpinned = not any(tile["pinned"] for tile in shown["tiles"])
        return shown if on_page and unpinned and "(paused)" not in shown["tour"] else None

    shown = await wait_for(back_on_tour, 10)
    assert shown["alarms"]["pinned"] is None and shown["alarms"]["waiting"] == []
    assert paused_page is not None
    await wait_for(lambda: _page_changed(screen), 12)  # the tour pages again
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
        event = (await client.get(f"/api/events/{item['id']}")).json()
    assert event["acked_by"] == HANDLER

    # "Case": one click; the panel links the case; its page lists the picture and the clip.
    await screen.locator(f"#alarm-list .alarm-item[data-event='{item['id']}'] .alarm-case").click()
    status = screen.locator("#alarm-status")
    said = await wait_for(status.text_content, 60)
    assert "reported" in said, said
    link = status.locator("a.alarm-case-link")
    href = await link.get_attribute("href")
    assert href and href.startswith("/cases/"), href
    case_page = await screen.context.new_page()
    await case_page.goto(f"{service.url}{href}")
    await case_page.locator("article[data-kind=snapshot]").first.wait_for(timeout=20_000)
    await case_page.locator("article[data-kind=clip]").first.wait_for(timeout=20_000)
    assert ZONE_NAME in (await case_page.locator("#case-description").text_content() or "")
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
        event = (await client.get(f"/api/events/{item['id']}")).json()
    assert event["case_number"] and href.endswith(event["case_number"])

    # Nothing a name holds ran: no dialog, no element made of it.
    assert dialogs == []
    assert (await wall(screen))["scripts"] == 0


async def _touring(page: Page) -> bool:
    status = str(await page.evaluate("document.getElementById('tour-status').textContent"))
    return "page" in status and "(paused)" not in status


async def _page_changed(page: Page) -> bool:
    first = await page.evaluate("document.getElementById('tour-status').dataset.page")
    await page.wait_for_timeout(500)
    return bool(first != await page.evaluate("document.getElementById('tour-status').dataset.page"))


async def test_a_storm_is_one_platform_item_and_warnings_pin_nothing(
    simulator: Simulator, services: Any, browser: Browser
) -> None:
    # Four town cameras behind a port nobody listens on: down from the start, together. A
    # police camera whose picture goes black (a quality warning), and one that is fine.
    dead = f"rtsp://127.0.0.1:{free_port()}/x"
    cameras = [{"id": f"down{i}", "name": f"Down {i}", "platform": "town", "url": dead}
               for i in range(4)]  # fmt: skip
    for camera, mount in (("black", "black"), ("gate", "cam00")):
        cameras.append(
            {
                "id": camera,
                "name": camera.title(),
                "platform": "police",
                "url": simulator.url(mount),
            }
        )
    events = {
        "offline_after_s": 1,
        "storm_cameras": 3,
        "storm_window_s": 30,
        # Quick verdicts; the black clip loops to its ordinary picture for 3 s: no clearing.
        "diagnosis": {"interval_s": 1, "settle_s": 1, "hold_s": 2, "clear_s": 60},
    }
    service: ServiceProcess = services(cameras, events)
    headers = bearer(service.node, OPERATOR, Role.OPERATOR)
    shown_cameras = ["down0", "down1", "black", "gate"]
    layout = {"name": "led", "title": "LED", "display": "wall", **page_of(*shown_cameras)}
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
        assert (await client.put("/api/layouts/led", json=layout)).status_code == 200

    page = await signed_in_page(browser, service, OPERATOR, Role.OPERATOR)
    await page.goto(f"{service.url}/wall/led")  # an LED wall: wall mode, from the layout

    async def storm_and_dark() -> dict[str, Any] | None:
        shown = await wall(page)
        items = {item["type"]: item for item in shown["items"]}
        storm, dark = items.get("platform.offline"), items.get("quality.dark")
        ok = len(shown["items"]) == 2 and storm and storm["folded"] == 4 and dark
        return shown if ok else None

    shown = await wait_for(storm_and_dark, 60)
    assert shown["panelShown"]
    assert await page.evaluate("document.body.classList.contains('wall-mode')")
    assert {item["severity"] for item in shown["items"]} == {"severity-warning"}
    assert shown["buttonsShown"] == 0  # nobody touches an LED wall
    # Warnings only mark: the black camera's tile says DARK; nothing pinned, nothing
    # flashing, no sound; offline is the tile's own health, not an event badge.
    await page.wait_for_timeout(1500)
    shown = await wall(page)
    assert [tile["camera"] for tile in shown["tiles"]] == shown_cameras
    assert [tile["badges"] for tile in shown["tiles"]] == [[], [], ["DARK"], []]
    assert not any(tile["pinned"] for tile in shown["tiles"])
    assert all(tile["animation"] == "none" for tile in shown["tiles"])
    assert shown["alarms"]["beeps"] == 0 and shown["alarms"]["waiting"] == []
