"""Timed ``GET /api/cameras/{id}/snapshot.jpg`` requests, classified as cold or warm.

The service keeps a live decoder per camera for ``SNAPSHOT_WARM_S`` after a request. A
*cold* request (no request to that camera for longer than that) decodes the cached GOP
from its keyframe up to the newest packet; a *warm* one (a repeat within the window)
finds the decoder already at the newest picture and costs about one JPEG encode. Their
latencies differ by an order of magnitude, so they are reported apart.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bench.service import Http
from bench.stats import percentile
from surveillance.services.snapshots import SNAPSHOT_WARM_S

# Margin around the warm window: the service's decoder checks every 0.25 s whether it
# should end, and its clock starts when the request reaches it, not when we send it.
WARM_MARGIN_S = 1.0

Kind = Literal["cold", "warm", "unsure", "first", "keyframe"]


@dataclass(frozen=True)
class Shot:
    camera: str
    kind: Kind
    ms: float
    status: int
    nbytes: int


class SnapshotTaker:
    """Sends snapshot requests one at a time and remembers when each camera was last asked."""

    def __init__(self, http: Http) -> None:
        self._http = http
        self._last_live: dict[str, float] = {}  # camera -> monotonic end of last `latest` shot
        self.shots: list[Shot] = []

    def take(self, camera: str, *, keyframe: bool = False, first: bool = False) -> Shot:
        """One request; ``first`` marks the request that connects an on-demand camera."""
        kind: Kind = "keyframe" if keyframe else "first" if first else self._kind(camera)
        path = f"/api/cameras/{camera}/snapshot.jpg" + ("?mode=keyframe" if keyframe else "")
        started = time.perf_counter()
        status, body = self._http.get(path)
        shot = Shot(camera, kind, (time.perf_counter() - started) * 1000, status, len(body))
        if not keyframe:
            # Keyframe snapshots do not start the live decoder, so they do not warm it.
            self._last_live[camera] = time.monotonic()
        self.shots.append(shot)
        return shot

    def _kind(self, camera: str) -> Kind:
        last = self._last_live.get(camera)
        if last is None:
            return "cold"
        idle = time.monotonic() - last
        if idle > SNAPSHOT_WARM_S + WARM_MARGIN_S:
            return "cold"
        if idle < SNAPSHOT_WARM_S - WARM_MARGIN_S:
            return "warm"
        return "unsure"

    def wait_until_cold(self, camera: str) -> None:
        last = self._last_live.get(camera)
        if last is not None:
            time.sleep(max(0.0, last + SNAPSHOT_WARM_S + WARM_MARGIN_S + 0.5 - time.monotonic()))


def sample(ids: Sequence[str], count: int) -> list[str]:
    """``count`` ids spread evenly over the list (so not just the first cameras to connect)."""
    if count >= len(ids):
        return list(ids)
    step = len(ids) / count
    return [ids[int(i * step)] for i in range(count)]


def take_rounds(taker: SnapshotTaker, cameras: Sequence[str], rounds: int, gap_s: float) -> None:
    """Ask each camera in turn, ``rounds`` times: round one is cold, the others warm."""
    for _ in range(rounds):
        for camera in cameras:
            taker.take(camera)
            time.sleep(gap_s)


def summarize(shots: Sequence[Shot], prefix: str) -> dict[str, float | int | None]:
    """p50/p95 of successful shots, overall and per kind, under keys ``<prefix>_...``."""
    ok = [s for s in shots if s.status == 200]
    out: dict[str, float | int | None] = {
        f"{prefix}_requests": len(shots),
        f"{prefix}_failed": len(shots) - len(ok),
    }
    live = ("cold", "warm", "unsure")  # `latest` requests; not the on-demand connect
    groups: dict[str, list[float]] = {"": [s.ms for s in ok if s.kind in live]}
    for kind in ("cold", "warm", "keyframe"):
        groups[f"_{kind}"] = [s.ms for s in ok if s.kind == kind]
    for suffix, values in groups.items():
        if not values:
            continue
        out[f"{prefix}{suffix}_n"] = len(values)
        for q in (50, 95):
            value = percentile(values, q)
            out[f"{prefix}{suffix}_p{q}_ms"] = None if value is None else round(value, 1)
    return out
