"""The events tables (created by migration 0008; events.node_id: 0012), as typed ORM classes.

Rows stay inside the stores (:mod:`.store`; the reference pictures' store belongs to
diagnosis); what leaves them are the records of :mod:`.records`. Event ids are never
reused (SQLite AUTOINCREMENT, a sequence on PostgreSQL): pages and SSE clients hold them.
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from surveillance.db.orm import Base

ID_LENGTH = 64  # camera and platform ids (config Identifier)
TYPE_LENGTH = 48
SEVERITY_LENGTH = 16
STATE_LENGTH = 16
KEY_LENGTH = 200
SUMMARY_LENGTH = 400
NOTE_LENGTH = 1000
USER_LENGTH = 128
CASE_NUMBER_LENGTH = 16  # cases.number

# Only the few active events are unique per key (one condition, one event); ended ones may
# share it by the thousand. Partial too: the open list reads few rows among millions.
ACTIVE = text("ended_at IS NULL")
NOT_CLOSED = text("state != 'closed'")
_NEVER_REUSED = {"sqlite_autoincrement": True}


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(TYPE_LENGTH))
    severity: Mapped[str] = mapped_column(String(SEVERITY_LENGTH))
    camera_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    platform_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    zone_id: Mapped[int | None] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    summary: Mapped[str] = mapped_column(String(SUMMARY_LENGTH))
    detail: Mapped[str] = mapped_column(Text)  # JSON object
    state: Mapped[str] = mapped_column(String(STATE_LENGTH))
    started_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)  # NULL while the condition holds
    updated_at: Mapped[float] = mapped_column(Float)
    acked_by: Mapped[str | None] = mapped_column(String(USER_LENGTH))
    acked_at: Mapped[float | None] = mapped_column(Float)
    closed_by: Mapped[str | None] = mapped_column(String(USER_LENGTH))  # NULL: closed by itself
    closed_at: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(String(NOTE_LENGTH))
    case_number: Mapped[str | None] = mapped_column(String(CASE_NUMBER_LENGTH))
    parent_id: Mapped[int | None] = mapped_column(Integer)  # the platform event of a storm
    node_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))  # raised by; NULL: one node

    __table_args__ = (
        Index("ix_events_started_at", "started_at"),
        Index("ix_events_camera_started_at", "camera_id", "started_at"),
        Index("ix_events_platform_type_started_at", "platform_id", "type", "started_at"),
        Index(
            "ux_events_active_key",
            "key",
            unique=True,
            sqlite_where=ACTIVE,
            postgresql_where=ACTIVE,
        ),
        Index(
            "ix_events_not_closed", "state", sqlite_where=NOT_CLOSED, postgresql_where=NOT_CLOSED
        ),
        _NEVER_REUSED,
    )


class EventSnapshotRow(Base):
    """The picture of an event, apart from the row so that lists never read the bytes."""

    __tablename__ = "event_snapshots"

    event_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("events.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    captured_at: Mapped[float] = mapped_column(Float)


class CameraReferenceRow(Base):
    """A camera's reference picture, set by an operator: what "not moved" looks like."""

    __tablename__ = "camera_references"

    camera_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    picture: Mapped[bytes] = mapped_column(LargeBinary)  # small grey, diagnosis's format
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)  # what the operator saw
    set_by: Mapped[str] = mapped_column(String(USER_LENGTH))
    set_at: Mapped[float] = mapped_column(Float)
