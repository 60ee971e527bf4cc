"""The health events fan-out (services/health_events.py): changes made on other threads
reach followers on the loop, a burst is coalesced to at most one publication per camera
per interval, the last state is never lost, and each user's followers are capped.

A real IngestService over a catalog of two cameras, not started: the changes are made the
way its worker threads make them (health.set_state / set_error from a thread).
"""

from __future__ import annotations

import asyncio
import itertools
import threading

import pytest

from surveillance.catalog import Catalog
from surveillance.config.models import AppConfig
from surveillance.media.health import ErrorKind, StreamState
from surveillance.services.feeds import TooManyEventStreams
from surveillance.services.health_events import HealthEvents
from surveillance.services.ingest import IngestService

INTERVAL_S = 0.25


def ingest() -> IngestService:
    config = AppConfig.model_validate(
        {
            "platforms": [{"id": "p", "name": "P"}],
            "cameras": [
                {
                    "id": "a",
                    "name": "A",
                    "platform": "p",
                    "url": "rtsp://127.0.0.1:1/a",
                    "sub_url": "rtsp://127.0.0.1:1/a-sub",
                },
                {"id": "b", "name": "B", "platform": "p", "url": "rtsp://127.0.0.1:1/b"},
            ],
        }
    )
    return IngestService(Catalog.from_config(config), config.ingest, lambda text: text)


def burst(service: IngestService, camera: str, sub: bool, count: int) -> threading.Thread:
    """``count`` changes from another thread as fast as it can, ending offline."""
    health = service.stream(camera, sub).health

    def run() -> None:
        for i in range(count):
            health.set_state(StreamState.ONLINE if i % 2 else StreamState.STALLED)
        health.set_error(ErrorKind.REFUSED, "connection refused", StreamState.OFFLINE)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


async def test_a_burst_is_coalesced_and_ends_with_the_last_state() -> None:
    service = ingest()
    events = HealthEvents(service, per_user=4, min_interval_s=INTERVAL_S)
    await events.start()
    follower = events.subscribe(user_id=1)
    loop = asyncio.get_running_loop()
    burst(service, "a", True, 200).join()  # the sub-stream's changes are the camera's too
    published: list[tuple[float, set[str]]] = []
    deadline = loop.time() + 1.5
    while loop.time() < deadline:
        changed = await follower.changes(deadline - loop.time())
        if changed:
            published.append((loop.time(), changed))
    assert published and all(changed == {"a"} for _, changed in published)
    assert 1 <= len(published) <= 3, published  # 201 changes, a few events
    times = [at for at, _ in published]
    assert all(b - a >= INTERVAL_S * 0.9 for a, b in itertools.pairwise(times))
    # Read at the last publication, the camera's health is its last state.
    assert service.stream("a", True).health.state is StreamState.OFFLINE
    events.stop()


async def test_every_follower_hears_every_camera_that_changed() -> None:
    service = ingest()
    events = HealthEvents(service, per_user=4, min_interval_s=INTERVAL_S)
    await events.start()
    first, second = events.subscribe(1), events.subscribe(2)
    burst(service, "a", False, 1).join()
    burst(service, "b", False, 1).join()
    seen: dict[int, set[str]] = {1: set(), 2: set()}
    for _ in range(20):
        seen[1] |= await first.changes(0.05)
        seen[2] |= await second.changes(0.05)
        if seen[1] == seen[2] == {"a", "b"}:
            break
    assert seen == {1: {"a", "b"}, 2: {"a", "b"}}
    events.stop()


async def test_followers_are_capped_per_user() -> None:
    events = HealthEvents(ingest(), per_user=2)
    await events.start()
    mine = [events.subscribe(7), events.subscribe(7)]
    with pytest.raises(TooManyEventStreams):
        events.subscribe(7)
    events.subscribe(8)  # another user's place
    events.unsubscribe(mine[0])
    events.subscribe(7)
    assert len(events) == 3
