"""Sign-in attempts counted in the shared database, so every node refuses the same address.

``sign_in_attempts``: one row per password attempt (client address, database clock), kept
for the sign-in window. Cluster mode only writes it; single-node mode counts in memory. The
table is made on SQLite too, so the one migration chain runs everywhere.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("sign_in_attempts_client_at", "sign_in_attempts", ["client", "at"])
    op.create_index("sign_in_attempts_at", "sign_in_attempts", ["at"])


def downgrade() -> None:
    op.drop_table("sign_in_attempts")
