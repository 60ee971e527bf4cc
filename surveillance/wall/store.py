"""Named layouts and tours, kept in the node's database so a wall screen that reboots and
opens its URL shows the same thing again."""

from __future__ import annotations

import time
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy import Engine, Float, String, Text, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from surveillance.db.orm import Base, Transactions
from surveillance.wall.layouts import STORED, Layout
from surveillance.wall.tours import Tour

M = TypeVar("M", bound=BaseModel)
_FROM_STORE = {STORED: True}  # rows saved before a rule was added still load


class _Document:
    """A validated model stored whole, as JSON, by name: the wall reads and writes whole
    documents, and queries by anything but the name are not needed."""

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[float] = mapped_column(Float)
    updated_by: Mapped[str] = mapped_column(String(128))


class LayoutRow(_Document, Base):
    __tablename__ = "wall_layouts"


class TourRow(_Document, Base):
    __tablename__ = "wall_tours"


class WallStore:
    def __init__(self, engine: Engine) -> None:
        self._transactions = Transactions(engine)
        self._dialect = engine.dialect.name

    def _save(self, row_type: type[_Document], document: Layout | Tour, user: str) -> None:
        values = {
            "name": document.name,
            "body": document.model_dump_json(),
            "updated_at": time.time(),
            "updated_by": user,
        }
        # One statement that inserts or replaces: two screens saving the same new name at
        # once must not fail the second with a duplicate key.
        insert = pg_insert if self._dialect == "postgresql" else sqlite_insert
        statement = (
            insert(row_type)
            .values(**values)
            .on_conflict_do_update(
                index_elements=["name"], set_={k: v for k, v in values.items() if k != "name"}
            )
        )
        with self._transactions.begin() as session:
            session.execute(statement)

    def _get(self, row_type: type[_Document], model: type[M], name: str) -> M | None:
        with self._transactions.begin() as session:
            body = session.scalar(select(row_type.body).where(row_type.name == name))
        return None if body is None else model.model_validate_json(body, context=_FROM_STORE)

    def _all(self, row_type: type[_Document], model: type[M]) -> list[M]:
        with self._transactions.begin() as session:
            bodies = session.scalars(select(row_type.body).order_by(row_type.name)).all()
        return [model.model_validate_json(body, context=_FROM_STORE) for body in bodies]

    def _delete(self, row_type: type[_Document], name: str) -> bool:
        with self._transactions.begin() as session:
            deleted = session.scalars(
                delete(row_type).where(row_type.name == name).returning(row_type.name)
            ).all()
        return bool(deleted)

    def save_layout(self, layout: Layout, user: str) -> None:
        self._save(LayoutRow, layout, user)

    def layout(self, name: str) -> Layout | None:
        return self._get(LayoutRow, Layout, name)

    def layouts(self) -> list[Layout]:
        return self._all(LayoutRow, Layout)

    def delete_layout(self, name: str) -> bool:
        return self._delete(LayoutRow, name)

    def save_tour(self, tour: Tour, user: str) -> None:
        self._save(TourRow, tour, user)

    def tour(self, name: str) -> Tour | None:
        return self._get(TourRow, Tour, name)

    def tour_saved_at(self, name: str) -> float | None:
        """When the tour was last saved (Unix seconds): the start of its shared cycle, so
        every screen showing it shows the same page at the same moment."""
        with self._transactions.begin() as session:
            saved_at = session.scalar(select(TourRow.updated_at).where(TourRow.name == name))
        return None if saved_at is None else float(saved_at)

    def tours(self) -> list[Tour]:
        return self._all(TourRow, Tour)

    def delete_tour(self, name: str) -> bool:
        return self._delete(TourRow, name)
