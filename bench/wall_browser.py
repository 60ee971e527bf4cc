"""Headless Chromium viewers of the wall page for ``bench.wall``, driven by Playwright.

Each viewer is its own browser context (no shared cache, cookies or connections) with one
page on ``/wall/<layout>``: the real page, the real ``player.js``, the real delivery path.
A context signs in first, as a person would on ``/login``: ``POST /api/auth/login`` from
the context's request client, which shares its cookies (session and CSRF) with its pages.
The browser is Debian's ``/usr/bin/chromium`` (Playwright downloads nothing here).

Two small scripts are added to each page, neither of which changes what the page does:

- at document start, a watcher that notes when each tile's ``<video>`` presents its first
  frame, in milliseconds since navigation (``player.js`` itself records ``firstFrameMs``
  from the player's start, after the page has loaded its camera list and layout), and
  times the page's ``/api/live/*`` requests per camera, so a slow first frame can be split
  into plan request, offer, answer, and connection. They pass through unchanged but for
  the plan request's ``purpose`` and ``caps`` when the benchmark measures one delivery
  path (:data:`PATH_PLANS`): the server then chooses that path, as it would for such a
  page;
- for the latency phase only, a frame grabber on chosen tiles: on every presented frame
  (``requestVideoFrameCallback``) it draws the top-left region where the generator writes
  the frame number onto a canvas, optionally scaled down, and keeps its grey levels
  (base64) with the presentation time on this machine's wall clock (``Date.now()`` scale).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from bench.service import BenchCredentials

CHROMIUM = "/usr/bin/chromium"
PLAYER_JS_URL = "**/static/js/player.js"
# The flags the browser tests use (tests/web/conftest.py); autoplay so muted videos
# start without a click.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
]

FIRST_FRAME_WATCHER = """
(() => {
  const seen = new WeakSet();
  window.__benchFirstFrame = {};
  const watch = (video) => {
    if (seen.has(video) || !video.requestVideoFrameCallback) return;
    seen.add(video);
    video.requestVideoFrameCallback(() => {
      const tile = video.closest(".tile");
      const camera = tile ? tile.dataset.camera : "";
      if (camera && !(camera in window.__benchFirstFrame)) {
        window.__benchFirstFrame[camera] = performance.now();
      }
    });
  };
  // When each tile's live requests ran (the page's own fetch, timed and passed through;
  // a plan request gets the benchmark's fields, if any, to put every tile on one path).
  window.__benchFetches = [];
  const pageFetch = window.fetch.bind(window);
  window.fetch = async (input, init) => {
    const url = new URL(typeof input === "string" ? input : input.url, location.href);
    let camera = null;
    if (url.pathname.startsWith("/api/live/") && init && typeof init.body === "string") {
      try {
        const body = JSON.parse(init.body);
        camera = body.camera;
        if (url.pathname === "/api/live/plan" && window.__benchPlan) {
          init = { ...init, body: JSON.stringify({ ...body, ...window.__benchPlan }) };
        }
      } catch (error) { camera = null; }
    }
    const start = performance.now();
    try {
      return await pageFetch(input, init);
    } finally {
      if (camera) {
        window.__benchFetches.push({ path: url.pathname, camera, start, end: performance.now() });
      }
    }
  };
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeType !== 1) continue;
        if (node.tagName === "VIDEO") watch(node);
        node.querySelectorAll && node.querySelectorAll("video").forEach(watch);
      }
    }
  }).observe(document, { childList: true, subtree: true });
})();
"""

START_GRABBER = """
({ camera, sw, sh, dw, dh }) => {
  const video = document.querySelector(`.tile[data-camera="${camera}"] video`);
  if (!video || !video.requestVideoFrameCallback) return false;
  const canvas = document.createElement("canvas");
  canvas.width = dw;
  canvas.height = dh;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const grabs = (window.__benchGrabs = window.__benchGrabs || {});
  if (grabs[camera]) grabs[camera].active = false;
  const state = { active: true, samples: [], errors: 0 };
  grabs[camera] = state;
  const onFrame = (now, meta) => {
    if (!state.active) return;
    try {
      // performance.now() and Date.now() read at the same moment map the frame's
      // presentation time onto the wall clock the benchmark's reference reader uses.
      const offset = Date.now() - performance.now();
      ctx.drawImage(video, 0, 0, sw, sh, 0, 0, dw, dh);
      const rgba = ctx.getImageData(0, 0, dw, dh).data;
      const grey = new Uint8Array(dw * dh);
      for (let i = 0, j = 0; j < grey.length; i += 4, j += 1) {
        grey[j] = (rgba[i] + rgba[i + 1] + rgba[i + 2]) / 3;
      }
      let text = "";
      for (let i = 0; i < grey.length; i += 0x8000) {
        text += String.fromCharCode.apply(null, grey.subarray(i, i + 0x8000));
      }
      state.samples.push({
        presented: offset + meta.presentationTime,
        received: meta.receiveTime === undefined ? null : offset + meta.receiveTime,
        width: meta.width,
        height: meta.height,
        pixels: btoa(text),
      });
    } catch (error) {
      state.errors += 1;
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  return true;
}
"""

TAKE_GRABS = """
() => {
  const out = {};
  for (const [camera, state] of Object.entries(window.__benchGrabs || {})) {
    out[camera] = { samples: state.samples.splice(0), errors: state.errors };
  }
  return out;
}
"""

STOP_GRABS = """
() => { for (const state of Object.values(window.__benchGrabs || {})) state.active = false; }
"""


# Plan request fields that put every tile of the benchmark's (H.264, no B-frames) cameras
# on one path: what a page asks for a single picture, for a grid tile, and what a browser
# that decodes H.264 only over WebRTC and plays no MSE would report.
PATH_PLANS: dict[str, dict[str, Any]] = {
    "webrtc": {"purpose": "single"},
    "mse": {"purpose": "grid"},
    "transcode": {"caps": {"webrtc_h264": False, "mse_avc": False, "mse_hevc": False}},
}


@dataclass(frozen=True)
class Crop:
    """The region of each frame a grabber keeps: (sw, sh) source pixels drawn as (dw, dh)."""

    sw: int
    sh: int
    dw: int
    dh: int


@dataclass
class Viewer:
    index: int
    context: BrowserContext
    page: Page
    opened_at: float  # time.monotonic() when the navigation started


class Browsers:
    """One headless Chromium with one context and page per viewer; ``close`` ends it all."""

    def __init__(
        self, viewport: tuple[int, int], path: str | None = None, player_js: Path | None = None
    ) -> None:
        self._viewport = viewport
        self._plan = PATH_PLANS[path] if path else None
        self._player_js = player_js
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self.viewers: list[Viewer] = []
        self.driver_pid: int | None = None

    def start(self) -> None:
        before = set(_children(os.getpid()))
        self._playwright = sync_playwright().start()
        new = [pid for pid in _children(os.getpid()) if pid not in before]
        self.driver_pid = next((pid for pid in new if "playwright" in _cmdline(pid)), None)
        self._browser = self._playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS
        )

    def open(self, url: str, credentials: BenchCredentials) -> Viewer:
        """A new context, signed in as ``credentials``, with a page navigated to ``url``."""
        assert self._browser is not None, "start() first"
        width, height = self._viewport
        context = self._browser.new_context(viewport={"width": width, "height": height})
        if self._plan is not None:
            context.add_init_script(f"window.__benchPlan = {json.dumps(self._plan)};")
        context.add_init_script(FIRST_FRAME_WATCHER)
        if self._player_js is not None:  # a proposed player measured before it is merged
            player = str(self._player_js)
            context.route(
                PLAYER_JS_URL,
                lambda route: route.fulfill(path=player, content_type="text/javascript"),
            )
        sign_in(context, url, credentials)
        page = context.new_page()
        viewer = Viewer(len(self.viewers), context, page, time.monotonic())
        self.viewers.append(viewer)
        page.goto(url, wait_until="load")
        return viewer

    def chromium_pids(self) -> list[int]:
        """Every Chromium process (browser, zygotes, renderers, GPU, network), not the driver."""
        if self.driver_pid is None:
            return []
        return _descendants(self.driver_pid)

    def close(self) -> None:
        for viewer in self.viewers:
            with contextlib.suppress(Exception):  # closing anyway; the browser goes next
                viewer.context.close()
        self.viewers = []
        if self._browser is not None:
            try:
                self._browser.close()
            finally:
                self._browser = None
        if self._playwright is not None:
            self._playwright.stop()
            self._playwright = None


def sign_in(context: BrowserContext, url: str, credentials: BenchCredentials) -> None:
    """Sign ``context`` in on the service ``url`` belongs to; its pages get the cookies."""
    parts = urlsplit(url)
    response = context.request.post(
        f"{parts.scheme}://{parts.netloc}/api/auth/login",
        data={"name": credentials.name, "password": credentials.password},
    )
    try:
        if not response.ok:
            raise RuntimeError(
                f"sign-in as {credentials.name}: HTTP {response.status}: {response.text()[:200]}"
            )
    finally:
        response.dispose()


def tiles(page: Page) -> list[dict[str, Any]]:
    """``window.wall.tiles()``: per tile its camera, state and player stats."""
    found: list[dict[str, Any]] = page.evaluate("window.wall.tiles()")
    return found


def first_frames_since_navigation(page: Page) -> dict[str, float]:
    found: dict[str, float] = page.evaluate("window.__benchFirstFrame || {}")
    return found


def live_requests(page: Page) -> list[dict[str, Any]]:
    """The page's ``/api/live/*`` requests: path, camera, start and end (ms since navigation)."""
    found: list[dict[str, Any]] = page.evaluate("window.__benchFetches || []")
    return found


def start_grabber(page: Page, camera: str, crop: Crop) -> bool:
    started: bool = page.evaluate(
        START_GRABBER,
        {"camera": camera, "sw": crop.sw, "sh": crop.sh, "dw": crop.dw, "dh": crop.dh},
    )
    return started


def take_grabs(page: Page) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = page.evaluate(TAKE_GRABS)
    return found


def stop_grabbers(page: Page) -> None:
    page.evaluate(STOP_GRABS)


def _parent_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry.name}/stat").read_text(encoding="ascii", errors="replace")
        except (FileNotFoundError, ProcessLookupError):
            continue
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _children(pid: int) -> list[int]:
    return _parent_map().get(pid, [])


def _descendants(pid: int) -> list[int]:
    tree = _parent_map()
    found: list[int] = []
    todo = list(tree.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(tree.get(child, []))
    return found


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", errors="replace")
