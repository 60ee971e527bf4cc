"""Bodies of the cluster's view: its nodes as `GET /api/cluster/nodes` answers them."""

from __future__ import annotations

from pydantic import Field

from surveillance.api.schemas.base import Out, UtcTime


class NodeOut(Out):
    id: str
    url: str
    capacity: float
    live: bool = Field(description="Not stopped, and heard from within the lease time")
    stopped: bool = Field(description="It said it stopped (a clean stop)")
    age_s: float = Field(description="Seconds since its last heartbeat (database clock)")
    cameras: int = Field(description="Cameras it holds a lease on now")
    load: dict[str, float] = Field(
        description="cameras, viewers, cpu (0-1 of one machine), streams"
    )
    started_at: UtcTime
    this: bool = Field(description="The node that answered")


class NodesOut(Out):
    enabled: bool = Field(description="Cluster mode: false, a single node (no rows)")
    node: str | None = Field(description="This node's id")
    lease_s: float
    nodes: list[NodeOut]


class DatabaseOut(Out):
    database: str | None = Field(
        description='"ok" or "unreachable", by this node\'s last lease statements; null '
        "outside cluster mode"
    )
