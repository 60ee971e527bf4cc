"""Named layouts and tours, kept in the node's database so a wall screen that reboots and
opens its URL shows the same thing again."""

from __future__ import annotations

import time

from sqlalchemy import Column, Engine, Float, MetaData, String, Table, Text, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from surveillance.wall.layouts import Layout
from surveillance.wall.tours import Tour

metadata = MetaData()

# The body is the validated model as JSON: the wall reads and writes whole documents, and
# queries by anything but the name are not needed.
layouts_table = Table(
    "wall_layouts",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("body", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(128), nullable=False),
)
tours_table = Table(
    "wall_tours",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("body", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(128), nullable=False),
)


class WallStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _upsert(self, table: Table, name: str, body: str, user: str) -> None:
        values = {"name": name, "body": body, "updated_at": time.time(), "updated_by": user}
        insert = pg_insert if self._engine.dialect.name == "postgresql" else sqlite_insert
        statement = insert(table).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.name],
            set_={k: v for k, v in values.items() if k != "name"},
        )
        with self._engine.begin() as connection:
            connection.execute(statement)

    def _get(self, table: Table, name: str) -> str | None:
        with self._engine.connect() as connection:
            row = connection.execute(select(table.c.body).where(table.c.name == name)).first()
        return None if row is None else str(row[0])

    def _all(self, table: Table) -> list[str]:
        with self._engine.connect() as connection:
            rows = connection.execute(select(table.c.body).order_by(table.c.name)).all()
        return [str(row[0]) for row in rows]

    def _delete(self, table: Table, name: str) -> bool:
        with self._engine.begin() as connection:
            result = connection.execute(delete(table).where(table.c.name == name))
        return bool(result.rowcount)

    def save_layout(self, layout: Layout, user: str) -> None:
        self._upsert(layouts_table, layout.name, layout.model_dump_json(), user)

    def layout(self, name: str) -> Layout | None:
        body = self._get(layouts_table, name)
        return None if body is None else Layout.model_validate_json(body)

    def layouts(self) -> list[Layout]:
        return [Layout.model_validate_json(body) for body in self._all(layouts_table)]

    def delete_layout(self, name: str) -> bool:
        return self._delete(layouts_table, name)

    def save_tour(self, tour: Tour, user: str) -> None:
        self._upsert(tours_table, tour.name, tour.model_dump_json(), user)

    def tour(self, name: str) -> Tour | None:
        body = self._get(tours_table, name)
        return None if body is None else Tour.model_validate_json(body)

    def tours(self) -> list[Tour]:
        return [Tour.model_validate_json(body) for body in self._all(tours_table)]

    def delete_tour(self, name: str) -> bool:
        return self._delete(tours_table, name)
