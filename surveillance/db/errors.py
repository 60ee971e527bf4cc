"""What the database's own failures mean to the rest of the node.

Only one is told apart: the database cannot grow (SQLite's ``SQLITE_FULL``, "database or
disk is full", which is also what ``PRAGMA max_page_count`` reached gives; PostgreSQL's
``disk_full``, SQLSTATE 53100). It is the operator's to fix, not a fault of the code, so
it is 507 with its reason rather than a bare 500, and the transaction is rolled back, so
nothing of the request is stored.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError

from surveillance.errors import SurveillanceError

POSTGRES_DISK_FULL = "53100"


class DatabaseFull(SurveillanceError):
    """The node's database cannot grow; the request's changes were rolled back."""

    status_code = 507

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"the node's database cannot grow ({reason}): nothing was stored; "
            "free space for the database and try again"
        )
        self.reason = reason


def database_full(exc: BaseException) -> DatabaseFull | None:
    """The :class:`DatabaseFull` that ``exc`` means, or None if it means something else."""
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    if isinstance(orig, sqlite3.Error) and getattr(orig, "sqlite_errorcode", None) == (
        sqlite3.SQLITE_FULL
    ):
        return DatabaseFull(str(orig))
    if getattr(orig, "sqlstate", None) == POSTGRES_DISK_FULL:
        return DatabaseFull("could not extend a file: disk full")
    return None
