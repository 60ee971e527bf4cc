"""The cluster's nodes for administrators (the admin page's Nodes section)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Request

from surveillance.api.deps import node_of
from surveillance.api.guards import public, requires
from surveillance.api.schemas.cluster import DatabaseOut, NodeOut, NodesOut
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.services.cluster_nodes import node_views
from surveillance.services.outage_evidence import REACHABLE, UNREACHABLE

router = APIRouter(prefix="/api/cluster", tags=["cluster"])

Reader = Annotated[Principal, requires(Permission.SYSTEM_READ)]


@router.get("/nodes", response_model=NodesOut, summary="The nodes sharing this database")
async def nodes(request: Request, principal: Reader) -> NodesOut:
    """Every node of the cluster table, live or not, with the cameras it holds and the
    load it reported; read from the database at each request (any node answers alike)."""
    node = node_of(request)
    cluster = node.config.cluster
    store = node.cluster_store  # None: cluster mode is off
    if store is None:
        return NodesOut(enabled=False, node=None, lease_s=cluster.lease_s, nodes=[])
    rows, leases = await asyncio.gather(
        asyncio.to_thread(store.nodes), asyncio.to_thread(store.leases)
    )
    views = node_views(rows, leases, cluster.lease_s, cluster.node_id)
    return NodesOut(
        enabled=True,
        node=cluster.node_id,
        lease_s=cluster.lease_s,
        nodes=[NodeOut.model_validate(view) for view in views],
    )


@router.get(
    "/database",
    response_model=DatabaseOut,
    summary="Whether this node reaches the database",
    dependencies=[public()],
)
def database(request: Request) -> DatabaseOut:
    """Public (a boolean, no names): asked by the other nodes during a database outage
    (services/outage_evidence.py). "unreachable" also promises that this node claims no
    camera another node held for a lease after it reaches the database again."""
    return DatabaseOut(database=database_state(request))


def database_state(request: Request) -> str | None:
    """ "ok" or "unreachable" by this node's own lease statements; None: not a cluster."""
    ownership = node_of(request).ownership
    if ownership is None:
        return None
    return REACHABLE if ownership.database_reachable() else UNREACHABLE
