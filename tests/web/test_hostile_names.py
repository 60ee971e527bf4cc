"""XSS: hostile camera, tag, case and user names render as text in real Chromium on every page.

One service whose every name a person can type is markup: cameras, their platform, a declared
zone tag, a layout, a tour, a case (title, description, place, assignee, comment, evidence) and
users, one of them the admin the browser signs in as. Each page is loaded and, once it has
shown its data, must have run none of it (``window.__xss`` unset), built no element from it,
shown every name as text, and logged no page error and no Content-Security-Policy violation.
The sign-in page is given hostile ``?next=`` values and must stay on this site.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page

from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from surveillance.simulator import Simulator
from tests.auth_helpers import TEST_PASSWORD, bearer, ensure_user
from tests.web.conftest import ServiceProcess, service_config, sign_in, wait_for

pytestmark = pytest.mark.rtsp

# Each payload, if it ever ran, would set window.__xss to its own number.
CAMERAS = {  # id (ids are restricted) -> hostile name
    "hostile-img": '<img src=x onerror="window.__xss=1">',
    "hostile-svg": '"><svg onload=window.__xss=2>',
    "hostile-js": "javascript:window.__xss=3",
}
MOUNTS = {"hostile-img": "cam15", "hostile-svg": "cam16", "hostile-js": "cam17"}
ADMIN = "<img src=x onerror=window.__xss=4>"  # the browser signs in as this admin
PLATFORM = "<img src=x onerror=window.__xss=5> & Co"
TAG_ID = "hostile-zone"
TAG = "<svg onload=window.__xss=6>"
LAYOUT = "hostile-wall"
LAYOUT_TITLE = "</title><img src=x onerror=window.__xss=7>"
CASE_TITLE = "<img src=x onerror=window.__xss=8>"
CASE_DESCRIPTION = "<script>window.__xss=9</script>"
CASE_PLACE = '<a href="javascript:window.__xss=10">Main St</a>'
COMMENT = "<img src=x onerror=window.__xss=11>"
HANDLER = '"><svg onload=window.__xss=12>'  # reports the case and attaches its evidence
TOKEN_LABEL = "<img src=x onerror=window.__xss=13>"
STRANGER = "<svg/onload=window.__xss=14>"  # a failed sign-in: an audit entry, no user
TOUR_TITLE = '<iframe srcdoc="<script>parent.__xss=15</script>"></iframe>'
ASSIGNEE = "<img src=x onerror=window.__xss=16>"

# Anything the markup above would have built; the pages themselves build none of these.
HOSTILE_ELEMENTS = (
    'img[src="x"], svg, iframe, script:not([src]), [onerror], [onload], a[href^="javascript:" i]'
)
# Runs in every document before the page's own scripts (injected by Playwright, not inline).
RECORD_CSP = """
document.addEventListener("securitypolicyviolation", (event) => {
  (window.__csp = window.__csp || []).push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def config(simulator: Simulator, data_dir: Path) -> AppConfig:
    cameras = [
        {"id": camera, "name": name, "platform": "town", "url": simulator.url(MOUNTS[camera]),
         "tags": [TAG_ID, "traffic"]}
        for camera, name in CAMERAS.items()
    ]  # fmt: skip
    base = service_config(cameras, data_dir).model_dump()
    base["platforms"][0]["name"] = PLATFORM
    base["tags"] = [{"id": TAG_ID, "name": TAG, "color": "#ff00ff"}]
    return AppConfig.model_validate(base)


@pytest.fixture
def service(simulator: Simulator, tmp_path: Path) -> Iterator[ServiceProcess]:
    # service_factory's config has fixed platforms and no `tags`: same service, own config.
    started = ServiceProcess(config(simulator, tmp_path / "data"))
    started.start()
    try:
        yield started
    finally:
        started.stop()


class Watch:
    """What a page did that it must not: page errors, console errors, dialogs, requests that
    leave the site."""

    def __init__(self, page: Page, origin: str) -> None:
        self.origin = origin
        self.page_errors: list[str] = []
        self.console_errors: list[str] = []
        self.dialogs: list[str] = []
        self.offsite: list[str] = []
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("console", self._console)
        page.on("dialog", self._dialog)
        page.on("request", self._request)
        page.on("framenavigated", lambda frame: self._request_url(frame.url))

    def _console(self, message: Any) -> None:
        source = message.location.get("url", "")
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({source})")

    async def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        await dialog.dismiss()

    def _request(self, request: Any) -> None:
        self._request_url(request.url)

    def _request_url(self, url: str) -> None:
        scheme = urlsplit(url).scheme
        web = scheme in ("http", "https", "ws", "wss")
        if scheme == "javascript" or (web and not url.startswith(self.origin)):
            self.offsite.append(url)

    def reset(self) -> None:
        for found in (self.page_errors, self.console_errors, self.dialogs, self.offsite):
            found.clear()


async def check_page(page: Page, watch: Watch, where: str, shown: list[str]) -> list[str]:
    """Problems with the page as it is now: script run, elements built, names not shown."""
    await page.wait_for_timeout(500)  # an <img onerror> or <svg onload> fires asynchronously
    problems: list[str] = []
    xss = await page.evaluate("[typeof window.__xss, String(window.__xss)]")
    if xss[0] != "undefined":
        problems.append(f"{where}: window.__xss = {xss[1]} (a payload ran)")
    built = await page.evaluate(
        "s => [...document.querySelectorAll(s)].map(e => e.outerHTML.slice(0, 120))",
        HOSTILE_ELEMENTS,
    )
    if built:
        problems.append(f"{where}: elements built from names: {built}")
    text: str = await page.evaluate("document.body.innerText")
    for name in shown:
        if name not in text:
            problems.append(f"{where}: {name!r} is not shown as text")
    csp = await page.evaluate("window.__csp || []")
    csp_console = [m for m in watch.console_errors if "Content Security Policy" in m]
    if csp or csp_console:
        problems.append(f"{where}: CSP violations {csp} {csp_console}")
    if watch.page_errors:
        problems.append(f"{where}: page errors {watch.page_errors}")
    if watch.console_errors:
        problems.append(f"{where}: console errors {watch.console_errors}")
    if watch.dialogs:
        problems.append(f"{where}: dialogs {watch.dialogs}")
    if watch.offsite:
        problems.append(f"{where}: left the site: {watch.offsite}")
    return problems


async def until_shown(page: Page, names: list[str], within: float = 10) -> None:
    """Until every name is in the page's text (the page has rendered its data); a name that
    never shows is reported by check_page, so time running out is not an error here."""

    async def all_shown() -> bool:
        text: str = await page.evaluate("document.body.innerText")
        return all(name in text for name in names)

    with contextlib.suppress(AssertionError):
        await wait_for(all_shown, within)


async def seed(service: ServiceProcess, browser: Browser) -> str:
    """The hostile data; answers the case number."""
    node = service.node
    ensure_user(node, ADMIN, Role.ADMIN)
    ensure_user(node, HANDLER, Role.HANDLER)
    ensure_user(node, ASSIGNEE, Role.HANDLER)  # cases are assigned to users only
    _, handler_secret = node.auth.create_token(HANDLER, TOKEN_LABEL)
    handler = {"Authorization": f"Bearer {handler_secret}"}
    admin = bearer(node, ADMIN, Role.ADMIN)
    async with httpx.AsyncClient(base_url=service.url, headers=handler, timeout=30) as client:

        async def all_online() -> bool:
            cameras = (await client.get("/api/cameras")).json()
            return len(cameras) == 3 and all(c["state"] == "online" for c in cameras)

        await wait_for(all_online, 20)
        fields = {"title": CASE_TITLE, "description": CASE_DESCRIPTION, "place": CASE_PLACE,
                  "assignee": ASSIGNEE, "tags": [TAG_ID], "cameras": list(CAMERAS)}  # fmt: skip
        created = await client.post("/api/cases", json=fields)
        assert created.status_code == 201, created.text
        number: str = created.json()["number"]
        commented = await client.post(f"/api/cases/{number}/comments", json={"text": COMMENT})
        assert commented.status_code == 201, commented.text
        snapshot = await client.post(
            f"/api/cases/{number}/items/snapshot", json={"camera": "hostile-img"}
        )
        assert snapshot.status_code == 201, snapshot.text
        tiles = [{"x": i, "y": 0, "w": 1, "h": 1, "camera": c} for i, c in enumerate(CAMERAS)]
        layout = {"name": LAYOUT, "title": LAYOUT_TITLE, "cols": 3, "rows": 1, "tiles": tiles}
        saved = await client.put(f"/api/layouts/{LAYOUT}", json=layout, headers=admin)
        assert saved.status_code == 200, saved.text
        tour = {"name": "zone", "title": TOUR_TITLE, "tag": TAG_ID, "preset": "2x2"}
        saved = await client.put("/api/tours/zone", json=tour, headers=admin)
        assert saved.status_code == 200, saved.text

    # Audit entries by hostile names: the handler signs in, a stranger fails to.
    context = await browser.new_context()
    try:
        await sign_in(context, service.url, node, HANDLER, Role.HANDLER)
        failed = await context.request.post(
            f"{service.url}/api/auth/login", data={"name": STRANGER, "password": "wrong"}
        )
        assert failed.status == 401
    finally:
        await context.close()
    return number


async def sign_in_through_form(page: Page, watch: Watch, url: str, next_value: str) -> list[str]:
    """Signed out: the sign-in page with a hostile ?next=; signs in as ADMIN with the form.
    Answers the problems found on the sign-in page and where it went."""
    where = f"/login?next={next_value}"
    watch.reset()
    await page.goto(f"{url}/login?next={quote(next_value, safe='')}")
    await page.wait_for_selector("body[data-ready=true]")
    # The sign-in page shows no names: nothing to find as text, all else must hold.
    problems = await check_page(page, watch, where, [])
    watch.reset()  # from here on, what happens belongs to the sign-in and the page it leads to
    await page.fill("#login-name", ADMIN)
    await page.fill("#login-password", TEST_PASSWORD)
    await page.click("#login-submit")
    try:
        await page.wait_for_url(lambda u: urlsplit(u).path != "/login", timeout=10_000)
    except Exception:
        problems.append(f"{where}: still on {page.url} ({await page.text_content('#login-error')})")
        return problems
    went = urlsplit(page.url)
    if f"{went.scheme}://{went.netloc}" != url or went.path != "/wall":
        problems.append(f"{where}: went to {page.url}, not {url}/wall")
    if watch.offsite or watch.dialogs:
        problems.append(f"{where}: left the site or ran script: {watch.offsite} {watch.dialogs}")
    return problems


async def column(page: Page, rows: str, index: int) -> list[str]:
    """The text of one column of a table's rows."""
    cells: list[str] = await page.eval_on_selector_all(
        rows, f"rows => rows.map(row => row.cells[{index}].textContent)"
    )
    return cells


async def fresh_context(browser: Browser) -> BrowserContext:
    context = await browser.new_context(viewport={"width": 1600, "height": 1000})
    await context.add_init_script(RECORD_CSP)
    return context


async def test_hostile_names_are_text_on_every_page(
    service: ServiceProcess, browser: Browser
) -> None:
    number = await seed(service, browser)
    url = service.url
    names = list(CAMERAS.values())
    problems: list[str] = []

    # The sign-in page, signed out: hostile next values land on this site's wall.
    for next_value in (
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
    ):
        context = await fresh_context(browser)
        page = await context.new_page()
        watch = Watch(page, url)
        problems += await sign_in_through_form(page, watch, url, next_value)
        await context.close()

    context = await fresh_context(browser)
    page = await context.new_page()
    watch = Watch(page, url)
    problems += await sign_in_through_form(page, watch, url, "javascript:alert(1)")

    # The wall the sign-in led to: header, camera list, tag chips, platform, layouts, tours.
    wall_names = [ADMIN, *names, TAG, PLATFORM, LAYOUT_TITLE, TOUR_TITLE]
    await page.wait_for_selector("body[data-session=ready]")
    await until_shown(page, wall_names)
    problems += await check_page(page, watch, "/wall", wall_names)
    header = await page.text_content("#session .session-who")
    if header != f"signed in as {ADMIN} (admin)":
        problems.append(f"/wall: the header says {header!r}")

    # The saved layout: its tiles name the cameras; its title is the page's title.
    watch.reset()
    await page.goto(f"{url}/wall/{LAYOUT}")
    await page.wait_for_selector("body[data-session=ready]")
    await until_shown(page, wall_names)
    await wait_for(lambda: page.evaluate("document.querySelectorAll('.tile-name').length"), 10)
    problems += await check_page(page, watch, f"/wall/{LAYOUT}", wall_names)
    tile_names = await page.eval_on_selector_all(
        ".tile .tile-name", "s => s.map(n => n.textContent)"
    )
    if tile_names != names:
        problems.append(f"/wall/{LAYOUT}: tiles show {tile_names}, not {names}")
    if await page.title() != f"{LAYOUT_TITLE} · Wall":
        problems.append(f"/wall/{LAYOUT}: title is {await page.title()!r}")

    # The case list.
    case_names = [ADMIN, CASE_TITLE, CASE_PLACE, ASSIGNEE, TAG, *names]
    watch.reset()
    await page.goto(f"{url}/cases")
    await page.wait_for_selector("body[data-ready=true]")
    await until_shown(page, case_names)
    problems += await check_page(page, watch, "/cases", case_names)

    # The case: facts, timeline, evidence (a real snapshot), custody log.
    case_names = [ADMIN, CASE_TITLE, CASE_DESCRIPTION, CASE_PLACE, ASSIGNEE, HANDLER, COMMENT,
                  TAG, *names]  # fmt: skip
    watch.reset()
    await page.goto(f"{url}/cases/{number}")
    await page.wait_for_selector("body[data-ready=true]")
    await until_shown(page, case_names)
    problems += await check_page(page, watch, f"/cases/{number}", case_names)
    if await page.locator("#items article[data-kind=snapshot]").count() != 1:
        problems.append(f"/cases/{number}: the snapshot is not shown")
    if not (await page.title()).startswith(f"{number} {CASE_TITLE}"):
        problems.append(f"/cases/{number}: title is {await page.title()!r}")

    # Admin: users, tokens and audit tables.
    admin_names = [ADMIN, HANDLER, TOKEN_LABEL, STRANGER]
    watch.reset()
    await page.goto(f"{url}/admin")
    await page.wait_for_selector("body[data-ready=true]")
    await until_shown(page, admin_names)
    problems += await check_page(page, watch, "/admin", admin_names)
    users = await column(page, "#users-table tbody tr[data-user]", 0)
    if not any(cell.startswith(ADMIN) for cell in users) or HANDLER not in users:
        problems.append(f"/admin: users table names {users}")
    tokens = await column(page, "#tokens-table tbody tr[data-token]", 1)
    labels = await column(page, "#tokens-table tbody tr[data-token]", 2)
    if HANDLER not in tokens or TOKEN_LABEL not in labels:
        problems.append(f"/admin: tokens table {list(zip(tokens, labels, strict=True))}")
    audit = await column(page, "#audit-table tbody tr[data-id]", 2)
    if not {ADMIN, HANDLER, STRANGER} <= set(audit):
        problems.append(f"/admin: audit users {sorted(set(audit))}")
    await context.close()
    assert not problems, "\n".join(problems)
