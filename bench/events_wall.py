"""Alarm to the wall, and false alarms on sound cameras, for ``bench.events``.

One node runs in this process (uvicorn in a thread, the real app) with N simulator
cameras that show the generated moving picture (no fault), diagnosis on with its default
thresholds. Then:

- **alarm_to_wall_ms**: the wall page (``/wall``) in headless Chromium, signed in as an
  admin. For each sample an ALARM event (``device.alarm``, the type external alarms use)
  is raised on the node's bus, and the time is taken until the page shows the camera's
  tile pinned (the wall's DOM: an element with class ``alarm-pinned`` and
  ``data-camera=<id>``; a MutationObserver notes ``Date.now()``, the same clock as the
  raise's ``time.time()``). The alarm is then acknowledged and ended, and the next sample
  waits until the tile is unpinned. Baseline beside it, same run: the same event's arrival
  at a plain SSE client of ``/api/events/stream`` (the push alone, no page).
- **false_alarms_per_100_camera_hours**: quality and zone events raised on those cameras
  over the whole time the node ran (the alarms raised above are not counted), per 100
  camera-hours of it.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Page, sync_playwright

from bench.service import HOST, free_port
from bench.stats import median, rounded
from bench.wall_browser import CHROMIUM, CHROMIUM_FLAGS
from surveillance.api.app import create_app
from surveillance.api.node import Node
from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from surveillance.events.records import EventFilter, EventSpec, EventType, Severity

ADMIN = "bench-events"
PIN_TIMEOUT_S = 10.0  # a sample with no pinned tile by then counts as missed
UNPIN_TIMEOUT_S = 10.0
PAGE_READY_TIMEOUT_MS = 30_000
SERVICE_START_S = 30.0
# Events that would be false alarms on a camera with nothing wrong with it.
FALSE_ALARM_TYPES = [t.value for t in EventType if t.value.startswith(("quality.", "zone."))]

WATCH_PIN = """(camera) => {
  window.__benchPinned = window.__benchPinned || {};
  delete window.__benchPinned[camera];
  const pinned = () => [...document.querySelectorAll(".alarm-pinned")]
    .some((el) => el.dataset.camera === camera);
  const observer = new MutationObserver(() => {
    if (pinned()) { window.__benchPinned[camera] = Date.now(); observer.disconnect(); }
  });
  observer.observe(document.body, { subtree: true, childList: true, attributes: true,
    attributeFilter: ["class", "data-camera"] });
}"""
IS_PINNED = """(camera) => [...document.querySelectorAll(".alarm-pinned")]
  .some((el) => el.dataset.camera === camera)"""


@dataclass(frozen=True)
class WallFigures:
    samples: int
    missed: int
    alarm_to_wall_ms: float | None  # median
    alarm_to_wall_ms_max: float | None
    samples_ms: list[float]
    sse_baseline_ms: float | None  # median arrival at a plain SSE client
    camera_hours: float
    false_alarms: int
    false_alarms_per_100_camera_hours: float | None
    false_alarm_events: list[dict[str, Any]]


class InProcessNode:
    """The real app under uvicorn in a thread: its bus is this process's to raise on."""

    def __init__(self, config: AppConfig) -> None:
        self.port = config.server.port
        self.app: FastAPI = create_app(config)
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, host=HOST, port=self.port, log_level="warning")
        )
        self._thread = threading.Thread(target=self._server.run, name="bench-node", daemon=True)

    @property
    def node(self) -> Node:
        node: Node = self.app.state.node
        return node

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> InProcessNode:
        self._thread.start()
        deadline = time.monotonic() + SERVICE_START_S
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the node did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(30)


def node_config(data_dir: Path, cameras: dict[str, str]) -> AppConfig:
    return AppConfig.model_validate(
        {
            "server": {"host": HOST, "port": free_port(), "data_dir": str(data_dir)},
            "platforms": [{"id": "bench", "name": "Benchmark simulator"}],
            "cameras": [
                {"id": cid, "name": f"Benchmark camera {cid}", "platform": "bench", "url": url}
                for cid, url in cameras.items()
            ],
        }
    )


class SseClock:
    """A plain client of /api/events/stream noting when each event id first arrives."""

    def __init__(self, url: str, token: str) -> None:
        self.arrived: dict[int, float] = {}
        self._url, self._token = url, token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sse", daemon=True)

    @contextmanager
    def running(self) -> Iterator[SseClock]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(5)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "text/event-stream"}
        with (
            httpx.Client(timeout=httpx.Timeout(5.0, read=None)) as client,
            client.stream("GET", f"{self._url}/api/events/stream", headers=headers) as answer,
        ):
            kind = ""
            for line in answer.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:") and kind == "event":
                    event = json.loads(line[5:])
                    self.arrived.setdefault(int(event["id"]), time.time())


def measure(cameras: dict[str, str], data_dir: Path, samples: int, soak_s: float) -> WallFigures:
    """Alarm-to-wall samples on the first cameras in turn, then the soak for false alarms."""
    password = secrets.token_urlsafe(16)
    with InProcessNode(node_config(data_dir, cameras)) as served:
        node = served.node
        started = time.time()
        node.auth.add_user(ADMIN, Role.ADMIN, password, (), ())
        _, token = node.auth.create_token(ADMIN, "bench.events")
        with SseClock(served.url, token).running() as sse, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            try:
                context = browser.new_context(viewport={"width": 1600, "height": 900})
                login = context.request.post(
                    f"{served.url}/api/auth/login", data={"name": ADMIN, "password": password}
                )
                if not login.ok:
                    raise RuntimeError(f"sign-in: HTTP {login.status}")
                page = context.new_page()
                page.goto(f"{served.url}/wall", wait_until="load")
                page.wait_for_selector(".tile", timeout=PAGE_READY_TIMEOUT_MS)
                ids = list(cameras)
                # One alarm first, not counted: the page's event stream is then connected.
                _sample(page, node, ids[0], 0)
                results = [_sample(page, node, ids[n % len(ids)], n) for n in range(1, samples + 1)]
            finally:
                browser.close()
        remaining = soak_s - (time.time() - started)
        if remaining > 0:
            time.sleep(remaining)
        ran_s = time.time() - started
        false = node.events.search(
            EventFilter(types=FALSE_ALARM_TYPES, since=started, include_children=True, limit=500)
        ).events
    wall_ms = [ms for ms, _ in results if ms is not None]
    base_ms = [
        (sse.arrived[event_id] - raised) * 1000
        for (_, (event_id, raised)) in results
        if event_id in sse.arrived
    ]
    camera_hours = len(cameras) * ran_s / 3600
    return WallFigures(
        samples=samples,
        missed=samples - len(wall_ms),
        alarm_to_wall_ms=rounded(median(wall_ms), 1),
        alarm_to_wall_ms_max=rounded(max(wall_ms), 1) if wall_ms else None,
        samples_ms=[round(ms, 1) for ms in wall_ms],
        sse_baseline_ms=rounded(median(base_ms), 1),
        camera_hours=round(camera_hours, 3),
        false_alarms=len(false),
        false_alarms_per_100_camera_hours=(
            round(len(false) * 100 / camera_hours, 2) if camera_hours else None
        ),
        false_alarm_events=[
            {"type": e.type, "camera": e.camera_id, "summary": e.summary} for e in false
        ],
    )


def _sample(page: Page, node: Node, camera: str, n: int) -> tuple[float | None, tuple[int, float]]:
    """One alarm on ``camera``: ms until its tile is pinned (None: not within the time-out),
    and the event's id with the moment it was raised."""
    page.evaluate(WATCH_PIN, camera)
    raised = time.time()
    event = node.events.raise_event(
        EventSpec(
            type=EventType.DEVICE_ALARM,
            severity=Severity.ALARM,
            key=f"bench.alarm:{camera}:{n}",
            summary="Benchmark alarm",
            camera_id=camera,
            platform_id="bench",
        )
    )
    shown: float | None = None
    deadline = time.monotonic() + PIN_TIMEOUT_S
    while time.monotonic() < deadline:
        at = page.evaluate("(camera) => (window.__benchPinned || {})[camera] || null", camera)
        if at is not None:
            shown = float(at) / 1000
            break
        time.sleep(0.02)
    node.events.acknowledge(event.id, ADMIN, "benchmark")
    node.events.end_event(event.key)
    deadline = time.monotonic() + UNPIN_TIMEOUT_S
    while time.monotonic() < deadline and page.evaluate(IS_PINNED, camera):
        time.sleep(0.05)
    return (None if shown is None else (shown - raised) * 1000), (event.id, raised)
