"""Events, their snapshots, zones and the cameras' reference pictures.

``events`` holds one row per condition an operator acts on; a partial unique index on
``key`` over the active rows (``ended_at IS NULL``) makes raising a condition again update
its event rather than add one. ``event_snapshots`` keeps each event's picture apart from
the row (lists never read the bytes). ``zones`` are the polygons drawn on cameras;
``camera_references`` the picture a camera is compared against to tell it was moved. Ids
of events and zones are never reused (AUTOINCREMENT on SQLite).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ACTIVE = sa.text("ended_at IS NULL")
NOT_CLOSED = sa.text("state != 'closed'")
NEVER_REUSED = {"sqlite_autoincrement": True}


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(48), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("camera_id", sa.String(64)),
        sa.Column("platform_id", sa.String(64)),
        sa.Column("zone_id", sa.Integer),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("summary", sa.String(400), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("last_seen_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("acked_by", sa.String(128)),
        sa.Column("acked_at", sa.Float),
        sa.Column("closed_by", sa.String(128)),
        sa.Column("closed_at", sa.Float),
        sa.Column("note", sa.String(1000)),
        sa.Column("case_number", sa.String(16)),
        sa.Column("parent_id", sa.Integer),
        **NEVER_REUSED,
    )
    op.create_index("ix_events_started_at", "events", ["started_at"])
    op.create_index("ix_events_camera_started_at", "events", ["camera_id", "started_at"])
    op.create_index(
        "ix_events_platform_type_started_at", "events", ["platform_id", "type", "started_at"]
    )
    op.create_index(
        "ux_events_active_key",
        "events",
        ["key"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )
    op.create_index(
        "ix_events_not_closed",
        "events",
        ["state"],
        sqlite_where=NOT_CLOSED,
        postgresql_where=NOT_CLOSED,
    )
    op.create_table(
        "event_snapshots",
        sa.Column(
            "event_id",
            sa.Integer,
            sa.ForeignKey("events.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("jpeg", sa.LargeBinary, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("captured_at", sa.Float, nullable=False),
    )
    op.create_table(
        "zones",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("tag", sa.String(64)),
        sa.Column("points", sa.Text, nullable=False),
        sa.Column("schedule", sa.Text, nullable=False),
        sa.Column("sensitivity", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("camera_id", "name", name="uq_zones_camera_name"),
        **NEVER_REUSED,
    )
    op.create_table(
        "camera_references",
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("picture", sa.LargeBinary, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("jpeg", sa.LargeBinary, nullable=False),
        sa.Column("set_by", sa.String(128), nullable=False),
        sa.Column("set_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("camera_references", "zones", "event_snapshots", "events"):
        op.drop_table(table)
