"""Cases, timeline, evidence items, custody chain, case numbers.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("number", sa.String(16), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("place", sa.String(200)),
        sa.Column("reporter", sa.String(128), nullable=False),
        sa.Column("assignee", sa.String(128)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("custody_seq", sa.Integer, nullable=False),
        sa.Column("custody_head", sa.String(64), nullable=False),
    )
    op.create_index("ix_cases_state_created", "cases", ["state", "created_at"])
    op.create_index("ix_cases_assignee_created", "cases", ["assignee", "created_at"])
    op.create_index("ix_cases_created", "cases", ["created_at"])
    op.create_table(
        "case_tags",
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), primary_key=True),
        sa.Column("tag", sa.String(64), primary_key=True),
    )
    op.create_index("ix_case_tags_tag", "case_tags", ["tag"])
    op.create_table(
        "case_cameras",
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), primary_key=True),
        sa.Column("camera_id", sa.String(64), primary_key=True),
    )
    op.create_index("ix_case_cameras_camera_id", "case_cameras", ["camera_id"])
    op.create_table(
        "timeline_entries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("from_state", sa.String(16)),
        sa.Column("to_state", sa.String(16)),
        sa.Column("item_id", sa.Integer),
    )
    op.create_index("ix_timeline_entries_case_id", "timeline_entries", ["case_id"])
    op.create_table(
        "evidence_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("platform_id", sa.String(64)),
        sa.Column("captured_at", TIME, nullable=False),
        sa.Column("stream_time_s", sa.Float),
        sa.Column("attached_at", TIME, nullable=False),
        sa.Column("attached_by", sa.String(128), nullable=False),
        sa.Column("codec", sa.String(16), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("duration_s", sa.Float),
        sa.Column("frames", sa.Integer, nullable=False),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_evidence_items_case_id", "evidence_items", ["case_id"])
    op.create_index("ix_evidence_items_sha256", "evidence_items", ["sha256"])
    op.create_table(
        "custody_entries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("item_id", sa.Integer),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("case_id", "seq", name="uq_custody_case_seq"),
    )
    op.create_table(
        "case_counters",
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "case_counters",
        "custody_entries",
        "evidence_items",
        "timeline_entries",
        "case_cameras",
        "case_tags",
        "cases",
    ):
        op.drop_table(table)
