"""Who steers each camera: ``ptz_leases`` (services/ptz_leases.py), one row per camera
someone holds or steered and that has not gone home since. Any node reads it.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ptz_leases",
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("taken_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("last_command_at", sa.Float, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("ptz_leases")
