"""The access-control tables (created by migration 0003)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

users_table = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("platforms", Text, nullable=False),  # JSON list of platform ids; [] = all
    Column("cameras", Text, nullable=False),  # JSON list of camera ids
    Column("disabled", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("password_changed_at", Float, nullable=False),
)

# Only the SHA-256 of a session or token secret is stored: the secrets are 256 random bits,
# so a fast hash is enough (no guessing to slow down), and a copy of the database signs
# nobody in.
sessions_table = Table(
    "sessions",
    metadata,
    Column("secret_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("client", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_seen_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

tokens_table = Table(
    "api_tokens",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("label", String(128), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    # JSON list of permissions the token is limited to; NULL = all of its user's.
    Column("permissions", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
)

audit_table = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("user_name", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("camera_id", String(128), nullable=True),
    Column("client", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("detail", Text, nullable=False),  # JSON object
    Index("audit_log_user_at", "user_name", "at"),
    Index("audit_log_camera_at", "camera_id", "at"),
    Index("audit_log_at", "at"),
)
