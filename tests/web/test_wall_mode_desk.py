"""The operator desk beside wall mode, in real headless Chromium against the running service:
the desk keeps its controls, saving a layout sets how it opens, the camera list shows whole
names beside their tags, and every page has an icon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Dialog

from surveillance.auth.roles import Role
from surveillance.simulator import Simulator
from tests.auth_helpers import bearer
from tests.service import ServiceProcess
from tests.web.conftest import signed_in_page, wait_for

pytestmark = pytest.mark.rtsp

OPERATOR = "operator1"
PAGES = ["/login", "/wall", "/cases", "/cases/2026-0001", "/admin"]
# Long enough that two tags beside it used to cut it to a few letters in the 300 px list.
LONG_NAME = "Market square east"


def desk_cameras(simulator: Simulator) -> list[dict[str, Any]]:
    return [
        {"id": "gate", "name": "North gate", "platform": "town", "url": simulator.url("baseline")},
        {"id": "square", "name": LONG_NAME, "platform": "town", "url": simulator.url("cam01"),
         "tags": ["traffic", "school-gate"]},
    ]  # fmt: skip


async def test_the_desk_keeps_its_controls_and_saving_sets_how_a_layout_opens(
    simulator: Simulator, service_factory: Any, browser: Browser
) -> None:
    service: ServiceProcess = service_factory(desk_cameras(simulator))
    headers = bearer(service.node, OPERATOR, Role.OPERATOR)
    body = {"name": "led", "title": "LED", "display": "wall", "cols": 1, "rows": 1,
            "tiles": [{"x": 0, "y": 0, "camera": "gate"}]}  # fmt: skip
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
        assert (await client.put("/api/layouts/led", json=body)).status_code == 200
        # A mode the page would not understand is refused, not ignored.
        assert (await client.get("/wall/led?mode=kiosk")).status_code == 422

    page = await signed_in_page(browser, service, OPERATOR, Role.OPERATOR)
    answers = {"Layout name": "led", "Title": "LED", "Open this layout as": "desk"}
    asked: list[str] = []

    async def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        reply = next(v for k, v in answers.items() if dialog.message.startswith(k))
        assert dialog.default_value in ("", "led", "wall"), dialog.default_value
        await dialog.accept(reply)

    page.on("dialog", answer)
    await page.goto(f"{service.url}/wall/led?mode=desk")  # the URL wins over the layout
    await page.wait_for_selector(".tile[data-state]")
    assert not await page.evaluate("document.body.classList.contains('wall-mode')")
    for control in ("#layout-select", "#camera-list", "#toggle-list", "#filter-text"):
        assert await page.locator(control).is_visible(), control
    assert not await page.locator("#status-line").is_visible()

    # Saving from the desk asks how the layout opens, offering what it is now.
    await page.locator("#save-layout").click()
    await wait_for(lambda: page.evaluate("document.getElementById('message').textContent"), 5)
    assert any(q.startswith("Open this layout as") for q in asked), asked
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
        saved = (await client.get("/api/layouts/led")).json()
    assert saved["display"] == "desk" and saved["tiles"][0]["camera"] == "gate"


async def test_camera_names_in_the_list_are_whole_beside_two_tags(
    simulator: Simulator, service_factory: Any, browser: Browser
) -> None:
    service: ServiceProcess = service_factory(desk_cameras(simulator))
    page = await signed_in_page(browser, service, OPERATOR, Role.OPERATOR)
    await page.goto(f"{service.url}/wall")
    name = page.locator("#camera-list [data-camera=square] .name")
    await name.wait_for()
    assert await name.text_content() == LONG_NAME
    sizes = await name.evaluate("(node) => [node.scrollWidth, node.clientWidth]")
    assert sizes[0] <= sizes[1], f"name cut short: {sizes}"
    chips = page.locator("#camera-list [data-camera=square] .chip")
    assert await chips.count() == 2
    for chip in await chips.all():
        assert await chip.is_visible()


async def test_every_page_names_an_icon_and_favicon_ico_answers_with_an_image(
    simulator: Simulator, service_factory: Any, browser: Browser, tmp_path: Path
) -> None:
    service: ServiceProcess = service_factory(desk_cameras(simulator))
    async with httpx.AsyncClient(base_url=service.url) as client:
        response = await client.get("/favicon.ico")  # nobody signed in: it is public
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.content.startswith(b"<svg")

    page = await signed_in_page(browser, service, "admin1", Role.ADMIN)
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    for path in PAGES:
        await page.goto(f"{service.url}{path}")
        icon = await page.evaluate("(document.querySelector('link[rel=icon]') || {}).href")
        assert icon, path
        async with httpx.AsyncClient() as client:
            fetched = await client.get(icon)
        assert fetched.status_code == 200 and fetched.headers["content-type"].startswith("image/")
    assert [url for url in missing if "icon" in url] == []


async def test_the_mode_in_the_url_is_read_in_any_case_and_a_wrong_one_answers_a_page(
    simulator: Simulator, service_factory: Any, browser: Browser
) -> None:
    service: ServiceProcess = service_factory(desk_cameras(simulator))
    page = await signed_in_page(browser, service, OPERATOR, Role.OPERATOR)
    for query, wall_mode in (("?mode=WALL", True), ("?mode=Desk", False), ("?mode=", False),
                             ("?mode=%20wall%20", True)):  # fmt: skip
        response = await page.goto(f"{service.url}/wall{query}")
        assert response is not None and response.status == 200, query
        await page.wait_for_selector(".tile[data-state]")
        assert await page.evaluate("document.body.classList.contains('wall-mode')") == wall_mode

    # Anything else: a page a person can read, saying what the choices are, not raw JSON.
    hostile = "<b>kiosk</b>"
    response = await page.goto(f"{service.url}/wall/led?mode={hostile}")
    assert response is not None and response.status == 422
    assert response.headers["content-type"].startswith("text/html")
    text = await page.inner_text("body")
    assert f"mode={hostile}" in text and "mode=wall" in text and "mode=desk" in text, text
    assert await page.locator("b").count() == 0  # the value is shown as text, never markup
    await page.click("text=Open in wall mode")
    await page.wait_for_selector(".tile[data-state]")
    assert await page.evaluate("document.body.classList.contains('wall-mode')")

    # Too long a mode or tour name: the same kind of page, shortened, not pydantic's JSON.
    for query, heading in ((f"?mode={'w' * 300}", "Unknown wall mode"),
                           (f"?tour={'t' * 5000}", "Not a tour name")):  # fmt: skip
        response = await page.goto(f"{service.url}/wall{query}")
        assert response is not None and response.status == 422, query
        assert response.headers["content-type"].startswith("text/html")
        text = await page.inner_text("body")
        assert heading in text and "…" in text and len(text) < 1000, text

    # A tour name the API refuses: the page says why in the API's words, not "Unprocessable
    # Entity" (js/api.js reads the messages of a refused request's fields).
    await page.goto(f"{service.url}/wall?tour=%3Cb%3Ebad%3C%2Fb%3E")

    async def told() -> str | None:
        text = await page.text_content("#message") or ""
        return text if text.startswith("Tour ") else None

    said = await wait_for(told, 10)
    assert "Unprocessable" not in said and len(said) > len("Tour <b>bad</b>: "), said
    assert await page.locator("#message b").count() == 0
