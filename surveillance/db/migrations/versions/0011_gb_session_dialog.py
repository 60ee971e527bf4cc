"""GB/T 28181 play sessions keep what a BYE needs: ``gb_sessions.dialog``.

A node killed without its stop (kill -9, power loss) left its INVITE dialogs open at the
platforms, which streamed on into ports a new run hands out again. The column holds the
dialog as JSON (Call-ID's From and To with their tags, the remote target, the INVITE's
CSeq, the platform's address and transport) so the next start can end each one with a BYE
(RFC 3261 s.15.1.1). Nullable: rows written before it have none and are only removed.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gb_sessions") as batch:
        batch.add_column(sa.Column("dialog", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gb_sessions") as batch:
        batch.drop_column("dialog")
