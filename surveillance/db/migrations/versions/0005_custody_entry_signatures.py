"""Custody entries carry the node's signature of their hash.

``custody_entries.signature`` is the base64 Ed25519 signature, by the node's key (a file
outside the database), of the entry's hash. A database writer can recompute every hash of a
chain, but not sign it: a rebuilt chain lacks valid signatures. Entries written before
this revision have none (NULL); verification names them unsigned.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("custody_entries") as batch:
        batch.add_column(sa.Column("signature", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("custody_entries") as batch:
        batch.drop_column("signature")
