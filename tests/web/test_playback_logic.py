"""The playback page's arithmetic and its timeline, run as they are in real headless Chromium.

js/playback-time.js (wall <-> media time, where footage is, which window to fetch next, the
shared clock, the timeline's geometry) and js/timeline.js are loaded from the package's
static files through Playwright's request routing: no service is needed to test them, and
the browser runs the very modules the page runs.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, Page, Route

from surveillance.api.pages import STATIC_DIR

ORIGIN = "http://playback.test"  # answered by the route below; nothing listens there
BLANK = "<!doctype html><html><head><meta charset='utf-8'></head><body></body></html>"
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}

# Runs in the page; returns what each function answered, for the asserts below.
CHECKS = """async () => {
  const t = await import("/static/js/playback-time.js");
  const ranges = (pairs) => ({
    length: pairs.length, start: (i) => pairs[i][0], end: (i) => pairs[i][1] });
  const spans = [{ start: 1000, end: 1600 }, { start: 1700, end: 2000 }];
  const gaps = [{ start: 1600, end: 1700, reason: "camera offline: refused" }];
  let fakeMs = 0;
  const clock = new t.PlaybackClock(5000, () => fakeMs);
  const read = () => clock.now();
  const clockRun = [];
  fakeMs = 1000; clockRun.push(read());          // 1 s at 1x
  clock.setRate(4); fakeMs = 2000; clockRun.push(read());  // 1 s at 4x
  clock.hold(true); fakeMs = 3000; clockRun.push(read());  // held
  clock.hold(false); fakeMs = 3500; clockRun.push(read()); // 0.5 s at 4x
  clock.setPlaying(false); fakeMs = 9000; clockRun.push(read());
  const line = new t.MediaTimeline(900);
  return {
    iso: [t.parseIso("2026-01-31T14:32:00Z"), t.parseIso("2026-01-31T14:32:00+01:00"),
          t.parseIso("2026-01-31T14:32:00"), t.parseIso("soon"), t.isoOf(1769869920.5)],
    footage: [t.footageAt(spans, gaps, 1200).kind, t.footageAt(spans, gaps, 1650),
              t.footageAt(spans, gaps, 2500), t.footageAt([], [], 10)],
    windows: {
      fresh: t.nextWindow(spans, 1200, null, 1, 99999),
      farAhead: t.nextWindow(spans, 1200, 1250, 1, 99999),
      due: t.nextWindow(spans, 1200, 1205, 1, 99999),
      due8x: t.nextWindow(spans, 1200, 1240, 8, 99999),
      overGap: t.nextWindow([spans[0], { start: 1605, end: 2000 }], 1595, 1600, 1, 99999),
      gapTooFar: t.nextWindow([spans[0], { start: 1900, end: 2000 }], 1595, 1600, 1, 99999),
      present: t.nextWindow(spans, 1900, 1905, 1, 1910),
      afterAll: t.nextWindow(spans, 1995, 2000, 1, 99999),
    },
    media: [line.mediaOf(1000), line.wallOf(100), line.offsetFor(1003.5), line.holds(899),
            t.MediaTimeline.around(5000.7).origin],
    buffered: [t.bufferedTarget(ranges([[10, 20], [30, 40]]), 15),
               t.bufferedTarget(ranges([[10, 20], [30, 40]]), 29.98, 0.04),
               t.bufferedTarget(ranges([[10, 20], [30, 40]]), 25),
               t.bufferedTarget(ranges([[10, 20]]), 20)],
    clock: clockRun,
    bars: t.timelineBars(spans, [...gaps, { start: 2000, end: null, reason: "recorder stopped" }],
                         1500, 2500, 2200),
    fraction: [t.fractionOf(1000, 2000, 1250), t.timeAtFraction(1000, 2000, 0.25),
               t.fractionOf(1000, 2000, 5000), t.leadS(1), t.leadS(8)],
    step: t.frameMiddle(100, 0.04),
  };
}"""

TIMELINE = """async () => {
  const { Timeline } = await import("/static/js/timeline.js");
  const asked = [];
  const onSeek = (at) => asked.push(at);
  const timeline = new Timeline("gate", "\\u05e9\\u05e2\\u05e8", { onSeek });
  document.body.append(timeline.root);
  timeline.root.style.width = "1000px";
  const gaps = [{ start: 1800, end: null, reason: "disk full" }];
  timeline.setFootage([{ start: 0, end: 1800 }], gaps, "recording");
  timeline.render(0, 3600, 2700);
  timeline.moveCursor(900);
  const bar = timeline.bar.getBoundingClientRect();
  const quarter = bar.left + bar.width / 4;
  timeline.bar.dispatchEvent(new MouseEvent("click", { clientX: quarter, bubbles: true }));
  const gap = timeline.bar.querySelector(".timeline-gap");
  return {
    asked,
    spans: timeline.bar.querySelectorAll(".timeline-span").length,
    gapTitle: gap.title,
    gapWidth: gap.getBoundingClientRect().width / bar.width,
    cursor: (timeline.cursor.getBoundingClientRect().left - bar.left) / bar.width,
    nameIsolated: getComputedStyle(timeline.root.querySelector(".timeline-name")).unicodeBidi,
    status: timeline.status.textContent,
  };
}"""


async def serve_static(route: Route) -> None:
    path = route.request.url.removeprefix(ORIGIN).split("?")[0]
    if not path.startswith("/static/"):
        await route.fulfill(body=BLANK, content_type="text/html")
        return
    file = (STATIC_DIR / path.removeprefix("/static/")).resolve()
    assert file.is_relative_to(STATIC_DIR.resolve()), path
    await route.fulfill(path=file, content_type=TYPES.get(file.suffix, "application/octet-stream"))


@pytest.fixture
async def page(browser: Browser) -> Page:
    context = await browser.new_context()
    await context.route(f"{ORIGIN}/**", serve_static)
    opened = await context.new_page()
    await opened.goto(f"{ORIGIN}/blank")
    await opened.add_style_tag(url="/static/css/base.css")
    await opened.add_style_tag(url="/static/css/playback.css")
    return opened


async def test_time_mapping_footage_windows_and_clock(page: Page) -> None:
    got: dict[str, Any] = await page.evaluate(CHECKS)
    iso = got["iso"]
    assert iso[0] == 1769869920 and iso[1] == 1769869920 - 3600, iso
    assert iso[2] is None and iso[3] is None, "a time without a zone is refused, not guessed"
    assert iso[4] == "2026-01-31T14:32:00.500Z", iso

    kind, in_gap, after, empty = got["footage"]
    assert kind == "footage"
    assert in_gap == {"kind": "gap", "reason": "camera offline: refused", "resumesAt": 1700}
    assert after == {"kind": "gap", "reason": "nothing recorded", "resumesAt": None}
    assert empty["reason"] == "nothing recorded on this day", empty

    w = got["windows"]
    assert w["fresh"] == {"start": 1200, "end": 1206}, "a seek fetches a short window first"
    assert w["farAhead"] is None, "50 s ahead is enough at 1x"
    assert w["due"] == {"start": 1205, "end": 1235}
    assert w["due8x"] == {"start": 1240, "end": 1360}, "at 8x: fetched earlier, longer (capped)"
    assert w["overGap"] == {"start": 1605, "end": 1635}, "the next window starts after the gap"
    assert w["gapTooFar"] is None, "footage resuming beyond the lead is not fetched yet"
    assert w["present"] == {"start": 1905, "end": 1910}, "never into the future"
    assert w["afterAll"] is None

    assert got["media"] == [100, 1000, 103.5, False, 4400]
    assert got["buffered"] == [15, 30, None, None], got["buffered"]
    # 1 s at 1x, then 1 s at 4x, held for 1 s, 0.5 s at 4x, then paused.
    assert got["clock"] == [5001, 5005, 5005, 5007, 5007], got["clock"]

    bars = {(bar["kind"], bar["start"]): bar for bar in got["bars"]}
    first, gap, second, ongoing = (
        bars["span", 1000], bars["gap", 1600], bars["span", 1700], bars["gap", 2000]
    )  # fmt: skip
    assert first["left"] == 0 and first["width"] == pytest.approx(0.1), "clipped at the view"
    assert gap["left"] == pytest.approx(0.1) and gap["reason"] == "camera offline: refused"
    assert second["width"] == pytest.approx(0.3)
    assert ongoing["width"] == pytest.approx(0.2), "a gap still going ends at now"
    assert got["fraction"] == [0.25, 1250, 1, 10, 48]
    assert got["step"] == pytest.approx(100.02)


async def test_timeline_draws_spans_and_gaps_and_seeks_where_clicked(page: Page) -> None:
    got: dict[str, Any] = await page.evaluate(TIMELINE)
    assert got["asked"] == [pytest.approx(900, abs=4)], "a quarter of an hour's bar: 900 s"
    assert got["spans"] == 1
    assert "disk full" in got["gapTitle"], got["gapTitle"]
    assert got["gapWidth"] == pytest.approx(0.25, abs=0.01), "from 1800 s to now (2700 s)"
    assert got["cursor"] == pytest.approx(0.25, abs=0.01)
    assert got["nameIsolated"] == "isolate"
    assert got["status"] == "recorder: recording"


GOTO = """async () => {
  const t = await import("/static/js/playback-time.js");
  const winter = 1769869920.5, summer = 1785000000;  // 2026-01-31T14:32:00.5Z, 2026-07-25
  return {
    shown: [t.gotoText(winter), t.clockText(winter)],
    read: [t.parseGoto("2026-01-31 15:32:00"), t.parseGoto("2026-01-31T15:32"),
           t.parseGoto(" 2026-01-31 15:32:00.5 "), t.parseGoto("2026-01-31T14:32:00Z"),
           t.parseGoto(t.gotoText(summer))],
    refused: [t.parseGoto("2026-02-30 10:00:00"), t.parseGoto("2026-01-31 24:00:00"),
              t.parseGoto("2026-03-29 02:30:00"), t.parseGoto("01/31/2026, 03:32:00 PM"),
              t.parseGoto("")],
    zones: [t.zoneText(winter), t.zoneText(summer)],
  };
}"""


async def test_go_to_reads_and_shows_the_clocks_own_format_and_zone(browser: Browser) -> None:
    """The field shows what the clock shows (local, 24 h) whatever the browser's locale;
    a 12-hour US locale in Berlin's zone makes a difference show."""
    context = await browser.new_context(locale="en-US", timezone_id="Europe/Berlin")
    try:
        await context.route(f"{ORIGIN}/**", serve_static)
        opened = await context.new_page()
        await opened.goto(f"{ORIGIN}/blank")
        got: dict[str, Any] = await opened.evaluate(GOTO)
    finally:
        await context.close()
    assert got["shown"] == ["2026-01-31 15:32:00", "2026-01-31 15:32:00.500"], got
    assert got["read"] == [1769869920, 1769869920, 1769869920.5, 1769869920, 1785000000], got
    # No such day, no such hour, the hour skipped when Berlin's clocks go forward, and the
    # locale's 12-hour format: refused, not read as a moment next to it.
    assert got["refused"] == [None] * 5, got
    assert got["zones"] == ["UTC+01:00", "UTC+02:00"], got
