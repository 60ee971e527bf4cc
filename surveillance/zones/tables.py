"""The zones table (created by migration 0008), as a typed ORM class."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from surveillance.db.orm import Base

ID_LENGTH = 64  # camera ids (config Identifier)
NAME_LENGTH = 80
TAG_LENGTH = 64
USER_LENGTH = 128


class ZoneRow(Base):
    __tablename__ = "zones"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    tag: Mapped[str | None] = mapped_column(String(TAG_LENGTH))
    points: Mapped[str] = mapped_column(Text)  # JSON [[x, y], ...], each in 0..1 of the picture
    schedule: Mapped[str] = mapped_column(Text)  # JSON, see zones/schedule.py
    sensitivity: Mapped[int] = mapped_column(Integer)  # 1..100
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_by: Mapped[str] = mapped_column(String(USER_LENGTH))
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("camera_id", "name", name="uq_zones_camera_name"),
        # Ids are never reused: an event's zone_id keeps naming the zone it was raised in.
        {"sqlite_autoincrement": True},
    )
