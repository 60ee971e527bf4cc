"""ClusterStore: the only code that reads and writes the cluster tables.

Every time here is the database's: ``now()`` in the statement, and ages or remaining times
computed by the same statement as epoch differences. A node never sends its own clock, so
nodes whose clocks disagree (or jump) still agree on who holds what. Each method is one
short transaction (``now()`` is its start); callers on the event loop use
``asyncio.to_thread``.

The SQL is PostgreSQL's (``INSERT ... ON CONFLICT`` over ``unnest`` of an array, so one
statement claims thousands of cameras; row locks for fencing): cluster mode runs only on
PostgreSQL, and the store refuses another engine at construction.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Row, TextClause, text
from sqlalchemy.exc import DBAPIError

from surveillance.cluster.errors import ClusterNeedsPostgres, LeaseLost, NodeIdTaken
from surveillance.cluster.records import Lease, LeaseToken, NodeRecord

T = TypeVar("T")

# Two nodes claiming overlapping cameras lock rows in the same (sorted) order, but a
# deadlock or a unique race between concurrent inserts can still roll one back; nothing was
# written then, so the statement is simply run again (PostgreSQL docs, Appendix A: 40P01
# deadlock_detected, 40001 serialization_failure, 23505 unique_violation).
RETRIED_SQLSTATES = frozenset({"40P01", "40001", "23505"})
ATTEMPTS = 3

_NODE_COLUMNS = (
    "id, url, capacity, incarnation, "
    "extract(epoch from started_at) AS started_at, "
    "extract(epoch from heartbeat_at) AS heartbeat_at, "
    "extract(epoch from stopped_at) AS stopped_at, "
    "load, extract(epoch from now() - heartbeat_at) AS age_s"
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


_JOIN = _sql(
    """
    INSERT INTO cluster_nodes AS n
        (id, url, capacity, incarnation, started_at, heartbeat_at, stopped_at, load)
    VALUES (:id, :url, :capacity, :incarnation, now(), now(), NULL, '{}')
    ON CONFLICT (id) DO UPDATE SET
        url = excluded.url, capacity = excluded.capacity, incarnation = excluded.incarnation,
        started_at = now(), heartbeat_at = now(), stopped_at = NULL, load = '{}'
    WHERE n.stopped_at IS NOT NULL
        OR n.heartbeat_at <= now() - make_interval(secs => :lease_s)
        OR n.incarnation = excluded.incarnation
    RETURNING {node_columns}
    """
)
# ON CONFLICT DO UPDATE locks the row even when its WHERE refuses the update (PostgreSQL
# docs, INSERT): the holder read next is the one that made the join fail.
_NODE = _sql("SELECT {node_columns} FROM cluster_nodes WHERE id = :id")
_NODES = _sql("SELECT {node_columns} FROM cluster_nodes ORDER BY id")
_HEARTBEAT = _sql(
    """
    UPDATE cluster_nodes SET heartbeat_at = now(), load = :load
    WHERE id = :id AND incarnation = :incarnation AND stopped_at IS NULL
    RETURNING id
    """
)
_LEAVE = text(
    "UPDATE cluster_nodes SET stopped_at = now() WHERE id = :id AND incarnation = :incarnation"
)

# A lease is taken when there is none, when it expired (the generation grows: writes under
# the old one are refused from now on), or kept when it is ours and current (same
# generation). Re-claiming our own expired lease grows the generation too: someone else may
# have held it meanwhile. Rows whose WHERE fails (held by another node) are not returned.
_CLAIM = _sql(
    """
    INSERT INTO camera_leases AS l (camera_id, node_id, generation, expires_at, acquired_at)
    SELECT wanted.camera_id, :me, 1, now() + make_interval(secs => :lease_s), now()
    FROM unnest(CAST(:ids AS text[])) WITH ORDINALITY AS wanted(camera_id, position)
    ORDER BY wanted.position
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
_RENEW = _sql(
    """
    UPDATE camera_leases SET expires_at = now() + make_interval(secs => :lease_s)
    WHERE node_id = :me AND expires_at > now()
    RETURNING {lease_columns}
    """
)
_RELEASE = _sql(
    """
    UPDATE camera_leases SET expires_at = now() - interval '1 second'
    WHERE node_id = :me AND camera_id = ANY(CAST(:ids AS text[])) AND expires_at > now()
    """
)
_LEASES = _sql("SELECT {lease_columns} FROM camera_leases ORDER BY camera_id")
# statement_timestamp(), not now(): the caller's transaction may have begun a while ago.
# FOR SHARE holds off any claim of the row until the caller's transaction ends, so the
# write it guards lands while the lease is still the caller's.
_FENCE = _sql(
    """
    SELECT node_id, generation,
           extract(epoch from expires_at - statement_timestamp()) AS remaining_s
    FROM camera_leases WHERE camera_id = :camera_id FOR SHARE
    """
)
# A status published under an older generation than the one stored is a stale owner's.
_PUBLISH = _sql(
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
_STATUSES = text("SELECT camera_id, node_id, status FROM camera_status")
_NOW = text("SELECT extract(epoch from now())")


class ClusterStore:
    """Nodes, camera leases and camera status in the shared PostgreSQL database."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name != "postgresql":
            raise ClusterNeedsPostgres(engine.dialect.name)
        self._engine = engine

    # -- nodes ------------------------------------------------------------------------

    def join(
        self, node_id: str, url: str, capacity: float, incarnation: str, lease_s: float
    ) -> NodeRecord:
        """This process's row for ``node_id``: inserted, or taken over from a process that
        stopped or has been silent ``lease_s``. NodeIdTaken if another one is live."""
        params = {
            "id": node_id,
            "url": url,
            "capacity": capacity,
            "incarnation": incarnation,
            "lease_s": _positive(lease_s),
        }
        with self._engine.begin() as connection:
            joined = connection.execute(_JOIN, params).one_or_none()
            if joined is not None:
                return _node(joined)
            holder = _node(connection.execute(_NODE, {"id": node_id}).one())
        raise NodeIdTaken(node_id, holder.url, holder.age_s)

    def heartbeat(self, node_id: str, incarnation: str, load: Mapping[str, float]) -> bool:
        """Moves our heartbeat; False when the row is no longer ours (another process took
        the id after our silence, or we left)."""
        params = {"id": node_id, "incarnation": incarnation, "load": _load_json(load)}
        return self._write(lambda c: c.execute(_HEARTBEAT, params).first() is not None)

    def leave(self, node_id: str, incarnation: str) -> None:
        """A clean stop: the row says so at once (others need not wait for its age)."""
        self._write(lambda c: c.execute(_LEAVE, {"id": node_id, "incarnation": incarnation}))

    def nodes(self) -> list[NodeRecord]:
        with self._engine.connect() as connection:
            return [_node(row) for row in connection.execute(_NODES)]

    # -- leases -----------------------------------------------------------------------

    def claim(self, node_id: str, camera_ids: Iterable[str], lease_s: float) -> list[Lease]:
        """The leases we hold among ``camera_ids`` after taking every one that is free,
        expired or already ours, in one statement however many cameras."""
        ids = sorted(set(camera_ids))  # one row once; the same lock order on every node
        if not ids:
            return []
        params = {"me": node_id, "ids": ids, "lease_s": _positive(lease_s)}
        rows = self._write(lambda c: c.execute(_CLAIM, params).all())
        return sorted((_lease(row) for row in rows), key=lambda lease: lease.camera_id)

    def renew(self, node_id: str, lease_s: float) -> list[Lease]:
        """Extends every current lease of ours by ``lease_s`` from now; the ones held."""
        params = {"me": node_id, "lease_s": _positive(lease_s)}
        rows = self._write(lambda c: c.execute(_RENEW, params).all())
        return sorted((_lease(row) for row in rows), key=lambda lease: lease.camera_id)

    def release(self, node_id: str, camera_ids: Iterable[str]) -> None:
        """Ends our leases of ``camera_ids`` now: another node may claim them at once."""
        ids = sorted(set(camera_ids))
        if ids:
            self._write(lambda c: c.execute(_RELEASE, {"me": node_id, "ids": ids}))

    def leases(self) -> list[Lease]:
        """Every lease row, expired ones included (``remaining_s`` <= 0)."""
        with self._engine.connect() as connection:
            return [_lease(row) for row in connection.execute(_LEASES)]

    def check_fence(self, connection: Connection, camera_id: str, token: LeaseToken) -> None:
        """Inside the caller's transaction: LeaseLost unless ``token`` is the camera's
        current, unexpired lease. The row stays share-locked until that transaction ends."""
        row = connection.execute(_FENCE, {"camera_id": camera_id}).one_or_none()
        if row is None:
            raise LeaseLost(camera_id, "no node holds a lease on it")
        if row.node_id != token.node_id:
            raise LeaseLost(camera_id, f"node {row.node_id!r} holds it now")
        if row.generation != token.generation:
            raise LeaseLost(
                camera_id, f"lease taken anew (generation {row.generation}, "
                f"this write carries {token.generation})",
            )  # fmt: skip
        if float(row.remaining_s) <= 0:
            raise LeaseLost(camera_id, f"lease expired {-float(row.remaining_s):.1f} s ago")

    # -- camera status ----------------------------------------------------------------

    def publish_status(self, node_id: str, generation: int, statuses: Mapping[str, str]) -> None:
        """Upserts each camera's status (a JSON string) as published by its owner."""
        if not statuses:
            return
        ids = sorted(statuses)
        params = {
            "me": node_id,
            "generation": generation,
            "ids": ids,
            "statuses": [statuses[camera_id] for camera_id in ids],
        }
        self._write(lambda c: c.execute(_PUBLISH, params))

    def statuses(self) -> dict[str, tuple[str, str]]:
        """camera id -> (node id of the publisher, status JSON)."""
        with self._engine.connect() as connection:
            return {
                row.camera_id: (row.node_id, row.status) for row in connection.execute(_STATUSES)
            }

    def db_now(self) -> float:
        """The database's clock, epoch seconds."""
        with self._engine.connect() as connection:
            return float(connection.execute(_NOW).scalar_one())

    def _write(self, work: Callable[[Connection], T]) -> T:
        """``work`` in a transaction of its own, run again after a deadlock or a lost race
        (see RETRIED_SQLSTATES)."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self._engine.begin() as connection:
                    return work(connection)
            except DBAPIError as exc:
                if attempt == ATTEMPTS or _sqlstate(exc) not in RETRIED_SQLSTATES:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


def _sqlstate(exc: DBAPIError) -> str | None:
    state = getattr(exc.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def _positive(seconds: float) -> float:
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a lease lasts a positive number of seconds, not {seconds!r}")
    return float(seconds)


def _load_json(load: Mapping[str, float]) -> str:
    return json.dumps({str(key): float(value) for key, value in load.items()}, sort_keys=True)


def _load(raw: str) -> dict[str, float]:
    """The load a node sent; what is not a JSON object of numbers is left out."""
    try:
        parsed: Any = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {
        str(key): float(value)
        for key, value in parsed.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def _node(row: Row[Any]) -> NodeRecord:
    return NodeRecord(
        id=row.id,
        url=row.url,
        capacity=float(row.capacity),
        incarnation=row.incarnation,
        started_at=float(row.started_at),
        heartbeat_at=float(row.heartbeat_at),
        stopped_at=None if row.stopped_at is None else float(row.stopped_at),
        load=_load(row.load),
        age_s=float(row.age_s),
    )


def _lease(row: Row[Any]) -> Lease:
    return Lease(
        camera_id=row.camera_id,
        node_id=row.node_id,
        generation=int(row.generation),
        remaining_s=float(row.remaining_s),
    )
