"""Wall layouts and tours, stored as validated JSON documents by name.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("wall_layouts", "wall_tours"):
        op.create_table(
            table,
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("body", sa.Text, nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
            sa.Column("updated_by", sa.String(128), nullable=False),
        )


def downgrade() -> None:
    op.drop_table("wall_tours")
    op.drop_table("wall_layouts")
