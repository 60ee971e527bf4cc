"""The case pages in real headless Chromium, against the running service and the real RTSP
simulator: report a case, find it, move it through the workflow, comment, attach a snapshot
and a playable clip, export the signed bundle, and attach from a wall tile."""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page

from surveillance.auth.roles import Role
from surveillance.simulator import Simulator
from tests.auth_helpers import bearer, ensure_user
from tests.web.conftest import ServiceProcess, free_port, signed_in_page, wait_for

pytestmark = pytest.mark.rtsp

XSS = "<img src=x onerror=alert(1)>"
HANDLER = "handler1"  # reports, works and attaches evidence to cases, from the wall too
PANEL_STATUS = "document.querySelector('#attach-panel .attach-status').textContent"
PAST_S = 16.0  # how far back the past moment is: older than the live ring (10 s)
CLIP_PRE_S, CLIP_POST_S = 2, 2


def cameras(simulator: Simulator) -> list[dict[str, Any]]:
    return [
        {"id": "gate", "name": "School gate", "platform": "town",
         "url": simulator.url("cam05"), "tags": ["school-gate"],
         "recording": {"mode": "continuous"}},
        {"id": "dead", "name": "Dead camera", "platform": "police",
         "url": f"rtsp://127.0.0.1:{free_port()}/x"},
    ]  # fmt: skip


async def online(client: httpx.AsyncClient, camera: str) -> bool:
    return bool((await client.get(f"/api/cameras/{camera}")).json()["state"] == "online")


async def new_page(
    browser: Browser, service: ServiceProcess, name: str = HANDLER
) -> tuple[Page, list[str]]:
    page = await signed_in_page(
        browser, service, name, Role.HANDLER, viewport={"width": 1400, "height": 1000}
    )
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    return page, dialogs


async def ready(page: Page, url: str) -> None:
    await page.goto(url)
    await page.wait_for_selector("body[data-ready=true]", timeout=10_000)


async def until(page: Page, expression: str, within: float = 10) -> Any:
    """Poll a JavaScript expression (page.wait_for_function would need 'unsafe-eval', which
    the pages' Content-Security-Policy refuses)."""
    return await wait_for(lambda: page.evaluate(expression), within)


async def text(page: Page, selector: str) -> str:
    return (await page.text_content(selector)) or ""


async def test_case_pages_workflow_evidence_export_and_wall_attach(
    simulator: Simulator, service_factory: Any, browser: Browser
) -> None:
    service: ServiceProcess = service_factory(cameras(simulator))
    headers = bearer(service.node, HANDLER, Role.HANDLER)
    ensure_user(service.node, "team-3", Role.HANDLER)  # cases are dispatched to users
    async with httpx.AsyncClient(base_url=service.url, headers=headers, timeout=30) as client:
        await _walk_through(service, client, browser)


async def _walk_through(
    service: ServiceProcess, client: httpx.AsyncClient, browser: Browser
) -> None:
    # Cases already there: an older open one and a closed one.
    older = (await client.post("/api/cases", json={"title": "Older pothole"})).json()["number"]
    done = (await client.post("/api/cases", json={"title": "Fallen tree"})).json()["number"]
    assert (
        await client.post(f"/api/cases/{done}/transitions", json={"to": "closed"})
    ).status_code == 200
    await wait_for(lambda: online(client, "gate"), 20)

    # The list: report a case with the form; it comes first among the open cases.
    page, dialogs = await new_page(browser, service)
    await ready(page, f"{service.url}/cases")
    await page.fill("#new-title-input", "Flooded underpass")
    await page.fill("#new-place", "Underpass, Ring Road")
    await page.fill("#new-description", "Water 40 cm deep.\nTwo cars stuck.")
    await page.check("#new-tags input[value=traffic]")
    await page.select_option("#new-cameras", ["gate"])
    await page.click("#new-submit")
    await until(page, "document.getElementById('message').textContent.startsWith('Reported')")
    rows = page.locator("#case-rows tr")

    async def new_case_listed_first() -> str | None:
        # The list re-renders after the report: wait for the new one, not the old list.
        numbers = await row_numbers(page)
        return numbers[0] if len(numbers) == 3 and numbers[0] not in (older, done) else None

    number = await wait_for(new_case_listed_first, 10)
    assert await row_numbers(page) == [
        number,
        older,
        done,
    ]  # open cases (newest first), then the closed one
    assert await rows.first.locator(".title").text_content() == "Flooded underpass"
    assert await rows.nth(2).get_attribute("data-state") == "closed"

    # Filters: finished cases only; then text.
    await page.select_option("#filter-state", "finished")
    await wait_for(lambda: _rows_are(page, [done]), 5)
    await page.select_option("#filter-state", "")
    await page.fill("#filter-text", "underpass")
    await wait_for(lambda: _rows_are(page, [number]), 5)

    # The case page: header, workflow, comment.
    await page.click(f"#case-rows tr[data-number='{number}'] .title a")
    await page.wait_for_url(f"**/cases/{number}")
    await page.wait_for_selector("body[data-ready=true]")
    assert await text(page, "#case-title") == "Flooded underpass"
    assert await text(page, "#case-description") == "Water 40 cm deep.\nTwo cars stuck."
    assert await text(page, "#case-state") == "Reported"
    buttons = page.locator("#transitions button")
    assert [await b.get_attribute("data-to") for b in await buttons.all()] == [
        "dispatched",
        "closed",
    ]
    await page.fill("#transition-assignee", "team-3")
    await page.click("#transitions button[data-to=dispatched]")
    await page.wait_for_selector("body[data-state=dispatched]")
    assert await text(page, "#case-assignee") == "team-3"
    assert "Reported → Dispatched" in await text(page, "#timeline .kind-state")
    await page.fill("#comment-text", "Pump truck on its way.")
    await page.click("#comment-submit")
    await page.wait_for_selector("#timeline .kind-comment")
    assert await text(page, "#timeline .kind-comment .what") == "Pump truck on its way."

    # An offline camera: the API's refusal is shown as text, nothing stored.
    await page.select_option("#attach-camera", "dead")
    await page.click("#attach-snapshot")
    await page.wait_for_selector("#message.error")
    assert (await text(page, "#message")).startswith("Nothing attached: 503")
    assert (await client.get(f"/api/cases/{number}/items")).json() == []

    # A snapshot: its thumbnail loads and the page shows the API's SHA-256.
    await page.select_option("#attach-camera", "gate")
    await page.click("#attach-snapshot")
    snapshot = page.locator("article[data-kind=snapshot]")
    await snapshot.wait_for()
    await until(page, "document.querySelector('article[data-kind=snapshot] img').naturalWidth")
    items = (await client.get(f"/api/cases/{number}/items")).json()
    assert len(items) == 1
    assert await snapshot.locator(".sha256").text_content() == items[0]["sha256"]
    body = (await client.get(items[0]["content_url"])).content
    assert hashlib.sha256(body).hexdigest() == items[0]["sha256"]

    # A 3 s clip plays in the page's <video>.
    await page.fill("#clip-pre", "3")
    await page.fill("#clip-post", "0")
    await page.click("#attach-clip")
    clip = page.locator("article[data-kind=clip] video")
    await clip.wait_for(timeout=15_000)
    await clip.evaluate("video => video.play()")
    await until(
        page,
        "(() => { const v = document.querySelector('article[data-kind=clip] video');"
        " return v.readyState >= 2 && v.videoWidth > 0 && v.currentTime > 0; })()",
    )
    assert await clip.evaluate("video => video.videoWidth") == 640
    clip_item = (await client.get(f"/api/cases/{number}/items")).json()[1]
    assert clip_item["kind"] == "clip" and 2.5 <= clip_item["duration_s"] <= 5
    sha = await page.locator("article[data-kind=clip] .sha256").text_content()
    assert sha == clip_item["sha256"]

    # Export: the link downloads a signed zip; the fingerprint shown is the node's.
    key = (await client.get("/api/node/key")).json()
    assert await text(page, "#node-key") == key["fingerprint"]
    async with page.expect_download() as download_info:
        await page.click("#export-link")
    download = await download_info.value
    saved = await download.path()
    with zipfile.ZipFile(saved) as bundle:
        assert {"manifest.json", "manifest.json.sig"} <= set(bundle.namelist())
        manifest = json.loads(bundle.read("manifest.json"))
    assert sorted(i["sha256"] for i in manifest["items"]) == sorted(
        i["sha256"] for i in (await client.get(f"/api/cases/{number}/items")).json()
    )
    href = await page.get_attribute("#export-link", "href")
    response = await client.get(href or "")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert zipfile.is_zipfile(io.BytesIO(response.content))
    await page.wait_for_selector("#custody-rows tr[data-action=export]")

    # The wall: a tile's Attach button puts its snapshot and its last 2 s into the case.
    layout = {"name": "desk", "title": "Desk", "cols": 1, "rows": 1,
              "tiles": [{"x": 0, "y": 0, "w": 1, "h": 1, "camera": "gate"}]}  # fmt: skip
    # An operator saves the wall's layout; the handler watches it and attaches from it.
    operator = bearer(service.node, "operator1", Role.OPERATOR)
    saved = await client.put("/api/layouts/desk", json=layout, headers=operator)
    assert saved.status_code == 200, saved.text
    await page.goto(f"{service.url}/wall/desk")
    tile_button = page.locator(".tile[data-camera=gate] .attach-button")
    await page.wait_for_selector(".tile[data-camera=gate][data-state=online]")
    await tile_button.click()
    panel = page.locator("#attach-panel")
    await panel.wait_for()
    await page.wait_for_selector(f"#attach-panel option[value='{number}']", state="attached")
    options = await panel.locator("option").all_text_contents()
    assert f"{number} · Flooded underpass" in options
    assert not any(done in option for option in options)  # closed cases are not offered
    await panel.locator("select").select_option(number)
    await panel.locator(".attach-snapshot").click()
    await until(page, f"{PANEL_STATUS}.startsWith('Attached snapshot')")
    await panel.locator(".attach-seconds").fill("2")
    await panel.locator(".attach-clip").click()
    await until(page, f"{PANEL_STATUS}.startsWith('Attached clip')", within=15)
    # The panel says where a clip really starts: at a keyframe, maybe before the asked start.
    assert "keyframe at or before" in (await panel.locator(".attach-note").text_content() or "")
    status = await page.evaluate(PANEL_STATUS)
    assert "on the keyframe at or before the asked start" in status and "s asked" in status, status
    items = (await client.get(f"/api/cases/{number}/items")).json()
    assert [i["kind"] for i in items] == ["snapshot", "clip", "snapshot", "clip"]
    assert all(i["camera"] == "gate" for i in items)

    await ready(page, f"{service.url}/cases/{number}")
    assert await page.locator("article[data-kind=snapshot]").count() == 2
    # Newest first: the wall's clip, then the wall's snapshot.
    newest = page.locator("#items article").nth(1)
    assert await newest.get_attribute("data-item") == str(items[2]["id"])
    assert await newest.locator(".sha256").text_content() == items[2]["sha256"]
    # Not an ONVIF camera: its clock's offset is not known, and the detail says so.
    assert items[2]["camera_clock_offset_s"] is None
    assert "Camera clocknot known" in (await newest.locator(".facts").text_content() or "")

    # A moment older than the live ring (10 s): its clip comes from the recordings.
    await _attach_a_past_moment(page, client, number)
    assert dialogs == []


async def _attach_a_past_moment(page: Page, client: httpx.AsyncClient, number: str) -> None:
    # Recorded since before the window (gate records from the node's start).
    lead_s = PAST_S + CLIP_PRE_S + 1
    await wait_for(lambda: recorded_since(client, "gate", time.time() - lead_s), 30)
    moment = time.time() - PAST_S
    at = datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")
    await page.fill("#attach-at", at)
    await page.fill("#clip-pre", str(CLIP_PRE_S))
    await page.fill("#clip-post", str(CLIP_POST_S))
    await page.click("#attach-clip")
    await until(page, "document.getElementById('message').textContent.startsWith('Attached clip')")
    past = (await client.get(f"/api/cases/{number}/items")).json()[-1]
    assert past["kind"] == "clip" and "from the recording" in (past["note"] or ""), past
    starts = datetime.fromisoformat(past["captured_at"]).timestamp()
    # From the keyframe at or before the asked start (a GOP is 2 s here).
    assert moment - CLIP_PRE_S - 2.5 <= starts <= moment - CLIP_PRE_S + 0.1, past
    assert CLIP_PRE_S + CLIP_POST_S - 0.5 <= past["duration_s"] <= CLIP_PRE_S + CLIP_POST_S + 2.5
    # A moment that is not one is refused in the page, before any request.
    await page.fill("#attach-at", "yesterday at noon")
    await page.click("#attach-clip")
    await until(page, "document.getElementById('message').textContent.includes('YYYY-MM-DD')")


async def recorded_since(client: httpx.AsyncClient, camera: str, moment: float) -> bool:
    start = datetime.fromtimestamp(moment - 60, UTC).isoformat().replace("+00:00", "Z")
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    listing = (await client.get(f"/api/cameras/{camera}/recordings?from={start}&to={now}")).json()
    return any(datetime.fromisoformat(span["start"]).timestamp() <= moment
               for span in listing["spans"])  # fmt: skip


async def row_numbers(page: Page) -> list[str]:
    # In one evaluation: the list re-renders as filters change.
    numbers: list[str] = await page.eval_on_selector_all(
        "#case-rows tr[data-number]", "rows => rows.map(row => row.dataset.number)"
    )
    return numbers


async def _rows_are(page: Page, numbers: list[str]) -> bool:
    return await row_numbers(page) == numbers


async def test_markup_in_case_data_is_shown_as_text(service_factory: Any, browser: Browser) -> None:
    service: ServiceProcess = service_factory([])
    comment = {"text": "<script>alert(2)</script>"}
    # A user whose very name is markup reports the case (and reads it in the browser).
    headers = bearer(service.node, XSS, Role.HANDLER)
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
        fields = {"title": XSS, "description": XSS, "place": XSS, "assignee": XSS}
        created = await client.post("/api/cases", json=fields)
        assert created.status_code == 201, created.text
        number = created.json()["number"]
        answer = await client.post(f"/api/cases/{number}/comments", json=comment)
        assert answer.status_code == 201

    page, dialogs = await new_page(browser, service, XSS)
    await ready(page, f"{service.url}/cases")
    assert await text(page, "#case-rows .title") == XSS
    assert await page.locator("#case-rows img").count() == 0
    await ready(page, f"{service.url}/cases/{number}")
    for selector in ("#case-title", "#case-description", "#case-place", "#case-assignee"):
        assert await text(page, selector) == XSS, selector
    assert await text(page, "#case-reporter") == XSS
    assert await text(page, "#timeline .kind-comment .what") == comment["text"]
    assert await page.locator("main img, main script").count() == 0
    await page.wait_for_timeout(300)
    assert dialogs == []


def test_case_pages_are_served_with_the_security_headers(service_factory: Any) -> None:
    service: ServiceProcess = service_factory([])
    headers = bearer(service.node, HANDLER, Role.HANDLER)
    for path in ("/cases", "/cases/2024-000001"):
        response = httpx.get(f"{service.url}{path}", headers=headers)
        assert response.status_code == 200
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert '<script type="module"' in response.text
    # Scripts hold no data: they are served without signing in (the sign-in page needs them).
    assert httpx.get(f"{service.url}/static/js/cases.js").status_code == 200
    assert httpx.get(f"{service.url}/static/js/attach.js").status_code == 200


async def test_list_pages_through_open_cases_before_finished_ones(
    service_factory: Any, browser: Browser
) -> None:
    service: ServiceProcess = service_factory([])
    headers = bearer(service.node, HANDLER, Role.HANDLER)
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
        opened = [await _create(client, f"Open {i}") for i in range(24)]
        # Reported after the open ones, so newer: still listed after every open case.
        finished = [await _create(client, f"Done {i}") for i in range(3)]
        for number in finished:
            moved = await client.post(f"/api/cases/{number}/transitions", json={"to": "closed"})
            assert moved.status_code == 200
    page, _ = await new_page(browser, service)
    await ready(page, f"{service.url}/cases")
    assert await row_numbers(page) == opened[::-1] + finished[::-1][:1]
    assert await text(page, "#page-info") == "1\u201325 of 27"
    await page.click("#page-next")
    await wait_for(lambda: _rows_are(page, finished[::-1][1:]), 5)
    assert await text(page, "#page-info") == "26\u201327 of 27"
    assert await page.is_disabled("#page-next")
    await page.click("#page-prev")
    await wait_for(lambda: _rows_are(page, opened[::-1] + finished[::-1][:1]), 5)


async def _create(client: httpx.AsyncClient, title: str) -> str:
    response = await client.post("/api/cases", json={"title": title})
    assert response.status_code == 201, response.text
    number: str = response.json()["number"]
    return number
