"""GB/T 28181 platforms, their channels, administrators' overrides and streams being played.

``gb_platforms``: one row per configured platform that has registered at least once (its
address, registration and keepalive times). ``gb_channels``: each platform's last catalog of
video channels, so they are cameras at start. ``gb_overrides``: names and tags set by an
administrator, by camera id, untouched by a catalog refresh. ``gb_sessions``: the INVITE
dialogs open now (a node restarting finds the ones it left and ends them).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gb_platforms",
        sa.Column("platform_id", sa.String(64), primary_key=True),
        sa.Column("device_id", sa.String(20), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("registered_at", sa.Float),
        sa.Column("expires_at", sa.Float),
        sa.Column("last_keepalive_at", sa.Float),
        sa.Column("user_agent", sa.String(200)),
        sa.Column("catalog_at", sa.Float),
        sa.Column("channel_count", sa.Integer, nullable=False),
    )
    op.create_table(
        "gb_channels",
        sa.Column("platform_id", sa.String(64), primary_key=True),
        sa.Column("channel_id", sa.String(20), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16)),
        sa.Column("civil_code", sa.String(20)),
        sa.Column("parent_id", sa.String(200)),
        sa.Column("business_group_id", sa.String(20)),
        sa.Column("manufacturer", sa.String(200)),
        sa.Column("model", sa.String(200)),
        sa.Column("address", sa.String(200)),
        sa.Column("longitude", sa.Float),
        sa.Column("latitude", sa.Float),
        sa.Column("raw_longitude", sa.Float),
        sa.Column("raw_latitude", sa.Float),
        sa.Column("ptz_type", sa.Integer),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "gb_overrides",
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200)),
        sa.Column("tags", sa.Text),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "gb_sessions",
        sa.Column("call_id", sa.String(200), primary_key=True),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("platform_id", sa.String(64), nullable=False),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("local_port", sa.Integer, nullable=False),
        sa.Column("ssrc", sa.String(10), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("gb_sessions", "gb_overrides", "gb_channels", "gb_platforms"):
        op.drop_table(table)
