"""Alembic environment: the engine is handed over by :func:`surveillance.db.upgrade`.

There is no alembic.ini and no URL here: migrations run only from code, with the engine
the service built from its configuration.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through surveillance.db.upgrade()")

with engine.connect() as connection:
    context.configure(connection=connection, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
