"""Tours in real headless Chromium against the running service: each page stays up for its own
dwell, and screens showing the same tour show the same page at the same moment, whatever
their own clocks say."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from playwright.async_api import Browser, Page

from surveillance.auth.roles import Role
from tests.auth_helpers import bearer
from tests.web.conftest import ServiceProcess, free_port, signed_in_page, wait_for

OPERATOR = "operator1"

# Records every page change of the tour with the moment it happened, on the machine's clock
# (performance.timeOrigin + performance.now(), which the skewed Date.now below leaves alone).
RECORD_PAGES = """() => {
  window.pageChanges = [];
  const status = document.getElementById("tour-status");
  new MutationObserver(() => {
    const page = status.dataset.page;
    const last = window.pageChanges[window.pageChanges.length - 1];
    if (page !== undefined && (!last || last[0] !== page)) {
      window.pageChanges.push([page, performance.timeOrigin + performance.now()]);
    }
  }).observe(status, { attributes: true, attributeFilter: ["data-page"] });
}"""


def cameras(*ids: str) -> list[dict[str, Any]]:
    """Cameras for the catalog, never connected: what tours show does not depend on video."""
    url = f"rtsp://127.0.0.1:{free_port()}/x"
    return [{"id": i, "name": f"Camera {i}", "platform": "town", "url": url, "mode": "on-demand"}
            for i in ids]  # fmt: skip


def page_of(*cameras: str) -> dict[str, Any]:
    tiles = [{"x": i, "y": 0, "camera": camera} for i, camera in enumerate(cameras)]
    return {"cols": len(cameras), "rows": 1, "tiles": tiles}


async def save_tour(service: ServiceProcess, tour: dict[str, Any]) -> None:
    headers = bearer(service.node, OPERATOR, Role.OPERATOR)
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
        response = await client.put(f"/api/tours/{tour['name']}", json=tour)
    assert response.status_code == 200, response.text


async def open_tour(browser: Browser, service: ServiceProcess, name: str, **context: Any) -> Page:
    page = await signed_in_page(browser, service, OPERATOR, Role.OPERATOR)
    if context.get("clock_ahead_s"):
        # A fake, and the only one here: two screens on one machine share its clock, so a
        # screen whose clock is off is made by shifting the page's Date.now().
        ahead_ms = context["clock_ahead_s"] * 1000
        await page.add_init_script(
            f"{{ const real = Date.now; Date.now = () => real() + {ahead_ms}; }}"
        )
    await page.goto(f"{service.url}/wall")
    await page.wait_for_selector(f"#tour-select option[value='{name}']", state="attached")
    await page.evaluate(RECORD_PAGES)
    await page.select_option("#tour-select", name)
    return page


async def changes(page: Page) -> list[tuple[int, float]]:
    found = await page.evaluate("window.pageChanges")
    return [(int(index), at / 1000) for index, at in found]


async def test_each_page_stays_up_for_its_own_dwell(service_factory: Any, browser: Browser) -> None:
    service: ServiceProcess = service_factory(cameras("a", "b", "c", "d"))
    tour = {
        "name": "rounds",
        "title": "Rounds",
        "dwell_s": 15,  # the tour's, for pages without their own
        "pages": [
            {"grid": page_of("a"), "dwell_s": 2},
            {"grid": page_of("b", "c"), "dwell_s": 5},
            {"grid": page_of("d")},
        ],
    }
    await save_tour(service, tour)
    headers = bearer(service.node, OPERATOR, Role.OPERATOR)
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
        schedule = (await client.get("/api/tours/rounds/schedule")).json()
    assert [p["dwell_s"] for p in schedule["pages"]] == [2, 5, 15]
    assert [t["camera"] for t in schedule["pages"][1]["grid"]["tiles"]] == ["b", "c"]

    page = await open_tour(browser, service, "rounds")

    async def two_full_pages_shown() -> list[tuple[int, float]] | None:
        # A full showing of page 0 and of page 1: a change to 0, to 1, and on to 2 (not
        # counting the first page shown, which came up part way through its dwell).
        seen = await changes(page)
        order = [index for index, _ in seen]
        for i in range(1, len(order) - 2):
            if order[i : i + 3] == [0, 1, 2]:
                return seen[i : i + 3]
        return None

    (_, to_0), (_, to_1), (_, to_2) = await wait_for(two_full_pages_shown, 40)
    assert 1.5 <= to_1 - to_0 <= 2.8, to_1 - to_0  # page 0's own 2 s
    assert 4.5 <= to_2 - to_1 <= 5.8, to_2 - to_1  # page 1's own 5 s
    assert await page.evaluate("window.wall.tiles().then((t) => t.map((x) => x.camera))") == ["d"]


async def test_two_screens_on_one_tour_show_the_same_page(
    service_factory: Any, browser: Browser
) -> None:
    service: ServiceProcess = service_factory(cameras("a", "b", "c"))
    pages = [{"grid": page_of(camera), "dwell_s": 2} for camera in ("a", "b", "c")]
    await save_tour(service, {"name": "rounds", "title": "Rounds", "dwell_s": 3, "pages": pages})
    first = await open_tour(browser, service, "rounds")
    # The second screen opens the tour later, and its clock is 4.3 s ahead: by its own timer
    # or its own clock it would show another page than the first.
    await asyncio.sleep(1.3)
    second = await open_tour(browser, service, "rounds", clock_ahead_s=4.3)

    # At several moments, both show the same page, but for a moment around a change.
    agreed = 0
    for _ in range(14):
        await asyncio.sleep(0.45)
        one, two = await asyncio.gather(
            first.evaluate("document.getElementById('tour-status').dataset.page"),
            second.evaluate("document.getElementById('tour-status').dataset.page"),
        )
        if one == two:
            agreed += 1
    assert agreed >= 12, f"agreed at {agreed} of 14 moments"

    # And they change page together.
    one_changes, two_changes = await changes(first), await changes(second)
    assert len(two_changes) >= 4, two_changes
    for index, at in two_changes[1:]:
        nearest = min(one_changes, key=lambda change: abs(change[1] - at))
        assert nearest[0] == index and abs(nearest[1] - at) < 0.4, (one_changes, two_changes)


SHOWN = """() => ({
  page: document.getElementById("tour-status").dataset.page,
  cameras: [...document.querySelectorAll(".tile")].map((tile) => tile.dataset.camera),
  wallMode: document.body.classList.contains("wall-mode"),
  controls: [...document.querySelectorAll("button, select, input")]
    .filter((node) => node.checkVisibility()).length,
})"""


async def test_wall_mode_screens_run_a_tour_from_their_url_in_step(
    service_factory: Any, browser: Browser
) -> None:
    service: ServiceProcess = service_factory(cameras("a", "b", "c"))
    pages = [{"grid": page_of(camera), "dwell_s": 2} for camera in ("a", "b", "c")]
    await save_tour(service, {"name": "rounds", "title": "Rounds", "dwell_s": 3, "pages": pages})
    screens = []
    for path in ("/wall?mode=wall&tour=rounds", "/wall/anything?mode=WALL&tour=rounds"):
        screen = await signed_in_page(browser, service, OPERATOR, Role.OPERATOR)
        await screen.goto(f"{service.url}{path}")
        screens.append(screen)
        await asyncio.sleep(1.1)  # the second screen opens later, part way through a page

    async def both_touring() -> bool:
        shown = [await screen.evaluate(SHOWN) for screen in screens]
        return all(s["page"] is not None for s in shown)

    await wait_for(both_touring, 10)
    agreed, cameras_seen = 0, set()
    for _ in range(12):
        await asyncio.sleep(0.45)
        one, two = await asyncio.gather(*(screen.evaluate(SHOWN) for screen in screens))
        assert one["wallMode"] and two["wallMode"] and one["controls"] == two["controls"] == 0
        if one["page"] == two["page"] and one["cameras"] == two["cameras"]:
            agreed += 1
        cameras_seen.update(one["cameras"])
    assert agreed >= 10, f"agreed at {agreed} of 12 moments"
    assert cameras_seen == {"a", "b", "c"}, cameras_seen  # it pages, not stuck on one
