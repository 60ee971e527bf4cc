"""Which node should hold a camera: weighted rendezvous hashing (highest random weight).

Each (camera, node) pair gets a pseudo-random ``u`` in (0, 1) from blake2b of the two ids,
and the node's score is ``-capacity / ln(u)``; the camera goes to the highest score. With
that score a node's share of the cameras is its share of the capacity, and a node joining
or leaving moves only the cameras it wins or held (Resch, "New Hashing Algorithms for Data
Storage", logarithmic method; Thaler & Ravishankar, rendezvous hashing). Every process
computes the same answer from the same ids: blake2b, never Python's salted ``hash()``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from hashlib import blake2b

_UNIT_BITS = 53  # a double holds 53-bit integers exactly: u = (k + 0.5) / 2**53 is in (0, 1)


def _unit(camera_id: str, node_id: str) -> float:
    digest = blake2b(f"{camera_id}\0{node_id}".encode(), digest_size=8).digest()
    k = int.from_bytes(digest, "big") >> (64 - _UNIT_BITS)
    return (k + 0.5) / (1 << _UNIT_BITS)


def score(camera_id: str, node_id: str, capacity: float) -> float:
    """The node's weight for the camera: higher wins."""
    return -capacity / math.log(_unit(camera_id, node_id))


def preferred_owner(camera_id: str, nodes: Sequence[tuple[str, float]]) -> str | None:
    """The node id among ``nodes`` ((id, capacity) pairs) that should hold the camera; None
    when there is no node with a positive capacity. Ties (never seen in practice) go to the
    smaller id, so the answer does not depend on the order of ``nodes``."""
    best: tuple[float, str] | None = None
    for node_id, capacity in nodes:
        if not capacity > 0:
            continue
        candidate = (score(camera_id, node_id, capacity), node_id)
        if (
            best is None
            or candidate[0] > best[0]
            or (candidate[0] == best[0] and node_id < best[1])
        ):
            best = candidate
    return None if best is None else best[1]


def assign(camera_ids: Iterable[str], nodes: Sequence[tuple[str, float]]) -> dict[str, str]:
    """camera id -> preferred node id for each camera (empty when there is no node)."""
    owners: dict[str, str] = {}
    for camera_id in camera_ids:
        owner = preferred_owner(camera_id, nodes)
        if owner is not None:
            owners[camera_id] = owner
    return owners
