"""The wall served by one node plays cameras another node owns (issue 15), in real headless
Chromium against two real nodes over one PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from bench.cluster_nodes import NodePlan
from surveillance.cluster.rendezvous import assign
from tests.cluster.harness import Cluster, running_cluster
from tests.waits import wait_until
from tests.web.conftest import browser, wait_for

__all__ = ["browser"]  # the fixture, shared with the wall tests

pytestmark = [pytest.mark.rtsp, pytest.mark.postgresql]

CAMERAS = ["w1", "w2", "w3", "w4"]  # rendezvous hashing puts two on each node
SETTLE_S = 90.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster([NodePlan("a"), NodePlan("b")], CAMERAS) as running:
        yield running


def owners(cluster: Cluster) -> dict[str, str] | None:
    seen = cluster.owners()
    if all(len(seen.get(c, ())) == 1 for c in CAMERAS):
        return {c: seen[c][0] for c in CAMERAS}
    return None


async def tile_frames(page: Page) -> dict[str, int]:
    tiles: list[dict[str, Any]] = await page.evaluate("window.wall.tiles()")
    return {t["camera"]: (t["stats"] or {}).get("framesDecoded", 0) for t in tiles}


async def test_wall_on_a_plays_cameras_owned_by_b(cluster: Cluster, browser: Browser) -> None:
    # Settled: each camera with the node rendezvous hashing prefers (the first node up
    # holds them all until the other has been live a lease time).
    placed = assign(CAMERAS, [("a", 1.0), ("b", 1.0)])
    on_b = [c for c, n in placed.items() if n == "b"]
    assert on_b and len(on_b) < len(CAMERAS), placed  # both kinds of tile
    wait_until(lambda: owners(cluster) == placed, SETTLE_S, "each camera on its preferred node")
    a = cluster.node("a")
    tiles = [{"x": i % 2, "y": i // 2, "w": 1, "h": 1, "camera": c} for i, c in enumerate(CAMERAS)]
    layout = {"name": "across", "title": "Across nodes", "cols": 2, "rows": 2, "tiles": tiles}
    saved = a.request("PUT", "/api/layouts/across", json=layout)
    assert saved.status_code == 200, saved.text

    credentials = cluster.nodes.credentials
    assert credentials is not None
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    signed = await context.request.post(
        f"{a.url}/api/auth/login", data={"name": credentials.name, "password": credentials.password}
    )
    assert signed.status == 200, await signed.text()
    page = await context.new_page()
    await page.goto(f"{a.url}/wall/across")

    async def all_decoding() -> dict[str, int] | None:
        counts = await tile_frames(page)
        return counts if all(counts.get(c, 0) > 0 for c in CAMERAS) else None

    first = await wait_for(all_decoding, 60)
    await page.wait_for_timeout(2000)
    second = await tile_frames(page)
    for camera in CAMERAS:
        assert second[camera] > first[camera], f"{camera}: frames stopped ({first} -> {second})"
    # Still ingested once each, by the same node: a did not open b's cameras to serve its page.
    assert owners(cluster) == placed
    assert cluster.watch.doubles == []
    await context.close()


async def test_wall_on_another_name_plays_directly_or_relayed(
    cluster: Cluster, browser: Browser
) -> None:
    """The page's origin is not a node's cluster.url (``localhost`` where the table says
    127.0.0.1, as behind a load balancer's name): the owner takes its tickets (localhost is
    one of its allowed hosts), and when the browser cannot reach the owner at all, the page's
    own node relays the owner's socket. Tickets never reach either node's log."""
    placed = assign(CAMERAS, [("a", 1.0), ("b", 1.0)])
    wait_until(lambda: owners(cluster) == placed, SETTLE_S, "each camera on its preferred node")
    a, b = cluster.node("a"), cluster.node("b")
    tiles = [{"x": i % 2, "y": i // 2, "w": 1, "h": 1, "camera": c} for i, c in enumerate(CAMERAS)]
    layout = {"name": "named", "title": "Another name", "cols": 2, "rows": 2, "tiles": tiles}
    assert a.request("PUT", "/api/layouts/named", json=layout).status_code == 200
    credentials = cluster.nodes.credentials
    assert credentials is not None
    page_origin = f"http://localhost:{a.port}"
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    signed = await context.request.post(
        f"{page_origin}/api/auth/login",
        data={"name": credentials.name, "password": credentials.password},
    )
    assert signed.status == 200, await signed.text()

    async def playing(page: Page) -> None:
        async def all_decoding() -> dict[str, int] | None:
            counts = await tile_frames(page)
            return counts if all(counts.get(c, 0) > 0 for c in CAMERAS) else None

        first = await wait_for(all_decoding, 60)
        await page.wait_for_timeout(2000)
        second = await tile_frames(page)
        for camera in CAMERAS:
            assert second[camera] > first[camera], f"{camera}: frames stopped ({first} -> {second})"

    direct = await context.new_page()
    owner_sockets: list[str] = []
    direct.on("websocket", lambda ws: owner_sockets.append(ws.url))
    await direct.goto(f"{page_origin}/wall/named")
    await playing(direct)
    # Straight from b, with tickets it took from a localhost page.
    assert any(url.startswith(f"ws://127.0.0.1:{b.port}/api/live/mse?") for url in owner_sockets)
    await direct.close()

    # A browser that cannot reach b: a fake for the one thing no real part produces on one
    # machine (b is on 127.0.0.1 like everything else): its sockets to b close unopened.
    relayed = await context.new_page()
    await relayed.route_web_socket(f"ws://127.0.0.1:{b.port}/**", lambda ws: ws.close())
    own_sockets: list[str] = []
    relayed.on("websocket", lambda ws: own_sockets.append(ws.url))
    await relayed.goto(f"{page_origin}/wall/named")
    await playing(relayed)  # b's cameras through a, which relays b's sockets
    on_b = [c for c, n in placed.items() if n == "b"]
    for camera in on_b:
        assert any(url.startswith(f"ws://localhost:{a.port}/api/live/mse?camera={camera}&")
                   for url in own_sockets), own_sockets  # fmt: skip
    await context.close()
    assert owners(cluster) == placed
    assert cluster.watch.doubles == []

    for node in (a, b):
        text = node.log.read_text(encoding="utf-8", errors="replace")
        assert re.search(r"ticket=(?!\*\*\*)", text) is None, f"a ticket in {node.node_id}'s log"
    assert "ticket=***" in b.log.read_text(encoding="utf-8", errors="replace")
