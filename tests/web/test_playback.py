"""The playback page end to end: a real node recording the real RTSP simulator, real headless
Chromium playing the recordings over MSE.

One node records five cameras (one with B-frames, one H.265) for about twenty seconds (short
segments), one of which is cut off for a few seconds in the middle, leaving a gap with its
reason. Every check then runs on
that footage: the timeline, seeking by a click, the picture's frame number against the
node's own picture of the same moment (snapshot.jpg?at=, decoded server-side from the
recording), speed, frame step, two cameras in step, the viewer's refusal and an H.265
camera this browser cannot play.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import cv2
import httpx
import numpy as np
import pytest
from playwright.async_api import Browser, Page

from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from surveillance.simulator import Simulator
from surveillance.simulator.clips import read_frame_number
from tests.auth_helpers import bearer
from tests.service import ServiceProcess
from tests.web.conftest import signed_in_page, wait_for

pytestmark = pytest.mark.rtsp

OPERATOR = "operator1"
VIEWER = "viewer1"
CLIP_FRAMES = 100  # tests/conftest.py SMALL_H264: 4 s at 25 fps, looped; numbers wrap here
FRAME_S = 0.04
CROSSROADS = ("gate", "yard", "bf")  # the layout played in step
RECORD_BEFORE_GAP_S = 9
GAP_S = 5
RECORD_AFTER_GAP_S = 8

# The picture a tile shows, at its own size, as PNG (read back with read_frame_number).
GRAB = """(camera) => {
  const video = document.querySelector(`#tiles .tile[data-camera="${camera}"] video`);
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  return canvas.toDataURL("image/png");
}"""


# Each tile's buffered ranges, as wall times (for a failure's message).
BUFFERED = """() => [...document.querySelectorAll("#tiles video")].map((video) => {
  const ranges = [];
  for (let i = 0; i < video.buffered.length; i += 1) {
    ranges.push([video.buffered.start(i), video.buffered.end(i)]);
  }
  return { currentTime: video.currentTime, ranges };
})"""


# The play.mp4 windows the page asked for, in order.
WINDOWS_ASKED = """() => performance.getEntriesByType("resource").map((entry) => entry.name)
  .filter((name) => name.includes("/play.mp4"))
  .map((name) => decodeURIComponent(name.split("/cameras/")[1]))"""


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def decoded(data: bytes) -> Any:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def frames_apart(a: int, b: int) -> int:
    """How many frames b is after a, on a clip whose numbers wrap at CLIP_FRAMES."""
    d = (b - a) % CLIP_FRAMES
    return d - CLIP_FRAMES if d > CLIP_FRAMES // 2 else d


class Recorded:
    """The node, and when it started recording."""

    def __init__(self, service: ServiceProcess, started: float):
        self.service = service
        self.started = started


@pytest.fixture(scope="module")
def recorded(simulator: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    cameras = [
        {"id": "gate", "name": "Gate", "platform": "town", "url": simulator.url("cam03")},
        {"id": "yard", "name": "Yard \u05d7\u05e6\u05e8", "platform": "town",
         "url": simulator.url("cam04")},
        {"id": "flaky", "name": "Flaky", "platform": "town", "url": simulator.url("drop")},
        {"id": "hevc", "name": "Hevc", "platform": "town", "url": simulator.url("h265")},
        {"id": "bf", "name": "B-frames", "platform": "town", "url": simulator.url("bframes")},
    ]  # fmt: skip
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(tmp_path_factory.mktemp("playback") / "data")},
            "ingest": {"backoff_initial_s": 0.2, "backoff_max_s": 1},
            "recording": {"segment_s": 4, "default": {"mode": "continuous"}},
            "platforms": [{"id": "town", "name": "Town CCTV"}],
            "cameras": cameras,
        }
    )
    service = ServiceProcess(config)
    service.start()
    try:
        started = time.time()
        time.sleep(RECORD_BEFORE_GAP_S)
        simulator.fault("drop", "refuse")
        simulator.fault("drop", "drop")
        time.sleep(GAP_S)
        simulator.fault("drop", "resume")
        time.sleep(RECORD_AFTER_GAP_S)
        yield Recorded(service, started)
    finally:
        simulator.fault("drop", "resume")
        service.stop()


def client(recorded: Recorded) -> httpx.AsyncClient:
    headers = bearer(recorded.service.node, OPERATOR, Role.OPERATOR)
    return httpx.AsyncClient(base_url=recorded.service.url, headers=headers, timeout=30)


async def recordings(recorded: Recorded, camera: str) -> dict[str, Any]:
    query = {"from": iso(recorded.started - 60), "to": iso(time.time() - 1)}
    async with client(recorded) as http:
        answer = await http.get(f"/api/cameras/{camera}/recordings", params=query)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def node_frame_at(recorded: Recorded, camera: str, at: float) -> tuple[int, float]:
    """The frame number of the node's own picture at `at`, and that frame's time."""
    async with client(recorded) as http:
        answer = await http.get(f"/api/cameras/{camera}/snapshot.jpg", params={"at": iso(at)})
    assert answer.status_code == 200, answer.text
    number = read_frame_number(decoded(answer.content))
    assert number is not None, "the node's picture is a frame of the source"
    captured = datetime.fromisoformat(answer.headers["X-Captured-At"].replace("Z", "+00:00"))
    return number, captured.timestamp()


async def tile_frame(page: Page, camera: str) -> int:
    data: str = await page.evaluate(GRAB, camera)
    number = read_frame_number(decoded(base64.b64decode(data.split(",", 1)[1])))
    assert number is not None, f"{camera}'s tile shows a frame of the source"
    return number


async def status(page: Page) -> dict[str, Any]:
    answer: dict[str, Any] = await page.evaluate("window.playback.status()")
    return answer


async def all_ready(page: Page) -> dict[str, Any] | None:
    now = await status(page)
    return now if all(tile["state"] == "ready" for tile in now["tiles"]) else None


async def open_playback(browser: Browser, recorded: Recorded, query: str) -> Page:
    page = await signed_in_page(browser, recorded.service, OPERATOR, Role.OPERATOR)
    await page.goto(f"{recorded.service.url}/playback?{query}")
    await page.wait_for_selector("body[data-ready='yes']", timeout=15000)
    return page


async def paused_at(page: Page, at: float) -> dict[str, Any]:
    """Pause, seek to `at`, and wait until every tile presents the frame of that moment."""
    await page.evaluate("window.playback.setPlaying(false)")
    await page.evaluate(f"window.playback.seek({iso(at)!r})")
    deadline = time.monotonic() + 10
    while True:
        now = await status(page)
        pictures = [tile["picture"] for tile in now["tiles"]]
        ready = all(tile["state"] == "ready" for tile in now["tiles"])
        if ready and all(p is not None and abs(p - at) <= FRAME_S for p in pictures):
            return now
        if time.monotonic() > deadline:
            buffered = await page.evaluate(BUFFERED)
            asked = await page.evaluate(WINDOWS_ASKED)
            raise AssertionError(
                f"no picture of {iso(at)}: {now}; buffered: {buffered}; windows: {asked}"
            )
        await page.wait_for_timeout(100)


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def test_timeline_click_seek_frame_speed_and_step(
    recorded: Recorded, browser: Browser
) -> None:
    answer = await recordings(recorded, "flaky")
    assert len(answer["spans"]) >= 2 and answer["gaps"], answer
    # Moments inside what was recorded (the camera's first picture came some time after the
    # node started), and inside the gap the index holds.
    before = (epoch(answer["spans"][0]["start"]), epoch(answer["spans"][0]["end"]))
    gap_start = epoch(answer["gaps"][0]["start"])
    assert before[1] - before[0] >= 5.5, before  # room for 1.2 s at 4x
    at = before[0] + 1.5
    page = await open_playback(browser, recorded, f"camera=flaky&at={iso(at)}")
    # The timeline: recorded spans, and the gap with its reason in words.
    await page.click("#zoom")  # an hour wide: twenty seconds of footage are visible
    spans = await page.locator(".timeline-span").count()
    assert spans >= 2, spans
    gap_title = await page.locator(".timeline-gap").first.get_attribute("title")
    assert gap_title and gap_title.startswith("No recording") and ":" in gap_title, gap_title

    # A click on the bar seeks there: the clock moves to the moment under the pointer.
    await page.click("#play")  # paused
    bar = await page.locator(".timeline-bar").bounding_box()
    assert bar is not None
    hour_start = (at // 3600) * 3600
    target = before[0] + 3
    x = bar["x"] + bar["width"] * (target - hour_start) / 3600
    await page.mouse.click(x, bar["y"] + bar["height"] / 2)
    clicked = await status(page)
    assert abs(clicked["at"] - target) < 3600 / bar["width"] * 2, (clicked["at"], target)

    # The picture at a moment is the frame the node itself finds at that moment.
    moment = before[0] + 2.02
    await paused_at(page, moment)
    expected, frame_time = await node_frame_at(recorded, "flaky", moment)
    shown = await tile_frame(page, "flaky")
    assert abs(frames_apart(expected, shown)) <= 2, (expected, shown, frame_time)

    # Frame step: one frame on, paused.
    await page.click("#step-forward")
    await wait_for(lambda: tile_frame_changed(page, "flaky", shown), 5, 0.1)
    assert frames_apart(shown, await tile_frame(page, "flaky")) == 1
    assert not (await status(page))["playing"]

    # 4x: the clock (the picture's own time) runs about four times as fast as real time.
    await page.click("#speeds button[data-rate='4']")
    await paused_at(page, before[0] + 0.1)
    await page.evaluate("window.playback.setPlaying(true)")
    await wait_for(lambda: all_ready(page), 5, 0.1)
    first, since = (await status(page))["at"], time.monotonic()
    await page.wait_for_timeout(1200)
    last, until = (await status(page))["at"], time.monotonic()
    ratio = (last - first) / (until - since)
    assert 3.0 <= ratio <= 4.6, ratio

    # Into the gap: the tile says why there is nothing, and rejoins when footage resumes.
    await page.click("#speeds button[data-rate='1']")
    await page.evaluate(f"window.playback.seek({iso(gap_start + 0.5)!r})")
    gap_tile = await wait_for(lambda: tile_in_state(page, "gap"), 5, 0.1)
    assert gap_tile["notice"].startswith("no recording: "), gap_tile
    assert len(gap_tile["notice"]) > len("no recording: "), "the reason is given"
    await wait_for(lambda: tile_in_state(page, "ready"), GAP_S + 8, 0.2)
    resumed = await status(page)
    assert resumed["at"] >= epoch(answer["gaps"][0]["end"]) - 0.1, resumed


async def tile_frame_changed(page: Page, camera: str, before: int) -> bool:
    return await tile_frame(page, camera) != before


async def tile_in_state(page: Page, state: str) -> dict[str, Any] | None:
    tile: dict[str, Any] = (await status(page))["tiles"][0]
    return tile if tile["state"] == state else None


async def test_a_layout_plays_in_step_and_h265_says_it_cannot_play(
    recorded: Recorded, browser: Browser
) -> None:
    layout = {
        "name": "crossroads", "title": "Crossroads", "cols": 3, "rows": 1,
        "tiles": [{"x": 0, "y": 0, "camera": "gate"}, {"x": 1, "y": 0, "camera": "yard"},
                  {"x": 2, "y": 0, "camera": "bf"}],
    }  # fmt: skip
    async with client(recorded) as http:
        saved = await http.put("/api/layouts/crossroads", json=layout)
    assert saved.status_code == 200, saved.text
    starts = []
    for camera in CROSSROADS:
        starts.append(epoch((await recordings(recorded, camera))["spans"][0]["start"]))
    moment = max(starts) + 6.3  # well inside both cameras' footage, with room to play on
    page = await open_playback(browser, recorded, f"layout=crossroads&at={iso(moment)}")
    settled = await paused_at(page, moment)
    # The same moment on both tiles: the wall time of each picture, and its frame number
    # against the node's own picture of that camera at that moment.
    pictures = [tile["picture"] for tile in settled["tiles"]]
    # Each tile within a frame of the moment, on either side (cameras' frames are not in
    # phase, and their times are arrival times): in step is that, not a spread of one frame.
    assert all(abs(p - moment) <= FRAME_S for p in pictures), (moment, pictures)
    for camera in CROSSROADS:  # one with B-frames among them
        expected, _ = await node_frame_at(recorded, camera, moment)
        assert abs(frames_apart(expected, await tile_frame(page, camera))) <= 2, camera
    names = await page.locator(".tile-name").all_text_contents()
    assert names == ["Gate", "Yard \u05d7\u05e6\u05e8", "B-frames"], names
    isolation = await page.evaluate(
        "getComputedStyle(document.querySelectorAll('.tile-name')[1]).unicodeBidi"
    )
    assert isolation == "isolate"
    assert await page.get_attribute("#live", "href") == "/wall/crossroads"
    # Playing on, they stay together.
    await page.evaluate("window.playback.setPlaying(true)")
    await page.wait_for_timeout(1500)
    await page.evaluate("window.playback.setPlaying(false)")
    await page.wait_for_timeout(300)
    later = await status(page)
    pictures = [tile["picture"] for tile in later["tiles"]]
    assert min(pictures) > moment + 0.5 and max(pictures) - min(pictures) <= FRAME_S, pictures

    hevc = await open_playback(browser, recorded, f"camera=hevc&at={iso(moment)}")
    tile = await wait_for(lambda: tile_in_state(hevc, "error"), 10, 0.2)
    assert "H.265" in tile["notice"] and "cannot be played in this browser" in tile["notice"]

    # The way in from the wall: its toolbar's Playback opens the cameras on the wall, a
    # minute back, in a new tab.
    await page.goto(f"{recorded.service.url}/wall/crossroads")
    await page.wait_for_selector("#playback-wall:not([hidden])")
    await page.wait_for_selector(".tile[data-camera='gate'] .playback-link", state="visible")
    async with page.context.expect_page() as opened:
        await page.click("#playback-wall")
    tab = await opened.value
    await tab.wait_for_selector("body[data-ready='yes']", timeout=15000)
    query = parse_qs(urlsplit(tab.url).query)
    assert query["cameras"] == ["gate,yard,bf"], tab.url
    assert abs(epoch(query["at"][0]) - (time.time() - 60)) < 15, tab.url


async def test_a_viewer_is_told_recordings_are_not_for_them(
    recorded: Recorded, browser: Browser
) -> None:
    page = await signed_in_page(browser, recorded.service, VIEWER, Role.VIEWER)
    await page.goto(f"{recorded.service.url}/playback?camera=gate&at={iso(recorded.started + 3)}")
    await page.wait_for_selector("body[data-refused='yes']", timeout=10000)
    text = await page.text_content("#message")
    assert text and "recordings.view" in text, text
    notice = await page.text_content(".tile .notice")
    assert notice == "Recordings are not available to you", notice
    # The wall offers no playback to a viewer.
    await page.goto(f"{recorded.service.url}/wall")
    await page.wait_for_selector("body[data-session='ready']")
    assert await page.locator("#playback-wall").is_hidden()
