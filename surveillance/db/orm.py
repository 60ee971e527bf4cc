"""The one SQLAlchemy style of the node's stores: typed ORM classes on one declarative base,
used through short sessions, one transaction each.

Cases, auth and wall all declare their tables as ``Mapped`` classes on :class:`Base`, so
one ``Base.metadata`` describes the whole database (what the migrations must produce, see
``tests/db/test_schema_matches_migrations.py``) and mypy checks every column's type where
it is read. Rows are turned into plain records before they leave a store: nothing above
the stores holds a session.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from surveillance.db.errors import database_full

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")


class Base(DeclarativeBase):
    """Every table of the node's database, whichever package declares it."""


class Transactions:
    """Sessions on one engine; each ``with transactions.begin() as session`` is one
    transaction, committed at the end of the block and rolled back on an exception.

    On SQLite every transaction starts ``BEGIN IMMEDIATE`` (see :mod:`surveillance.db`),
    so reads inside one see a state no other writer changes until it ends.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Records are built after commit in some places: keep the loaded values.
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def begin(self) -> Iterator[Session]:
        with _full_is_507(), self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def rehearse(self) -> Iterator[Session]:
        """A transaction that is always rolled back: to see what a change would make (and
        hold the same locks as making it) without keeping it. Build records inside."""
        with _full_is_507(), self._sessions() as session:
            session.begin()
            try:
                yield session
            finally:
                session.rollback()


@contextmanager
def _full_is_507() -> Iterator[None]:
    """A database that cannot grow raises :class:`~.errors.DatabaseFull` (507, with the
    reason) once the transaction is rolled back; every other error passes unchanged."""
    try:
        yield
    except DBAPIError as exc:
        full = database_full(exc)
        if full is None:
            raise
        raise full from exc


def from_row(record_type: type[R], row: object, **given: Any) -> R:
    """A ``record_type`` dataclass with each field read from ``row``'s attribute of the same
    name, except those ``given`` (values the row holds in another form, or not at all).

    Records name their fields once; a new column reaches the record by having the same name
    in both, not by another line in a copy function.
    """
    values = {
        f.name: given[f.name] if f.name in given else getattr(row, f.name)
        for f in fields(record_type)
    }
    return record_type(**values)
