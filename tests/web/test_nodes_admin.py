"""The admin page's Nodes section in real Chromium: two real nodes in cluster mode on one
real PostgreSQL database, each listed with its state; a single node shows no section."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from tests.cases.conftest import PostgresCluster, postgres
from tests.service import ServiceProcess
from tests.waits import wait_until
from tests.web.conftest import signed_in_page

__all__ = ["postgres"]

pytestmark = pytest.mark.postgresql

WAIT_MS = 20_000


def _config(node_id: str, port: int, database: str, root: Path) -> AppConfig:
    return AppConfig.model_validate(
        {
            "server": {"data_dir": str(root / node_id)},
            "database": {"url": database},
            "cluster": {"enabled": True, "node_id": node_id, "lease_s": 3, "renew_s": 1,
                        "url": f"http://127.0.0.1:{port}", "shared_dir": str(root / "shared")},
            "events": {"diagnosis": {"enabled": False}},
        }
    )  # fmt: skip


@pytest.fixture
def nodes(postgres: PostgresCluster, tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    database = postgres.new_database()
    running = [ServiceProcess(AppConfig()) for _ in range(2)]
    for process, node_id in zip(running, ("north", "south"), strict=True):
        process.config = _config(node_id, process.port, database, tmp_path)
        process.start()
    try:
        membership = running[0].node.membership
        assert membership is not None
        wait_until(lambda: len(membership.live_nodes()) == 2, 30, "both nodes live")
        yield running
    finally:
        for process in running:
            process.stop()


async def test_admin_page_lists_the_nodes(browser: Browser, nodes: list[ServiceProcess]) -> None:
    north, south = nodes
    page = await signed_in_page(browser, north, "root", Role.ADMIN)
    await page.goto(f"{north.url}/admin")
    row = page.locator('#nodes-table tr[data-node="south"]')
    await row.wait_for(timeout=WAIT_MS)
    assert await page.locator("#nodes").is_visible()
    assert await row.locator(".status").inner_text() == "live"
    assert south.url in await row.inner_text()
    own = page.locator('#nodes-table tr[data-node="north"] .name')
    assert await own.inner_text() == "north (this node)"
    assert await page.locator("#nodes-count").inner_text() == "(2 of 2 live)"


async def test_a_single_node_shows_no_nodes_section(browser: Browser, tmp_path: Path) -> None:
    single = ServiceProcess(AppConfig.model_validate({"server": {"data_dir": str(tmp_path)}}))
    single.start()
    try:
        page = await signed_in_page(browser, single, "root", Role.ADMIN)
        await page.goto(f"{single.url}/admin")
        await page.wait_for_selector("body[data-ready=true]", timeout=WAIT_MS)
        assert not await page.locator("#nodes").is_visible()
    finally:
        single.stop()
