"""The SQL of :class:`~.store.ClusterStore`, apart from the code that runs it.

PostgreSQL's dialect throughout (``ON CONFLICT``, ``unnest`` of arrays, row locks with
``SKIP LOCKED``, ``make_interval``): cluster mode runs on PostgreSQL only. Every time is the
database's own ``now()``; what leaves as seconds is an epoch difference computed here.
"""

from __future__ import annotations

from sqlalchemy import TextClause, text

# now() is when the reading transaction began: a heartbeat committed since would read as
# a few milliseconds in the future, hence the floor of 0.
_NODE_COLUMNS = (
    "id, url, capacity, incarnation, "
    "extract(epoch from started_at) AS started_at, "
    "extract(epoch from heartbeat_at) AS heartbeat_at, "
    "extract(epoch from stopped_at) AS stopped_at, "
    "load, greatest(0, extract(epoch from now() - heartbeat_at)) AS age_s"
)
_LEASE_COLUMNS = (
    "camera_id, node_id, generation, extract(epoch from expires_at - now()) AS remaining_s"
)


def _sql(statement: str) -> TextClause:
    """``statement`` with its column lists filled in (module constants, never input)."""
    return text(
        statement.replace("{node_columns}", _NODE_COLUMNS).replace(
            "{lease_columns}", _LEASE_COLUMNS
        )
    )


JOIN = _sql(
    """
    INSERT INTO cluster_nodes AS n
        (id, url, capacity, incarnation, started_at, heartbeat_at, stopped_at, load)
    VALUES (:id, :url, :capacity, :incarnation, now(), now(), NULL, '{}')
    ON CONFLICT (id) DO UPDATE SET
        url = excluded.url, capacity = excluded.capacity, incarnation = excluded.incarnation,
        started_at = CASE WHEN n.incarnation = excluded.incarnation AND n.stopped_at IS NULL
                               AND n.heartbeat_at > now() - make_interval(secs => :lease_s)
                          THEN n.started_at ELSE now() END,
        heartbeat_at = now(), stopped_at = NULL, load = '{}'
    WHERE n.stopped_at IS NOT NULL
        OR n.heartbeat_at <= now() - make_interval(secs => :lease_s)
        OR n.incarnation = excluded.incarnation
    RETURNING {node_columns}
    """
)
# ON CONFLICT DO UPDATE locks the row even when its WHERE refuses the update (PostgreSQL
# docs, INSERT): the holder read next is the one that made the join fail.
NODE = _sql("SELECT {node_columns} FROM cluster_nodes WHERE id = :id")
NODES = _sql("SELECT {node_columns} FROM cluster_nodes ORDER BY id")
HEARTBEAT = _sql(
    """
    UPDATE cluster_nodes SET heartbeat_at = now(), load = :load
    WHERE id = :id AND incarnation = :incarnation AND stopped_at IS NULL
    RETURNING id
    """
)
LEAVE = text(
    "UPDATE cluster_nodes SET stopped_at = now() WHERE id = :id AND incarnation = :incarnation"
)

# A lease is taken when there is none, when it expired (the generation grows: writes under
# the old one are refused from now on), or kept when it is ours and current (same
# generation). Re-claiming our own expired lease grows the generation too: someone else may
# have held it meanwhile. Rows whose WHERE fails (held by another node) are not returned.
# Only rows there is a chance to take are touched: another node's current leases are left
# alone (ON CONFLICT DO UPDATE would lock them even when refusing), and a takeable row
# another transaction has locked (a fenced write of a node stopped mid-transaction, a
# racing claim) is skipped this time rather than waited for, so one stuck row never holds
# up the claim of every other camera.
CLAIM = _sql(
    """
    WITH takeable AS (
        SELECT camera_id FROM camera_leases
        WHERE camera_id = ANY(CAST(:ids AS text[])) AND (expires_at <= now() OR node_id = :me)
        ORDER BY camera_id
        FOR UPDATE SKIP LOCKED
    ), wanted AS (
        SELECT asked.camera_id, asked.position
        FROM unnest(CAST(:ids AS text[])) WITH ORDINALITY AS asked(camera_id, position)
        WHERE asked.camera_id IN (SELECT camera_id FROM takeable)
           OR NOT EXISTS (SELECT FROM camera_leases held WHERE held.camera_id = asked.camera_id)
    )
    INSERT INTO camera_leases AS l (camera_id, node_id, generation, expires_at, acquired_at)
    SELECT wanted.camera_id, :me, 1, now() + make_interval(secs => :lease_s), now()
    FROM wanted ORDER BY wanted.position
    ON CONFLICT (camera_id) DO UPDATE SET
        generation = CASE WHEN l.node_id = :me AND l.expires_at > now()
                          THEN l.generation ELSE l.generation + 1 END,
        acquired_at = CASE WHEN l.node_id = :me AND l.expires_at > now()
                           THEN l.acquired_at ELSE now() END,
        node_id = :me,
        expires_at = now() + make_interval(secs => :lease_s)
    WHERE l.expires_at <= now() OR l.node_id = :me
    RETURNING {lease_columns}
    """
)
# An expired lease is not revived: another node may already have been allowed to take it.
RENEW = _sql(
    """
    UPDATE camera_leases SET expires_at = now() + make_interval(secs => :lease_s)
    WHERE node_id = :me AND expires_at > now()
    RETURNING {lease_columns}
    """
)
RELEASE = _sql(
    """
    UPDATE camera_leases SET expires_at = now() - interval '1 second'
    WHERE node_id = :me AND camera_id = ANY(CAST(:ids AS text[])) AND expires_at > now()
    """
)
LEASES = _sql("SELECT {lease_columns} FROM camera_leases ORDER BY camera_id")
# statement_timestamp(), not now(): the caller's transaction may have begun a while ago.
# FOR SHARE holds off any claim of the row until the caller's transaction ends, so the
# write it guards lands while the lease is still the caller's. And that transaction may
# not idle long while holding it: a node stopped (SIGSTOP, a VM paused) between the check
# and its commit would otherwise keep the camera from every other node for as long as it
# stays stopped; the server ends such a session, rolling the write back.
FENCED_IDLE = text("SELECT set_config('idle_in_transaction_session_timeout', :timeout_ms, true)")
FENCE = _sql(
    """
    SELECT node_id, generation,
           extract(epoch from expires_at - statement_timestamp()) AS remaining_s
    FROM camera_leases WHERE camera_id = :camera_id FOR SHARE
    """
)
# A status published under an older generation than the one stored is a stale owner's.
PUBLISH = _sql(
    """
    INSERT INTO camera_status AS s (camera_id, node_id, generation, status, updated_at)
    SELECT published.camera_id, :me, :generation, published.status, now()
    FROM unnest(CAST(:ids AS text[]), CAST(:statuses AS text[])) AS published(camera_id, status)
    ON CONFLICT (camera_id) DO UPDATE SET
        node_id = excluded.node_id, generation = excluded.generation,
        status = excluded.status, updated_at = now()
    WHERE s.generation <= excluded.generation
    """
)
STATUSES = text("SELECT camera_id, node_id, status FROM camera_status")
NOW = text("SELECT extract(epoch from now())")
# Limits on the store's own transactions (set_config(..., true) is SET LOCAL: this one only).
TIMEOUTS = text(
    "SELECT set_config('lock_timeout', :lock_ms, true),"
    " set_config('statement_timeout', :statement_ms, true)"
)
