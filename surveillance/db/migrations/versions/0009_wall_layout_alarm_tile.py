"""Wall layouts name their alarm tile: ``alarm_tile``, the index of the tile a new alarm takes.

As ``display`` (revision 0006), the setting is a field of the layout's stored JSON document,
not a column. Upgrading changes no row: a body without ``alarm_tile`` reads as "the last
tile", the default. The revision lets code from before it refuse a database at it
(``check_current``), and its downgrade removes the field so that code, which forbids fields
it does not know, can read every layout again.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_layouts = sa.table("wall_layouts", sa.column("name", sa.String), sa.column("body", sa.Text))


def upgrade() -> None:
    pass  # nothing to rewrite: see the docstring


def downgrade() -> None:
    connection = op.get_bind()
    for name, body in connection.execute(sa.select(_layouts.c.name, _layouts.c.body)).all():
        document = json.loads(body)
        if "alarm_tile" in document:
            del document["alarm_tile"]
            connection.execute(
                _layouts.update()
                .where(_layouts.c.name == name)
                .values(body=json.dumps(document, separators=(",", ":")))
            )
