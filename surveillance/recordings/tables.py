"""The recording index's tables (created by migration 0007), as typed ORM classes.

Rows stay inside :class:`~.store.RecordingStore`; what leaves it are the records of
:mod:`.records`. Ids are never reused (SQLite AUTOINCREMENT, a sequence on PostgreSQL): a
segment's id is part of its chain link and of its file name.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from surveillance.db.orm import Base

ID_LENGTH = 64  # camera ids (config Identifier)
STREAM_LENGTH = 8
HASH_LENGTH = 64  # hex SHA-256
PATH_LENGTH = 512
REASON_LENGTH = 400
CASE_NUMBER_LENGTH = 16  # cases.number
USER_LENGTH = 128

# Partial indexes over the few rows still open: finding them after a crash must not read
# millions of closed ones.
_OPEN = text("end_at IS NULL")
_NEVER_REUSED = {"sqlite_autoincrement": True}


class SegmentRow(Base):
    __tablename__ = "recording_segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    stream: Mapped[str] = mapped_column(String(STREAM_LENGTH))
    path: Mapped[str] = mapped_column(String(PATH_LENGTH))
    start_at: Mapped[float] = mapped_column(Float)
    end_at: Mapped[float | None] = mapped_column(Float)  # NULL while open
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(HASH_LENGTH))
    chain_seq: Mapped[int | None] = mapped_column(BigInteger)
    prev_link: Mapped[str | None] = mapped_column(String(HASH_LENGTH))
    link: Mapped[str | None] = mapped_column(String(HASH_LENGTH))
    codec: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    frames: Mapped[int] = mapped_column(Integer)
    init_bytes: Mapped[int] = mapped_column(Integer)
    keyframes: Mapped[str] = mapped_column(Text)  # JSON [[media time s, moof offset], ...]
    closed_reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))

    __table_args__ = (
        # end_at too: the timeline's spans read from the index alone, a camera's day in a few
        # adjacent pages, instead of 1,440 table rows spread among every other camera's.
        Index(
            "ix_recording_segments_camera_stream_start",
            "camera_id",
            "stream",
            "start_at",
            "end_at",
        ),
        Index("ix_recording_segments_start", "start_at"),
        Index("ix_recording_segments_open", "id", sqlite_where=_OPEN, postgresql_where=_OPEN),
        _NEVER_REUSED,
    )


class GapRow(Base):
    __tablename__ = "recording_gaps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    stream: Mapped[str] = mapped_column(String(STREAM_LENGTH))
    start_at: Mapped[float] = mapped_column(Float)
    end_at: Mapped[float | None] = mapped_column(Float)  # NULL while ongoing
    reason: Mapped[str] = mapped_column(String(REASON_LENGTH))
    # Set on a window whose footage was recorded and then removed (retention, disk budget):
    # when the newest removal in it happened. NULL on a gap the recorder saw (nothing
    # recorded). The store merges removed windows into few rows by this mark.
    removed_at: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index("ix_recording_gaps_camera_stream_start", "camera_id", "stream", "start_at"),
        Index("ix_recording_gaps_open", "id", sqlite_where=_OPEN, postgresql_where=_OPEN),
        _NEVER_REUSED,
    )


class HoldRow(Base):
    __tablename__ = "recording_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_number: Mapped[str] = mapped_column(String(CASE_NUMBER_LENGTH))
    camera_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    start_at: Mapped[float] = mapped_column(Float)
    end_at: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(USER_LENGTH))
    created_at: Mapped[float] = mapped_column(Float)
    released_at: Mapped[float | None] = mapped_column(Float)  # NULL while active
    released_by: Mapped[str | None] = mapped_column(String(USER_LENGTH))

    __table_args__ = (
        Index("ix_recording_holds_case_number", "case_number"),
        Index("ix_recording_holds_camera_id", "camera_id"),
        _NEVER_REUSED,
    )


class ChainAnchorRow(Base):
    """One per (camera, stream) chain: where it starts now and where it ends.

    ``head_seq``/``head_link``: the oldest chain position still present (as a segment or a
    removal row) and the ``prev_link`` it must carry; retention at the head moves both past
    the removed segments, so continuous retention adds no row anywhere. ``tail_seq``/
    ``tail_link``: the newest closed segment, so removing the newest rows shows too.
    ``stored_segments``/``stored_bytes``: what the chain's closed segments hold (the node's
    total without summing millions of rows); ``removed_*``: what retention took.
    """

    __tablename__ = "recording_chain_anchors"

    camera_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    stream: Mapped[str] = mapped_column(String(STREAM_LENGTH), primary_key=True)
    head_seq: Mapped[int] = mapped_column(BigInteger)
    head_link: Mapped[str] = mapped_column(String(HASH_LENGTH))
    tail_seq: Mapped[int] = mapped_column(BigInteger)
    tail_link: Mapped[str] = mapped_column(String(HASH_LENGTH))
    stored_segments: Mapped[int] = mapped_column(BigInteger)
    stored_bytes: Mapped[int] = mapped_column(BigInteger)
    removed_segments: Mapped[int] = mapped_column(BigInteger)
    removed_bytes: Mapped[int] = mapped_column(BigInteger)
    removed_through: Mapped[float | None] = mapped_column(Float)  # end of the newest removed


class RemovalRow(Base):
    """A segment removed behind one that is still kept (a hole left by a hold): its link's
    fields, so the chain still checks across the hole. Folded into the anchor, and deleted,
    once every position before it is gone too."""

    __tablename__ = "recording_removals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    stream: Mapped[str] = mapped_column(String(STREAM_LENGTH))
    chain_seq: Mapped[int] = mapped_column(BigInteger)
    segment_id: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(PATH_LENGTH))
    start_at: Mapped[float] = mapped_column(Float)
    end_at: Mapped[float] = mapped_column(Float)
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(HASH_LENGTH))
    prev_link: Mapped[str] = mapped_column(String(HASH_LENGTH))
    link: Mapped[str] = mapped_column(String(HASH_LENGTH))
    removed_at: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(REASON_LENGTH))

    __table_args__ = (
        UniqueConstraint("camera_id", "stream", "chain_seq", name="uq_recording_removals_seq"),
        _NEVER_REUSED,
    )
