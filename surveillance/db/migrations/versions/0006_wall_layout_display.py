"""Wall layouts say how they open: ``display`` is ``desk`` or ``wall``.

A layout is stored whole as a JSON document (``wall_layouts.body``), so the setting is a
field of that document, not a column: a column would restate what the body already holds.
Upgrading changes no row: a body without ``display`` reads as ``desk``, the way every layout
opened before this revision. The revision still matters: code from before it refuses a
database at it (``check_current``) instead of failing on a body with a field it forbids, and
the downgrade removes the field so that code can read every layout again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_layouts = sa.table("wall_layouts", sa.column("name", sa.String), sa.column("body", sa.Text))


def upgrade() -> None:
    pass  # nothing to rewrite: see the docstring


def downgrade() -> None:
    connection = op.get_bind()
    for name, body in connection.execute(sa.select(_layouts.c.name, _layouts.c.body)).all():
        document = json.loads(body)
        if document.pop("display", None) is not None:
            connection.execute(
                _layouts.update()
                .where(_layouts.c.name == name)
                .values(body=json.dumps(document, separators=(",", ":")))
            )
