"""The tables the code declares are the tables the migrations make, on both databases.

The schema is created only by the Alembic migrations, while the stores read and write
through the ORM classes; nothing else ties the two. This runs every migration on an empty
database and asks Alembic's autogenerate to compare the result with the declared metadata:
any column, type, nullability, index, unique or foreign key that differs shows up as a
difference, and the fix is a new migration (or the model), never an edit to a shipped one.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

# Every module that declares tables, so that the one metadata holds them all.
import surveillance.auth.tables
import surveillance.cases.models
import surveillance.cluster.tables
import surveillance.events.tables
import surveillance.gb28181.tables
import surveillance.recordings.tables
import surveillance.services.ptz_leases
import surveillance.wall.store
import surveillance.zones.tables  # noqa: F401
from surveillance.db.orm import Base

EXPECTED_TABLES = {
    "cases", "case_tags", "case_cameras", "timeline_entries", "evidence_items",
    "custody_entries", "case_counters", "wall_layouts", "wall_tours", "users", "sessions",
    "api_tokens", "audit_log", "recording_segments", "recording_gaps", "recording_holds",
    "recording_chain_anchors", "recording_removals", "events", "event_snapshots", "zones",
    "camera_references", "gb_platforms", "gb_channels", "gb_overrides", "gb_sessions",
    "cluster_nodes", "camera_leases", "camera_status", "sign_in_attempts", "ptz_leases",
}  # fmt: skip


def test_every_table_is_declared_once_on_the_one_metadata() -> None:
    assert set(Base.metadata.tables) == EXPECTED_TABLES


def test_migrated_schema_matches_the_declared_tables(engine: Engine) -> None:
    # The engine fixture ran every migration on an empty database.
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        differences: list[Any] = compare_metadata(context, Base.metadata)
    assert differences == [], "\n".join(map(repr, differences))
