"""A camera that changed hands shows its new owner's word as soon as this node reads the new
lease, even when that word came first (a failover: the new owner publishes the moment the
camera is online; this node may read the lease a renewal later). Before, the word waited
for the owner's next republication, up to 30 s, and the wall's tile with it.

The ingest is real; the notifier and the status table are small stand-ins (the logic under
test is what RemoteHealth does with a notice and an owner that changes; tests/cluster runs
it over a real PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from surveillance.media.health import StreamState
from surveillance.services.health_wire import to_wire
from surveillance.services.remote_health import WATCH_EVERY_S, RemoteHealth
from tests.services.test_ingest_ownership import service
from tests.waits import eventually


class Notices:
    """Stands in for the Notifier: what RemoteHealth registers, called by the test."""

    node_id = "a"

    def __init__(self) -> None:
        self.handlers: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.resyncs: list[Callable[[], None]] = []

    def on(self, channel: str, handler: Callable[[dict[str, Any]], None]) -> None:
        self.handlers[channel] = handler

    def on_resync(self, callback: Callable[[], None]) -> None:
        self.resyncs.append(callback)


class NoTable:
    def statuses(self) -> dict[str, tuple[str, str]]:
        return {}


async def test_the_new_owners_word_shows_once_this_node_reads_the_lease() -> None:
    ingest = service()
    owner = {"theirs": "c"}  # this node's last read of the leases: the dead node
    notices = Notices()
    remote = RemoteHealth(NoTable(), notices, ingest, owner.get)  # type: ignore[arg-type]
    ingest.set_ownership(lambda camera_id: camera_id == "mine", remote.health, owner.get)
    told: list[str] = []
    ingest.add_health_listener(told.append)
    await ingest.start()
    try:
        for resync in notices.resyncs:
            resync()  # the notifier's first connection
        online = ingest.stream("mine").health_snapshot()
        online = type(online)(**{**online.__dict__, "state": StreamState.ONLINE})
        status = {"main": to_wire(online), "sub": None, "at": time.time()}
        [handler] = notices.handlers.values()
        handler({"node": "b", "statuses": {"theirs": status}})  # the new owner's first word
        assert ingest.camera_health("theirs").state is StreamState.OFFLINE  # not b's yet
        await asyncio.sleep(3 * WATCH_EVERY_S)  # the watch has seen "c" as the owner
        told.clear()
        owner["theirs"] = "b"  # this node reads the new lease
        await eventually(lambda: "theirs" in told, "the followers told", 5)
        assert ingest.camera_health("theirs").state is StreamState.ONLINE
    finally:
        await remote.stop()
        await ingest.stop()
