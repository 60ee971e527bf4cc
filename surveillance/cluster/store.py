"""ClusterStore: the only code that reads and writes the cluster tables.

Every time here is the database's: ``now()`` in the statement, and ages or remaining times
computed by the same statement as epoch differences. A node never sends its own clock, so
nodes whose clocks disagree (or jump) still agree on who holds what. Each method is one
short transaction (``now()`` is its start); callers on the event loop use
``asyncio.to_thread``.

The SQL (:mod:`.statements`) is PostgreSQL's: ``INSERT ... ON CONFLICT`` over ``unnest``
of an array, so one statement claims thousands of cameras; row locks for fencing. Cluster
mode runs only on PostgreSQL, and the store refuses another engine at construction.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Row
from sqlalchemy.exc import DBAPIError

from surveillance.cluster import statements as sql
from surveillance.cluster.errors import ClusterNeedsPostgres, LeaseLost, NodeIdTaken
from surveillance.cluster.records import Lease, LeaseToken, NodeRecord

T = TypeVar("T")

# Two nodes claiming overlapping cameras lock rows in the same (sorted) order, but a
# deadlock or a unique race between concurrent inserts can still roll one back; nothing was
# written then, so the statement is simply run again (PostgreSQL docs, Appendix A: 40P01
# deadlock_detected, 40001 serialization_failure, 23505 unique_violation).
RETRIED_SQLSTATES = frozenset({"40P01", "40001", "23505"})
ATTEMPTS = 3

# The store's own transactions wait this long at most for a row lock or a statement: an
# error the caller's lease loop handles (keeps what it holds till its local deadline) is
# better than a loop stuck behind a lock (PostgreSQL docs, 20.11 Client Connection
# Defaults: lock_timeout, statement_timeout, idle_in_transaction_session_timeout).
LOCK_TIMEOUT_S = 2.0
STATEMENT_TIMEOUT_S = 10.0
FENCED_IDLE_TIMEOUT_S = 10.0  # a fenced transaction idle longer is ended (statements.FENCE)


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

        def join(connection: Connection) -> tuple[bool, NodeRecord]:
            joined = connection.execute(sql.JOIN, params).one_or_none()
            if joined is not None:
                return True, _node(joined)
            return False, _node(connection.execute(sql.NODE, {"id": node_id}).one())

        ours, record = self._write(join)
        if not ours:
            raise NodeIdTaken(node_id, record.url, record.age_s)
        return record

    def heartbeat(self, node_id: str, incarnation: str, load: Mapping[str, float]) -> bool:
        """Moves our heartbeat; False when the row is no longer ours (another process took
        the id after our silence, or we left)."""
        params = {"id": node_id, "incarnation": incarnation, "load": _load_json(load)}
        return self._write(lambda c: c.execute(sql.HEARTBEAT, params).first() is not None)

    def leave(self, node_id: str, incarnation: str) -> None:
        """A clean stop: the row says so at once (others need not wait for its age)."""
        self._write(lambda c: c.execute(sql.LEAVE, {"id": node_id, "incarnation": incarnation}))

    def nodes(self) -> list[NodeRecord]:
        with self._engine.connect() as connection:
            return [_node(row) for row in connection.execute(sql.NODES)]

    # -- leases -----------------------------------------------------------------------

    def claim(self, node_id: str, camera_ids: Iterable[str], lease_s: float) -> list[Lease]:
        """The leases we hold among ``camera_ids`` after taking every one that is free,
        expired or already ours, in one statement however many cameras. A row another
        transaction has locked just now (a fenced write in flight) is left for next time."""
        ids = sorted(set(camera_ids))  # one row once; the same lock order on every node
        if not ids:
            return []
        params = {"me": node_id, "ids": ids, "lease_s": _positive(lease_s)}
        rows = self._write(lambda c: c.execute(sql.CLAIM, params).all())
        return sorted((_lease(row) for row in rows), key=lambda lease: lease.camera_id)

    def renew(self, node_id: str, lease_s: float) -> list[Lease]:
        """Extends every current lease of ours by ``lease_s`` from now; the ones held."""
        params = {"me": node_id, "lease_s": _positive(lease_s)}
        rows = self._write(lambda c: c.execute(sql.RENEW, params).all())
        return sorted((_lease(row) for row in rows), key=lambda lease: lease.camera_id)

    def release(self, node_id: str, camera_ids: Iterable[str]) -> None:
        """Ends our leases of ``camera_ids`` now: another node may claim them at once."""
        ids = sorted(set(camera_ids))
        if ids:
            self._write(lambda c: c.execute(sql.RELEASE, {"me": node_id, "ids": ids}))

    def leases(self) -> list[Lease]:
        """Every lease row, expired ones included (``remaining_s`` <= 0)."""
        with self._engine.connect() as connection:
            return [_lease(row) for row in connection.execute(sql.LEASES)]

    def check_fence(self, connection: Connection, camera_id: str, token: LeaseToken) -> None:
        """Inside the caller's transaction: LeaseLost unless ``token`` is the camera's
        current, unexpired lease. The row stays share-locked until that transaction ends."""
        connection.execute(sql.FENCED_IDLE, {"timeout_ms": _ms(FENCED_IDLE_TIMEOUT_S)})
        row = connection.execute(sql.FENCE, {"camera_id": camera_id}).one_or_none()
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
        self._write(lambda c: c.execute(sql.PUBLISH, params))

    def statuses(self) -> dict[str, tuple[str, str]]:
        """camera id -> (node id of the publisher, status JSON)."""
        with self._engine.connect() as connection:
            return {
                row.camera_id: (row.node_id, row.status) for row in connection.execute(sql.STATUSES)
            }

    def db_now(self) -> float:
        """The database's clock, epoch seconds."""
        with self._engine.connect() as connection:
            return float(connection.execute(sql.NOW).scalar_one())

    def _write(self, work: Callable[[Connection], T]) -> T:
        """``work`` in a transaction of its own, run again after a deadlock or a lost race
        (see RETRIED_SQLSTATES)."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self._engine.begin() as connection:
                    connection.execute(
                        sql.TIMEOUTS,
                        {"lock_ms": _ms(LOCK_TIMEOUT_S), "statement_ms": _ms(STATEMENT_TIMEOUT_S)},
                    )
                    return work(connection)
            except DBAPIError as exc:
                if attempt == ATTEMPTS or _sqlstate(exc) not in RETRIED_SQLSTATES:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


def _sqlstate(exc: DBAPIError) -> str | None:
    state = getattr(exc.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def _ms(seconds: float) -> str:
    return str(round(seconds * 1000))


def _positive(seconds: float) -> float:
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a lease lasts a positive number of seconds, not {seconds!r}")
    return float(seconds)


def _load_json(load: Mapping[str, float]) -> str:
    finite = {str(key): float(value) for key, value in load.items() if math.isfinite(value)}
    return json.dumps(finite, sort_keys=True)


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
