"""A hand-off must not cost the node its other leases, and never puts two nodes on the
camera handed off.

Renewals that waited behind a hand-off whose reader took seconds to end let the node's
other leases pass their local deadlines: their cameras went dark ("lease lost") although
nothing moved them. Renewal now runs in a loop of its own, and a stopped reader closes its
connection at once in every phase (media/worker.py), so the camera handed off here is a
really silent one (the "stall" fault) whose reader must still end before the lease moves.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from surveillance.cluster.rendezvous import assign
from surveillance.config.models import AppConfig
from surveillance.media.health import StreamState
from surveillance.simulator import Simulator
from tests.cluster.test_ownership import LEASE_S, RENEW_S, Peer, database, start_peer, until

__all__ = ["database"]  # the fixture, shared with the ownership tests

pytestmark = [pytest.mark.rtsp, pytest.mark.postgresql]

SLOW = "stall"  # the fleet's mount that can be stalled
OTHERS = [f"cam{i:02d}" for i in range(6)]
READ_TIMEOUT_S = 12.0  # how long the stalled reader may stay blocked after its stop
WITHIN_S = 60.0  # generous: a loaded CI machine


def config(simulator: Simulator, url: str, shared: Path) -> AppConfig:
    cameras = [SLOW, *OTHERS]
    return AppConfig.model_validate(
        {
            "database": {"url": url},
            "cluster": {
                "enabled": True, "node_id": "a", "url": "http://127.0.0.1:9",
                "lease_s": LEASE_S, "renew_s": RENEW_S, "shared_dir": str(shared),
            },
            "ingest": {
                "backoff_initial_s": 0.2, "backoff_max_s": 1, "ring_seconds": 2,
                "read_timeout_s": READ_TIMEOUT_S, "stall_after_s": 1.5,
            },
            "platforms": [{"id": "town", "name": "Town"}],
            "cameras": [
                {"id": c, "name": c, "platform": "town", "url": simulator.url(c)}
                for c in cameras
            ],
        }
    )  # fmt: skip


def newcomer_for(camera: str, cameras: list[str]) -> str:
    """A node id that rendezvous hashing, beside "a", gives ``camera`` to."""
    for candidate in ("b", "c", "d", "e", "f", "g", "h"):
        if assign(cameras, [("a", 1.0), (candidate, 1.0)])[camera] == candidate:
            return candidate
    raise AssertionError(f"no newcomer takes {camera}")


async def test_a_slow_hand_off_keeps_the_other_leases(
    simulator: Simulator, database: str, tmp_path: Path
) -> None:
    cfg = config(simulator, database, tmp_path)
    cameras = [SLOW, *OTHERS]
    newcomer = newcomer_for(SLOW, cameras)
    keep = {c for c, n in assign(cameras, [("a", 1.0), (newcomer, 1.0)]).items() if n == "a"}
    assert keep, "a keeps some cameras beside the one it hands off"
    peers: list[Peer] = []
    try:
        a = await start_peer(cfg, database, "a")
        peers.append(a)
        await until(lambda: a.ownership.held() == set(cameras), WITHIN_S, "a holds everything")
        slow = a.ingest.stream(SLOW)
        await until(lambda: slow.health.state is StreamState.ONLINE, WITHIN_S, "stall online")
        simulator.fault(SLOW, "stall")  # its reader now blocks in a read that never ends
        b = await start_peer(cfg, database, newcomer)
        peers.append(b)
        dropped: set[str] = set()  # a's own cameras it stopped holding meanwhile
        ending_s = 0.0  # how long a's reader of SLOW outlived the hand-off
        let_go_at: float | None = None
        doubles = 0
        deadline = time.monotonic() + WITHIN_S + READ_TIMEOUT_S
        while SLOW not in b.ownership.held():
            assert time.monotonic() < deadline, f"{SLOW} never reached {newcomer}"
            dropped |= keep - a.ownership.held()
            if let_go_at is None and not a.ownership.holds(SLOW):
                let_go_at = time.monotonic()
            if let_go_at is not None and SLOW in a.running():
                ending_s = time.monotonic() - let_go_at
            doubles += SLOW in a.running() and SLOW in b.running()
            await asyncio.sleep(0.05)
        # The old reader ended (within a lease: stops close connections at once) before
        # the new holder took the camera.
        assert ending_s < LEASE_S, f"the reader ended {ending_s:.1f} s after its stop"
        assert not dropped, f"a lost {sorted(dropped)} while handing {SLOW} off"
        assert a.ownership.held() == keep
        assert doubles == 0 and SLOW not in a.running()
        simulator.fault(SLOW, "resume")
        moved = b.ingest.stream(SLOW)
        await until(lambda: moved.health.state is StreamState.ONLINE, WITHIN_S, "online on b")
        assert {c for c in keep if a.ingest.stream(c).health.state is StreamState.ONLINE} == keep
    finally:
        simulator.fault(SLOW, "resume")
        for peer in reversed(peers):
            await peer.stop()
