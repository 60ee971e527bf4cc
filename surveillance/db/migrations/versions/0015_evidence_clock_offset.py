"""Evidence items record the camera's clock offset when they were made.

``evidence_items.camera_clock_offset_s``: the camera's (ONVIF device) clock minus the
server's, in seconds, as last read when the item was made; NULL for items made before, and
for cameras whose clock is not known. Nullable, so an upgrade changes no row.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (SQLite and PostgreSQL both have it): no copy of a large table.
    op.add_column("evidence_items", sa.Column("camera_clock_offset_s", sa.Float, nullable=True))


def downgrade() -> None:
    # SQLite drops a column by copying the table (batch mode).
    with op.batch_alter_table("evidence_items") as batch:
        batch.drop_column("camera_clock_offset_s")
