"""The wall's health feed (static/js/health-feed.js) with Chromium's real EventSource, against a
tiny test-only server that speaks the `/api/cameras/events` contract and can drop its stream or
lose the route, so every turn between pushed events and polling is seen. (The service's own
route is tested with the whole wall in test_wall_events.py.)"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.web.conftest import wait_for

STATIC_JS = Path(__file__).resolve().parents[2] / "surveillance" / "web" / "static" / "js"

FEED_PAGE = b"""<!doctype html>
<script type="module">
  import { HealthFeed } from "/static/js/health-feed.js";
  window.log = [];
  const feed = new HealthFeed({
    onCameras: (cameras) => log.push(["cameras", cameras.map((c) => `${c.id}:${c.state}`)]),
    onCamera: (camera) => log.push(["camera", `${camera.id}:${camera.state}`]),
    onMode: (mode) => log.push(["mode", mode]),
  });
  feed.start();
</script>"""


class FeedServer:
    """GET /api/cameras (polls counted), GET /api/cameras/events (SSE, while ``events_up``),
    the page and the static modules. ``push`` sends an event to every open stream; ``drop``
    ends them."""

    def __init__(self) -> None:
        self.cameras: list[dict[str, Any]] = [{"id": "a", "state": "online"}]
        self.events_up = True
        self.polls = 0
        self.streams: list[queue.Queue[tuple[str, Any]]] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def push(self, event: str, data: Any) -> None:
        with self.lock:
            for stream in self.streams:
                stream.put((event, data))

    def drop(self) -> None:
        self.push("close", None)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _send(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/feed.html":
                    self._send(200, "text/html", FEED_PAGE)
                elif self.path.startswith("/static/js/"):
                    file = STATIC_JS / Path(self.path).name
                    self._send(200, "text/javascript", file.read_bytes())
                elif self.path == "/api/cameras":
                    with server.lock:
                        server.polls += 1
                        body = json.dumps(server.cameras).encode()
                    self._send(200, "application/json", body)
                elif self.path == "/api/cameras/events" and server.events_up:
                    self._stream()
                else:
                    self._send(404, "application/json", b'{"detail": "Not Found"}')

            def _stream(self) -> None:
                events: queue.Queue[tuple[str, Any]] = queue.Queue()
                with server.lock:
                    server.streams.append(events)
                    snapshot = json.dumps(server.cameras)
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Cache-Control", "no-cache")
                    self.end_headers()
                    # retry: EventSource's wait before it reconnects by itself after a drop.
                    opening = f"retry: 300\n\nevent: snapshot\ndata: {snapshot}\n\n"
                    self.wfile.write(opening.encode())
                    self.wfile.flush()
                    while True:
                        try:
                            event, data = events.get(timeout=15)
                        except queue.Empty:
                            self.wfile.write(b": keepalive\n\n")
                            self.wfile.flush()
                            continue
                        if event == "close":
                            return
                        self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
                        self.wfile.flush()
                except OSError:
                    return  # the page went away
                finally:
                    with server.lock:
                        server.streams.remove(events)

        return Handler


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.drop()
    server.httpd.shutdown()
    server.httpd.server_close()


async def log(page: Page) -> list[list[Any]]:
    found: list[list[Any]] = await page.evaluate("window.log || []")
    return found


async def modes(page: Page) -> list[str]:
    return [entry[1] for entry in await log(page) if entry[0] == "mode"]


async def saw(page: Page, entry: list[Any]) -> bool:
    return entry in await log(page)


async def polls_stay(server: FeedServer, seconds: float) -> bool:
    before = server.polls
    await asyncio.sleep(seconds)
    return server.polls == before


async def test_pushed_events_then_polling_while_the_stream_is_down(
    feed_server: FeedServer, browser: Browser
) -> None:
    server = feed_server
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{server.url}/feed.html")

    # Connected: the snapshot, then each change as it happens, and no polling at all.
    await wait_for(lambda: saw(page, ["cameras", ["a:online"]]), 10)
    assert await modes(page) == ["events"]
    await wait_for(lambda: _streams_open(server, 1), 5)
    server.push("camera", {"id": "a", "state": "offline", "retry_at": None})
    await wait_for(lambda: saw(page, ["camera", "a:offline"]), 3)
    assert server.polls == 0

    # The stream drops (a proxy, a restart): polling at once, and back to events when
    # EventSource has reconnected by itself and its new snapshot came.
    server.cameras = [{"id": "a", "state": "connecting"}]
    server.drop()
    await wait_for(lambda: _modes_are(page, ["events", "polling", "events"]), 10)
    assert server.polls >= 1
    assert await polls_stay(server, 4.5), "polling went on while events flowed"

    # The route is gone (a server without it answers 404; EventSource gives up): the feed
    # polls every 2 s and hands on what it reads.
    server.events_up = False
    server.drop()
    await wait_for(lambda: _modes_are(page, ["events", "polling", "events", "polling"]), 10)
    polled = server.polls
    server.cameras = [{"id": "a", "state": "stalled"}]
    await wait_for(lambda: saw(page, ["cameras", ["a:stalled"]]), 5)
    await asyncio.sleep(4.5)
    assert server.polls >= polled + 2

    # The route is back: the feed opens a new stream by itself and stops polling.
    server.events_up = True
    await wait_for(lambda: _modes_are(page, ["events", "polling"] * 2 + ["events"]), 25)
    assert await polls_stay(server, 4.5), "polling went on while events flowed"


async def _streams_open(server: FeedServer, count: int) -> bool:
    with server.lock:
        return len(server.streams) == count


async def _modes_are(page: Page, expected: list[str]) -> bool:
    return await modes(page) == expected
