"""Many nodes over one PostgreSQL: nodes, camera leases, camera status; events.node_id.

``cluster_nodes``: each node's row (url, capacity, the incarnation of the process holding
the id, heartbeat and stop times by the database clock, its last load). ``camera_leases``:
which node holds which camera until when, with a generation that fences stale writers.
``camera_status``: the health a camera's owner publishes. ``events.node_id``: which node
raised an event (NULL for rows from before, and in single-node mode). The tables are made
on SQLite too, so the one migration chain runs everywhere; only PostgreSQL uses them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_nodes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("url", sa.String(300), nullable=False),
        sa.Column("capacity", sa.Float, nullable=False),
        sa.Column("incarnation", sa.String(32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True)),
        sa.Column("load", sa.Text, nullable=False),
    )
    op.create_table(
        "camera_leases",
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "camera_status",
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("node_id", sa.String(64), nullable=True))


def downgrade() -> None:
    # Not batch mode: on SQLite it would copy ``events`` and drop the original, and dropping
    # a table with foreign keys on deletes its rows first, cascading to ``event_snapshots``
    # (SQLite docs, "DROP TABLE"); the copy also loses AUTOINCREMENT. A plain DROP COLUMN
    # (SQLite 3.35+) keeps the table as it is.
    op.drop_column("events", "node_id")
    for table in ("camera_status", "camera_leases", "cluster_nodes"):
        op.drop_table(table)
