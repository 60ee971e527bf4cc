"""The fMP4 WebSocket as real Chromium opens it: no per-message compression.

Chromium offers ``permessage-deflate`` on every WebSocket; had the service accepted it,
every H.264 fragment would be compressed for nothing (1.57% of a core per 1080p viewer
instead of 0.18%). The handshake is read twice: the page's own ``WebSocket.extensions``
(what was negotiated) and the DevTools protocol's copy of the request and response headers
(that the browser did offer it, so the check could fail).
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser

from surveillance.auth.roles import Role
from surveillance.simulator import Simulator
from tests.web.conftest import ServiceProcess, signed_in_page

pytestmark = pytest.mark.rtsp

OPEN_SOCKET = """
async (camera) => {
  const ws = new WebSocket(`ws://${location.host}/api/live/mse?camera=${camera}`);
  ws.binaryType = "arraybuffer";
  const first = await new Promise((resolve, reject) => {
    ws.addEventListener("message", (event) => resolve(event.data), { once: true });
    ws.addEventListener("error", () => reject(new Error("socket error")), { once: true });
  });
  const extensions = ws.extensions;
  ws.close();
  return { extensions, first: typeof first === "string" ? JSON.parse(first) : null };
}
"""


async def test_the_mse_socket_negotiates_no_compression(
    simulator: Simulator, service_factory: Any, browser: Browser
) -> None:
    service: ServiceProcess = service_factory(
        [{"id": "cam", "name": "Camera", "platform": "town", "url": simulator.url("cam01")}]
    )
    page = await signed_in_page(browser, service, "viewer1", Role.OPERATOR)
    await page.goto(f"{service.url}/wall")
    devtools = await page.context.new_cdp_session(page)
    handshakes: dict[str, dict[str, Any]] = {}
    devtools.on(
        "Network.webSocketWillSendHandshakeRequest",
        lambda event: handshakes.setdefault("request", event["request"]["headers"]),
    )
    devtools.on(
        "Network.webSocketHandshakeResponseReceived",
        lambda event: handshakes.setdefault("response", event["response"]["headers"]),
    )
    await devtools.send("Network.enable")

    opened = await page.evaluate(OPEN_SOCKET, "cam")

    assert opened["first"]["type"] == "init", opened  # the service answered on this socket
    assert opened["extensions"] == ""
    request = {k.lower(): v for k, v in handshakes["request"].items()}
    response = {k.lower(): v for k, v in handshakes["response"].items()}
    assert "permessage-deflate" in request["sec-websocket-extensions"]
    assert "sec-websocket-extensions" not in response, response
