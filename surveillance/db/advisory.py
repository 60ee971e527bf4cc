"""One process at a time across the nodes sharing a PostgreSQL database: a session-level
advisory lock (PostgreSQL docs, "Advisory Locks": ``pg_try_advisory_lock`` takes it without
waiting, and it is released by ``pg_advisory_unlock`` or when its session ends, so a node
that dies mid-way never leaves it taken).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Engine, text

# Lock keys (bigint), one per job; fixed numbers so every node agrees on them.
RETENTION_LOCK = 0x5356_5245_5445_4E31  # "SVRETEN1": the recordings' retention pass


@contextlib.contextmanager
def exclusive(engine: Engine, key: int) -> Iterator[bool]:
    """Yields True when this process holds the lock for the ``with`` block, False when
    another session holds it (then do nothing). Not PostgreSQL (SQLite: one node): True.
    The lock lives on a connection kept out of the pool for the block."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as connection:
        taken = bool(
            connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
        )
        connection.commit()  # no transaction left open while the block runs
        try:
            yield taken
        finally:
            if taken:
                try:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    connection.commit()
                except Exception:
                    # Not back to the pool: a pooled session still holding the lock would
                    # keep every node's job from running. Closing the session releases it.
                    connection.invalidate()
