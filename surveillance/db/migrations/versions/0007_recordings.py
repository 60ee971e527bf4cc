"""The recording index: segments, gaps, case holds, and the chain bookkeeping of retention.

``recording_segments`` holds a row per segment file (NULL end_at, sha256 and link while
open); each camera stream's closed segments form a hash chain. ``recording_chain_anchors``
holds one row per chain (where it starts and ends now, what it stores), and
``recording_removals`` one row per segment removed behind a held one, until the chain's
head reaches it: so continuous retention grows neither table. Ids are never reused
(AUTOINCREMENT on SQLite): a segment's id is in its link and its file name.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OPEN = sa.text("end_at IS NULL")
NEVER_REUSED = {"sqlite_autoincrement": True}


def upgrade() -> None:
    op.create_table(
        "recording_segments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(8), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("start_at", sa.Float, nullable=False),
        sa.Column("end_at", sa.Float),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("chain_seq", sa.BigInteger),
        sa.Column("prev_link", sa.String(64)),
        sa.Column("link", sa.String(64)),
        sa.Column("codec", sa.String(16), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("frames", sa.Integer, nullable=False),
        sa.Column("init_bytes", sa.Integer, nullable=False),
        sa.Column("keyframes", sa.Text, nullable=False),
        sa.Column("closed_reason", sa.String(400)),
        **NEVER_REUSED,
    )
    op.create_index(
        "ix_recording_segments_camera_stream_start",
        "recording_segments",
        ["camera_id", "stream", "start_at", "end_at"],
    )
    op.create_index("ix_recording_segments_start", "recording_segments", ["start_at"])
    op.create_index(
        "ix_recording_segments_open",
        "recording_segments",
        ["id"],
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_table(
        "recording_gaps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(8), nullable=False),
        sa.Column("start_at", sa.Float, nullable=False),
        sa.Column("end_at", sa.Float),
        sa.Column("reason", sa.String(400), nullable=False),
        sa.Column("removed_at", sa.Float),
        **NEVER_REUSED,
    )
    op.create_index(
        "ix_recording_gaps_camera_stream_start",
        "recording_gaps",
        ["camera_id", "stream", "start_at"],
    )
    op.create_index(
        "ix_recording_gaps_open", "recording_gaps", ["id"], sqlite_where=OPEN, postgresql_where=OPEN
    )
    op.create_table(
        "recording_holds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_number", sa.String(16), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("start_at", sa.Float, nullable=False),
        sa.Column("end_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("released_at", sa.Float),
        sa.Column("released_by", sa.String(128)),
        **NEVER_REUSED,
    )
    op.create_index("ix_recording_holds_case_number", "recording_holds", ["case_number"])
    op.create_index("ix_recording_holds_camera_id", "recording_holds", ["camera_id"])
    op.create_table(
        "recording_chain_anchors",
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("stream", sa.String(8), primary_key=True),
        sa.Column("head_seq", sa.BigInteger, nullable=False),
        sa.Column("head_link", sa.String(64), nullable=False),
        sa.Column("tail_seq", sa.BigInteger, nullable=False),
        sa.Column("tail_link", sa.String(64), nullable=False),
        sa.Column("stored_segments", sa.BigInteger, nullable=False),
        sa.Column("stored_bytes", sa.BigInteger, nullable=False),
        sa.Column("removed_segments", sa.BigInteger, nullable=False),
        sa.Column("removed_bytes", sa.BigInteger, nullable=False),
        sa.Column("removed_through", sa.Float),
    )
    op.create_table(
        "recording_removals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(8), nullable=False),
        sa.Column("chain_seq", sa.BigInteger, nullable=False),
        sa.Column("segment_id", sa.Integer, nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("start_at", sa.Float, nullable=False),
        sa.Column("end_at", sa.Float, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("prev_link", sa.String(64), nullable=False),
        sa.Column("link", sa.String(64), nullable=False),
        sa.Column("removed_at", sa.Float, nullable=False),
        sa.Column("reason", sa.String(400), nullable=False),
        sa.UniqueConstraint("camera_id", "stream", "chain_seq", name="uq_recording_removals_seq"),
        **NEVER_REUSED,
    )


def downgrade() -> None:
    for table in (
        "recording_removals",
        "recording_chain_anchors",
        "recording_holds",
        "recording_gaps",
        "recording_segments",
    ):
        op.drop_table(table)
