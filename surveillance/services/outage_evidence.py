"""During a database outage: whether every other live node says it cannot reach the
database either (then nobody can claim a camera, and a node may go on reading its own).

A node whose lease renewals fail stops WRITING for its cameras at its local lease
deadline, whatever it learns here. It may go on READING them (live video) only while
every peer it knew of (live at its last read of ``cluster_nodes``) answers, within
``ASK_TIMEOUT_S``, ``GET /api/cluster/database`` with ``{"database": "unreachable"}``. A
peer that says "ok", answers anything else, or cannot be asked means this node may be the
one cut off (a partition): it stops reading at once. A peer that says "unreachable" waits a
whole lease after it reaches the database again before it claims any camera another node
held (services/camera_ownership.py), so its answer holds for longer than the next ask.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx

DATABASE_PATH = "/api/cluster/database"
ASK_TIMEOUT_S = 1.5  # one peer's answer; the whole ask takes no longer (they run at once)
UNREACHABLE = "unreachable"
REACHABLE = "ok"


async def nobody_can_claim(urls: Sequence[str]) -> bool:
    """True when every node at ``urls`` says it cannot reach the database (no URL: True)."""
    if not urls:
        return True
    timeout = httpx.Timeout(ASK_TIMEOUT_S)
    # verify=True: a node's https cluster.url is checked like any forwarded request's.
    async with httpx.AsyncClient(timeout=timeout, verify=True, follow_redirects=False) as client:
        answers = await asyncio.gather(*(_unreachable(client, url) for url in urls))
    return all(answers)


async def _unreachable(client: httpx.AsyncClient, url: str) -> bool:
    try:
        async with asyncio.timeout(ASK_TIMEOUT_S):
            answer = await client.get(url.rstrip("/") + DATABASE_PATH)
        body = answer.json() if answer.status_code == 200 else None
    except (httpx.HTTPError, TimeoutError, ValueError):
        return False  # cannot be asked: it may be the one that reaches the database
    return isinstance(body, dict) and body.get("database") == UNREACHABLE
