"""The case database's tables, as SQLAlchemy 2 typed ORM classes on the node's one base.

The schema itself is created and changed only by the Alembic migrations in
``migrations/``; these classes must match the newest one. Times are stored as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column, relationship

from surveillance.db.orm import Base


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out (SQLite keeps no time zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: case times must be aware (UTC)")
        value = value.astimezone(UTC)
        # SQLite stores text: keep it naive UTC so that text order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    place: Mapped[str | None] = mapped_column(String(200))
    reporter: Mapped[str] = mapped_column(String(128))
    assignee: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Head of the custody chain: a deleted last entry shows as a mismatch here.
    custody_seq: Mapped[int] = mapped_column(Integer, default=0)
    custody_head: Mapped[str] = mapped_column(String(64))

    tags: Mapped[list[CaseTag]] = relationship(
        cascade="all, delete-orphan", order_by="CaseTag.tag", lazy="selectin"
    )
    cameras: Mapped[list[CaseCamera]] = relationship(
        cascade="all, delete-orphan", order_by="CaseCamera.camera_id", lazy="selectin"
    )

    __table_args__ = (
        Index("ix_cases_state_created", "state", "created_at"),
        Index("ix_cases_assignee_created", "assignee", "created_at"),
        Index("ix_cases_created", "created_at"),
    )


class CaseTag(Base):
    __tablename__ = "case_tags"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class CaseCamera(Base):
    __tablename__ = "case_cameras"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class TimelineEntry(Base):
    __tablename__ = "timeline_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # comment, state, evidence, created
    text: Mapped[str] = mapped_column(Text, default="")
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    item_id: Mapped[int | None] = mapped_column(Integer)


class EvidenceItem(Base):
    __tablename__ = "evidence_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # snapshot, clip
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(64))
    camera_id: Mapped[str] = mapped_column(String(64))
    platform_id: Mapped[str | None] = mapped_column(String(64))
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime)  # arrival, server clock
    stream_time_s: Mapped[float | None] = mapped_column(Float)  # camera's media clock
    attached_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attached_by: Mapped[str] = mapped_column(String(128))
    codec: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    duration_s: Mapped[float | None] = mapped_column(Float)
    frames: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    camera_clock_offset_s: Mapped[float | None] = mapped_column(Float)  # camera - server, s


class CustodyEntry(Base):
    """One link of a case's custody chain; rows are only ever inserted."""

    __tablename__ = "custody_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))
    item_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))
    # The node key's signature of entry_hash (base64); NULL for entries before 0005.
    signature: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("case_id", "seq", name="uq_custody_case_seq"),)


class CaseCounter(Base):
    """The last case number given out per year (``2026-000123``)."""

    __tablename__ = "case_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer)
