"""Bidirectional controls in names, in real headless Chromium against the running service.

U+202E (right-to-left override) before "gnp.exe" draws it "exe.png": a name can pass for
another, or hide what it is. Layout and tour titles (anyone with wall.edit sets them) are
refused with such controls (422), as are config names (tests/config); a title stored before
that rule still loads and is drawn in its own order, the control visibly replaced; and every
name is set apart from the text around it (unicode-bidi: isolate), as <bdi> would.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page

from surveillance.auth.roles import Role
from surveillance.simulator import Simulator
from surveillance.wall.layouts import Grid
from surveillance.wall.tours import Tour, TourPage
from tests.auth_helpers import bearer
from tests.web.conftest import ServiceProcess, signed_in_page, wait_for

pytestmark = pytest.mark.rtsp

OPERATOR = "operator1"
TRICK = "Rounds \u202egnp.exe"  # drawn "Rounds exe.png" where the override is obeyed
HEBREW = "\u05e9\u05e2\u05e8 \u05e6\u05e4\u05d5\u05df"  # "north gate", right to left

# Where each of the characters of "gnp.exe" is drawn, left to right, in one element.
DRAWN_ORDER = """([selector, word]) => {
  const node = document.querySelector(selector);
  const text = node.firstChild;
  const at = text.textContent.indexOf(word);
  if (at < 0) return null;
  return [...word].map((_, i) => {
    const range = document.createRange();
    range.setStart(text, at + i);
    range.setEnd(text, at + i + 1);
    return range.getBoundingClientRect().left;
  });
}"""

ISOLATED = """(selectors) => selectors.map((selector) => {
  const node = document.querySelector(selector);
  return node ? getComputedStyle(node).unicodeBidi : `missing ${selector}`;
})"""


def tour_with_title(title: str) -> dict[str, Any]:
    grid = {"cols": 1, "rows": 1, "tiles": [{"x": 0, "y": 0, "camera": "gate"}]}
    return {"name": "rounds", "title": title, "pages": [{"grid": grid, "dwell_s": 60}]}


@pytest.fixture
def service(simulator: Simulator, service_factory: Any) -> ServiceProcess:
    camera = {"id": "gate", "name": HEBREW, "platform": "town", "url": simulator.url("baseline"),
              "tags": ["traffic"]}  # fmt: skip
    running: ServiceProcess = service_factory([camera])
    return running


async def test_titles_with_bidi_controls_are_refused_with_a_clear_422(
    service: ServiceProcess,
) -> None:
    headers = bearer(service.node, OPERATOR, Role.OPERATOR)
    layout = {"name": "led", "title": "Gate \u2067x", "cols": 1, "rows": 1, "tiles": []}
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
        refused = await client.put("/api/layouts/led", json=layout)
        assert refused.status_code == 422, refused.text
        assert "U+2067 (RIGHT-TO-LEFT ISOLATE)" in refused.text, refused.text
        refused = await client.put("/api/tours/rounds", json=tour_with_title(TRICK))
        assert refused.status_code == 422, refused.text
        assert "U+202E (RIGHT-TO-LEFT OVERRIDE)" in refused.text, refused.text
        # A right-to-left title needs no control, and a mark is harmless: both are kept.
        fine = await client.put("/api/tours/rounds", json=tour_with_title(f"{HEBREW}\u200f"))
        assert fine.status_code == 200, fine.text


async def open_desk(browser: Browser, service: ServiceProcess) -> Page:
    page = await signed_in_page(browser, service, OPERATOR, Role.OPERATOR)
    await page.goto(f"{service.url}/wall")
    await page.wait_for_selector("#tour-select option[value='rounds']", state="attached")
    return page


async def test_a_stored_title_is_drawn_in_its_own_order_and_names_are_isolated(
    service: ServiceProcess, browser: Browser
) -> None:
    # Stored before the rule existed: written as the store writes it, past the API's check
    # (model_copy does not validate).
    page_grid = Grid(cols=1, rows=1, tiles=[{"x": 0, "y": 0, "camera": "gate"}])  # type: ignore[list-item]
    tour = Tour(name="rounds", title="Rounds", pages=[TourPage(grid=page_grid, dwell_s=60)])
    service.node.wall.save_tour(tour.model_copy(update={"title": TRICK}), "before-the-rule")
    headers = bearer(service.node, OPERATOR, Role.OPERATOR)
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
        listed = await client.get("/api/tours")
        schedule = await client.get("/api/tours/rounds/schedule")
    assert listed.status_code == 200 and schedule.status_code == 200, (listed.text, schedule.text)
    assert listed.json()[0]["title"] == schedule.json()["title"] == TRICK  # it still loads

    page = await open_desk(browser, service)
    await page.select_option("#tour-select", "rounds")
    await wait_for(lambda: page.evaluate("document.getElementById('tour-status').textContent"), 5)
    lefts = await page.evaluate(DRAWN_ORDER, ["#tour-status", "gnp.exe"])
    assert lefts is not None and lefts == sorted(lefts), lefts  # "gnp.exe", not "exe.png"
    shown = await page.text_content("#tour-status")
    assert shown is not None and "\u202e" not in shown and "\ufffd" in shown, shown
    option = await page.text_content("#tour-select option[value='rounds']")
    assert option is not None and "\u202e" not in option, option

    # Names among other text are set apart from it: the tile's name beside the health and
    # path, the camera list's name beside its tag chips, the chips themselves.
    await page.wait_for_selector(".tile[data-camera='gate'] .tile-name")
    isolation = await page.evaluate(
        ISOLATED,
        [".tile[data-camera='gate'] .tile-name", "#camera-list .name", "#camera-list .chip",
         "#tour-status", ".tile .badge.health"],
    )  # fmt: skip
    assert set(isolation) == {"isolate"}, isolation
