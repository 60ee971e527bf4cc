"""The access-control tables (migration 0003; sign_in_attempts: 0013), as typed ORM classes.

Rows stay inside the auth stores: what leaves them is a :class:`~.principal.User`, a
:class:`~.principal.Principal` or a :class:`~.tokens.TokenInfo`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from surveillance.db.orm import Base


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # The name folded so that look-alikes meet (users.name_key): unique, so two users can
    # never look the same. NULL only in that SQLite cannot add a NOT NULL column without a
    # default (migration 0004); every row has one.
    name_key: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    platforms: Mapped[str] = mapped_column(Text)  # JSON list of platform ids; [] = all
    cameras: Mapped[str] = mapped_column(Text)  # JSON list of camera ids
    disabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[float] = mapped_column(Float)
    password_changed_at: Mapped[float] = mapped_column(Float)

    # Ids are never reused (an audit entry's user_id must not pass to a later user):
    # AUTOINCREMENT on SQLite (migration 0004), a sequence on PostgreSQL.
    __table_args__ = (
        Index("users_name_key_unique", "name_key", unique=True),
        {"sqlite_autoincrement": True},
    )


# Only the SHA-256 of a session or token secret is stored: the secrets are 256 random bits,
# so a fast hash is enough (no guessing to slow down), and a copy of the database signs
# nobody in.
class SessionRow(Base):
    __tablename__ = "sessions"

    secret_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("sessions_user", "user_id"),)


class TokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(128))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # JSON list of permissions the token is limited to; NULL = all of its user's.
    permissions: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    last_used_at: Mapped[float | None] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)


class AuditRow(Base):
    """One audit entry; the database refuses updates and deletes (migration 0003)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float)
    user_name: Mapped[str] = mapped_column(String(128))
    # The user who acted, by id: a name can be removed and given to someone else, who must
    # not inherit this entry. NULL when no user of that name existed then (a failed sign-in
    # with an unknown name, the command line). No foreign key: entries outlive their users.
    user_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(64))
    camera_id: Mapped[str | None] = mapped_column(String(128))
    client: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text)  # JSON object

    __table_args__ = (
        Index("audit_log_user_at", "user_name", "at"),
        Index("audit_log_user_id_at", "user_id", "at"),
        Index("audit_log_camera_at", "camera_id", "at"),
        Index("audit_log_at", "at"),
    )


# The audit log writes batches with Core statements on the same table.
audit_table: Table = AuditRow.__table__  # type: ignore[assignment]


class SignInAttemptRow(Base):
    """A password attempt counted against a client address (migration 0013). Written only
    in cluster mode, so that every node sharing the database counts the same attempts
    (auth/shared_ratelimit.py); ``at`` is the database's clock, the one all nodes share."""

    __tablename__ = "sign_in_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("sign_in_attempts_client_at", "client", "at"),
        Index("sign_in_attempts_at", "at"),
    )
