"""Steering a PTZ camera from the wall, in real headless Chromium against the running service
and a simulated ONVIF PTZ camera (surveillance/simulator/onvif_fleet.py) whose RTSP picture
is a crop window moving over a wide scene.

Three operators watch the camera: A steers it from the tile's pad (a held button, refreshed
while held, stopped on release), B sees "steered by A" and is refused with the server's words,
an admin takes the control over from A and lets it go; after ptz.idle_home_s the camera is
back home by itself, the lease is gone, and the audit log has it all. Last, B steers and
closes the page while holding: the page stops the camera as it goes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest
from playwright.async_api import Browser, Page, Request

from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from surveillance.simulator.onvif_device import SimulatedDevice
from surveillance.simulator.onvif_fleet import OnvifFleet
from surveillance.simulator.picture_change import COMPARE_SIZE, moved
from tests import onvif_net
from tests.auth_helpers import bearer
from tests.service import ServiceProcess, free_port
from tests.web.conftest import signed_in_page, wait_for

pytestmark = pytest.mark.rtsp

Picture = npt.NDArray[np.uint8]

CAMERA = "dome"
OPERATOR_A = "steerer"
OPERATOR_B = "watcher"
ADMIN = "chief"
IDLE_HOME_S = 6.0  # short, so the test sees the camera go home; room for the take-over first
FIRST_HOST = 211  # this module's device on the worker's subnet (other fleets start at 1)
WAIT_S = 30.0  # generous: a loaded two-core CI machine
TILE = f".tile[data-camera='{CAMERA}']"
PAD = f"{TILE} .ptz-pad"
PRESET = "Gate view"


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[OnvifFleet]:
    with OnvifFleet.on_subnet(
        onvif_net.test_subnet(),
        1,
        first_host=FIRST_HOST,
        http_port=free_port(),
        scene_dir=tmp_path / "scene",
        discovery=False,  # found by its URL in the configuration
    ) as started:
        yield started


@pytest.fixture
def service(fleet: OnvifFleet, tmp_path: Path) -> Iterator[ServiceProcess]:
    device = fleet.devices[0]
    address = device.spec.address
    assert fleet.simulator is not None  # the device's pictures
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(tmp_path / "data")},
            "ingest": {"backoff_initial_s": 0.2, "backoff_max_s": 2},
            "ptz": {"idle_home_s": IDLE_HOME_S, "lease_s": 30, "move_timeout_s": 1.0},
            "platforms": [{"id": "town", "name": "Town CCTV"}],
            "cameras": [
                {
                    "id": CAMERA,
                    "name": "Dome over the gate",
                    "platform": "town",
                    "url": fleet.simulator.url(f"onvif/{address}/main"),
                    "sub_url": fleet.simulator.url(f"onvif/{address}/sub"),
                    "username": device.spec.username,
                    "password": device.spec.password,
                    "onvif": {"url": device.url},
                }
            ],
        }
    )
    running = ServiceProcess(config)
    running.start()
    try:
        yield running
    finally:
        running.stop()


async def picture(page: Page) -> Picture | None:
    """The tile's picture as the browser shows it, grey, at picture_change's size."""
    width, height = COMPARE_SIZE
    grey: list[int] | None = await page.evaluate(
        """([selector, width, height]) => {
          const video = document.querySelector(selector);
          if (!video || video.readyState < 2 || !video.videoWidth) return null;
          const canvas = document.createElement("canvas");
          canvas.width = width;
          canvas.height = height;
          const context = canvas.getContext("2d", { willReadFrequently: true });
          context.drawImage(video, 0, 0, width, height);
          const rgba = context.getImageData(0, 0, width, height).data;
          const out = [];
          for (let i = 0; i < rgba.length; i += 4) {
            out.push(Math.round(0.299 * rgba[i] + 0.587 * rgba[i + 1] + 0.114 * rgba[i + 2]));
          }
          return out;
        }""",
        [f"{TILE} video", width, height],
    )
    return None if grey is None else np.array(grey, dtype=np.uint8).reshape(height, width)


async def live(page: Page) -> bool:
    return bool(await page.evaluate(f"document.querySelector(\"{TILE}\")?.dataset.live === 'yes'"))


async def text(page: Page, selector: str) -> str:
    return (await page.text_content(selector)) or ""


def close_to(position: tuple[float, float, float], wanted: tuple[float, float, float]) -> bool:
    return all(math.isclose(a, b, abs_tol=0.02) for a, b in zip(position, wanted, strict=True))


async def open_wall(
    browser: Browser, service: ServiceProcess, name: str, role: Role, *, by_menu: bool = False
) -> Page:
    """The wall of the one-camera layout, live, with the tile's PTZ pad open (from the tile's
    PTZ button, or its menu's item)."""
    page = await signed_in_page(browser, service, name, role)
    await page.goto(f"{service.url}/wall/gate")
    await wait_for(lambda: live(page), WAIT_S)
    if by_menu:
        await page.click(f"{TILE} .tile-menu-button")
        await page.locator(".tile-menu-item", has_text="PTZ…").click()
    else:
        await page.click(f"{TILE} .ptz-button")  # shown: the camera is a PTZ camera
    await page.wait_for_selector(f"{PAD}[data-lease]")
    return page


async def test_an_operator_steers_a_ptz_camera_from_the_wall(
    fleet: OnvifFleet, service: ServiceProcess, browser: Browser
) -> None:
    device: SimulatedDevice = fleet.devices[0]
    admin = bearer(service.node, ADMIN, Role.ADMIN)
    layout = {"name": "gate", "title": "Gate", "cols": 1, "rows": 1,
              "tiles": [{"x": 0, "y": 0, "camera": CAMERA}]}  # fmt: skip
    async with httpx.AsyncClient(base_url=service.url, headers=admin) as client:
        assert (await client.put("/api/layouts/gate", json=layout)).status_code == 200
    a = await open_wall(browser, service, OPERATOR_A, Role.OPERATOR)
    b = await open_wall(browser, service, OPERATOR_B, Role.OPERATOR, by_menu=True)
    chief = await open_wall(browser, service, ADMIN, Role.ADMIN)
    sent: list[dict[str, Any]] = []  # A's PTZ commands, as the page sent them

    def note(request: Request) -> None:
        if request.method == "POST" and request.url.endswith(f"/api/cameras/{CAMERA}/ptz"):
            sent.append(json.loads(request.post_data or "{}"))

    a.on("request", note)
    assert close_to(device.position(), (0.0, 0.0, 0.0))
    assert await a.get_attribute(PAD, "data-lease") == "free"
    [home] = await wait_for(lambda: _shown(a), WAIT_S)
    # A holds "right": the camera pans for as long as the button is held, well past the
    # server's deadman (move_timeout_s), because the page refreshes the move.
    await a.hover(f"{PAD} [data-move='right']")
    await a.mouse.down()
    await wait_for(lambda: _at_least(lambda: device.position()[0], 0.4), WAIT_S)
    await wait_for(lambda: _moved_from(a, home), WAIT_S)  # the tile shows the moved picture
    assert await a.get_attribute(PAD, "data-lease") == "mine"
    assert await text(a, f"{PAD} .ptz-lease") == "You steer this camera"
    moves = [body for body in sent if body.get("pan", 0) > 0]
    assert len(moves) >= 2, sent  # the first move and its refreshes
    # B sees who steers; the pad's buttons are locked (no take-over for the same role); an
    # arrow key asks anyway, and the server's refusal is shown on the tile.
    await wait_for(lambda: b.get_attribute(TILE, "data-steered-by"), WAIT_S)
    assert await b.get_attribute(TILE, "data-steered-by") == OPERATOR_A
    assert OPERATOR_A in await text(b, f"{TILE} .badge.steered")
    assert "steered by" in await text(b, f"{TILE} .badge.steered")
    await wait_for(lambda: _equals(b.get_attribute(PAD, "data-lease"), "other"), WAIT_S)
    assert OPERATOR_A in await text(b, f"{PAD} .ptz-lease")
    assert await b.is_disabled(f"{PAD} [data-move='left']")
    assert await b.is_hidden(f"{PAD} .ptz-takeover")
    await b.focus(PAD)
    await b.keyboard.down("ArrowLeft")
    await b.keyboard.up("ArrowLeft")
    refusal = await wait_for(lambda: text(b, f"{PAD} .ptz-status.error"), WAIT_S)
    assert f"steered by {OPERATOR_A} (operator)" in refusal, refusal
    # A lets go: the page sends a stop at once and the camera stops.
    await a.mouse.up()
    await wait_for(lambda: _true(not device.moving()), WAIT_S)
    assert {"pan": 0, "tilt": 0, "zoom": 0} in sent, sent
    stopped_at = device.position()
    assert stopped_at[0] >= 0.4
    # A saves the view as a preset, zooms in, and goes back to the preset (each command soon
    # after the one before: the idle time counts from the last).
    await a.fill(f"{PAD} .ptz-preset-name", PRESET)
    await a.click(f"{PAD} .ptz-save")
    await wait_for(lambda: _true(PRESET in device.presets().values()), WAIT_S)
    await wait_for(lambda: _has_option(a, PRESET), WAIT_S)
    await a.hover(f"{PAD} [data-move='in']")
    await a.mouse.down()
    await wait_for(lambda: _at_least(lambda: device.position()[2], 0.2), WAIT_S)
    await a.mouse.up()
    await wait_for(lambda: _true(not device.moving()), WAIT_S)
    await a.select_option(f"{PAD} .ptz-presets", label=PRESET)
    await a.click(f"{PAD} .ptz-goto")
    await wait_for(lambda: _true(close_to(device.position(), stopped_at)), WAIT_S)
    # The admin outranks A: takes the control over (and stops the camera: a command, from
    # which the idle time counts now), A's pad locks; the admin lets it go.
    await wait_for(lambda: chief.is_visible(f"{PAD} .ptz-takeover"), WAIT_S)
    await chief.click(f"{PAD} .ptz-takeover")
    await wait_for(lambda: _equals(chief.get_attribute(PAD, "data-lease"), "mine"), WAIT_S)
    await chief.click(f"{PAD} .ptz-stop")
    await wait_for(lambda: _equals(a.get_attribute(PAD, "data-lease"), "other"), WAIT_S)
    assert await a.get_attribute(TILE, "data-steered-by") == ADMIN
    await chief.click(f"{PAD} .ptz-release")
    await wait_for(lambda: _equals(text(chief, f"{PAD} .ptz-status"), "Control released"), WAIT_S)
    # Idle for ptz.idle_home_s: the camera goes home by itself, the lease is gone, the walls
    # say nobody steers, and A's tile shows the home picture again.
    await wait_for(lambda: _true(close_to(device.position(), (0.0, 0.0, 0.0))), WAIT_S)
    async with httpx.AsyncClient(base_url=service.url, headers=admin) as client:

        async def no_lease() -> bool:
            leases: list[dict[str, Any]] = (await client.get("/api/ptz/leases")).json()
            return leases == []

        await wait_for(no_lease, WAIT_S)
        await wait_for(lambda: _equals(b.get_attribute(TILE, "data-steered-by"), None), WAIT_S)
        await wait_for(lambda: _back_to(a, home), WAIT_S)

        async def audited() -> list[dict[str, Any]] | None:
            answer = await client.get("/api/audit", params={"camera": CAMERA, "limit": 500})
            entries: list[dict[str, Any]] = answer.json()["entries"]
            return entries if any(e["action"] == "ptz.home" for e in entries) else None

        entries = await wait_for(audited, WAIT_S)
    by_a = [e for e in entries if e["user"] == OPERATOR_A and e["action"] == "camera.ptz"]
    assert any(e["detail"].get("pan", 0) > 0 for e in by_a), by_a  # the move right
    assert any(e["detail"] == {"pan": 0, "tilt": 0, "zoom": 0} for e in by_a), by_a  # the stop
    assert any(
        e["detail"].get("preset") == "set" and e["detail"].get("name") == PRESET for e in by_a
    )
    assert any(e["detail"].get("preset") == "goto" for e in by_a), by_a
    refused = [e for e in entries if e["user"] == OPERATOR_B and e["action"] == "camera.ptz"]
    assert refused and {e["outcome"] for e in refused} == {"failed"}, refused
    leases = [e["detail"] for e in entries if e["action"] == "ptz.lease"]
    assert {"event": "taken-over", "from": OPERATOR_A} in leases, leases
    assert {"event": "released"} in leases, leases
    assert any(e["user"] == ADMIN and e["action"] == "camera.ptz" for e in entries), entries
    homes = [e for e in entries if e["action"] == "ptz.home"]
    assert homes and homes[0]["user"] == "system", homes
    # B steers now, and closes the wall while holding "up": the page's last act is a stop
    # (not the server's deadman, which would be the system's).
    await b.hover(f"{PAD} [data-move='up']")
    await b.mouse.down()
    await wait_for(lambda: _at_least(lambda: device.position()[1], 0.1), WAIT_S)
    await b.close()
    await wait_for(lambda: _true(not device.moving()), WAIT_S)
    async with httpx.AsyncClient(base_url=service.url, headers=admin) as client:

        async def stopped_by_b() -> bool:
            answer = await client.get("/api/audit", params={"user": OPERATOR_B, "limit": 50})
            found: list[dict[str, Any]] = answer.json()["entries"]
            stop = {"pan": 0, "tilt": 0, "zoom": 0}
            return any(e["detail"] == stop and e["outcome"] == "ok" for e in found)

        await wait_for(stopped_by_b, WAIT_S)


async def _at_least(read: Any, value: float) -> bool:
    return bool(read() >= value)


async def _true(value: bool) -> bool:
    return value


async def _equals(awaitable: Any, wanted: Any) -> bool:
    return bool(await awaitable == wanted)


async def _has_option(page: Page, label: str) -> bool:
    labels = await page.eval_on_selector_all(
        f"{PAD} .ptz-presets option", "(options) => options.map((o) => o.textContent)"
    )
    return label in labels


async def _shown(page: Page) -> list[Picture]:
    """[the tile's picture], or [] while it has none (an array has no truth value)."""
    now = await picture(page)
    return [] if now is None else [now]


async def _moved_from(page: Page, home: Picture) -> bool:
    now = await picture(page)
    return now is not None and moved(now, home)


async def _back_to(page: Page, home: Picture) -> bool:
    """The home view again (the same view, as the browser decoded it)."""
    now = await picture(page)
    return now is not None and not moved(now, home)
