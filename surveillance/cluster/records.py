"""What the cluster store hands out: plain records of nodes and leases, times as seconds.

Ages and remaining times are computed by the database in the statement that read them
(its clock, never this process's), so two nodes whose clocks disagree still agree on them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NodeRecord:
    id: str
    url: str
    capacity: float
    incarnation: str  # uuid4 hex of the process that holds the row
    started_at: float  # epoch seconds, database clock
    heartbeat_at: float
    stopped_at: float | None  # set by a clean stop
    load: dict[str, float]  # {"cameras", "viewers", "cpu", "streams"}, as the node last sent
    age_s: float  # database now - heartbeat_at, as of the read

    def live(self, lease_s: float) -> bool:
        """Not stopped and heard from within ``lease_s``: it may still hold leases."""
        return self.stopped_at is None and self.age_s < lease_s


@dataclass(frozen=True)
class Lease:
    camera_id: str
    node_id: str
    generation: int
    remaining_s: float  # expires_at - database now, as of the read; <= 0: expired


@dataclass(frozen=True)
class LeaseToken:
    """The fencing token a camera's owner writes under: refused once the lease moved on."""

    node_id: str
    generation: int
