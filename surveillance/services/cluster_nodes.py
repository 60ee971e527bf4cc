"""The nodes of a cluster as people read them: `GET /api/cluster/nodes`, the admin page's
Nodes section and ``surveillance nodes --config FILE`` show the same rows, made here from
the cluster table and the leases (``ClusterStore.nodes()`` and ``leases()``)."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from surveillance.cluster.records import Lease, NodeRecord
from surveillance.config.models import AppConfig


@dataclass(frozen=True)
class NodeView:
    id: str
    url: str
    capacity: float
    live: bool
    stopped: bool
    age_s: float  # since its last heartbeat, by the database's clock
    cameras: int  # leases it holds now (not expired)
    load: dict[str, float]
    started_at: float
    this: bool  # the node that answers


def node_views(
    nodes: Sequence[NodeRecord], leases: Sequence[Lease], lease_s: float, this_node: str | None
) -> list[NodeView]:
    held = Counter(lease.node_id for lease in leases if lease.remaining_s > 0)
    return [
        NodeView(
            id=node.id,
            url=node.url,
            capacity=node.capacity,
            live=node.live(lease_s),
            stopped=node.stopped_at is not None,
            age_s=max(0.0, node.age_s),
            cameras=held.get(node.id, 0),
            load=dict(node.load),
            started_at=node.started_at,
            this=node.id == this_node,
        )
        for node in sorted(nodes, key=lambda n: n.id)
    ]


def _state(view: NodeView) -> str:
    if view.live:
        return "live"
    return "stopped" if view.stopped else "silent"


def table(views: Sequence[NodeView]) -> str:
    """The rows as text, one node a line, for a terminal."""
    if not views:
        return "no nodes in the cluster table (no node has run on this database)"
    header = ("node", "state", "heartbeat", "cameras", "capacity", "cpu", "viewers", "url")
    rows = [header]
    for v in views:
        cpu = v.load.get("cpu")
        rows.append(
            (
                v.id,
                _state(v),
                f"{v.age_s:.1f} s ago",
                str(v.cameras),
                f"{v.capacity:g}",
                "-" if cpu is None else f"{cpu * 100:.0f}%",
                str(int(v.load.get("viewers", 0))),
                v.url,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def nodes_command(config: AppConfig) -> int:
    """``surveillance nodes``: the table from the database; 1 when it cannot be read (the
    reason printed, never the database password: the URL is not printed at all)."""
    from surveillance.cluster.store import ClusterStore
    from surveillance.db import create_db_engine, database_secrets, database_url
    from surveillance.redact import Redactor

    if not config.cluster.enabled:
        print("cluster mode is off (cluster.enabled): this node is the only one")
        return 0
    engine = create_db_engine(database_url(config))
    try:
        store = ClusterStore(engine)
        nodes, leases = store.nodes(), store.leases()
    except SQLAlchemyError as exc:
        # The driver's own message (host, port, why), its first line only (SQLAlchemy adds
        # the statement and a link), through the redactor in case it quotes the password.
        redact = Redactor(database_secrets(config))
        lines = str(getattr(exc, "orig", None) or type(exc).__name__).strip().splitlines()
        reason = redact(lines[0]) if lines else type(exc).__name__
        print(f"FAILED: the database cannot be read: {reason}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    views = node_views(nodes, leases, config.cluster.lease_s, None)
    print(table(views))
    started = [v for v in views if v.live]
    print(f"{len(started)} of {len(views)} nodes live; lease {config.cluster.lease_s:g} s")
    return 0
