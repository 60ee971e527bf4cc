"""What goes wrong between nodes: a camera's lease is gone, a node id is in use elsewhere,
cluster mode on a database that cannot do it."""

from __future__ import annotations

from surveillance.errors import Conflict, SurveillanceError, Unavailable


class LeaseLost(Unavailable):
    """A write for a camera made without (or after losing) that camera's lease: another node
    may hold it now. 503: the camera is moving between nodes, trying again later works."""

    def __init__(self, camera_id: str, why: str) -> None:
        super().__init__(f"lease of camera {camera_id!r} lost: {why}")
        self.camera_id = camera_id
        self.why = why


class NodeIdTaken(Conflict):
    """Another live process runs under this node id (it heartbeats and has not stopped)."""

    def __init__(self, node_id: str, url: str, age_s: float) -> None:
        super().__init__(
            f"node id {node_id!r} is in use by a live node at {url} "
            f"(last heartbeat {age_s:.1f} s ago); give this node another cluster.node_id"
        )
        self.node_id = node_id
        self.url = url
        self.age_s = age_s


class ClusterNeedsPostgres(SurveillanceError):
    """Cluster mode's SQL (row locks, upserts of many rows, the database's clock) is
    PostgreSQL's; the configuration loader refuses anything else, this says so if reached."""

    def __init__(self, dialect: str) -> None:
        super().__init__(f"cluster mode needs PostgreSQL, not {dialect}")
        self.dialect = dialect
