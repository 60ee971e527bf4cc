"""The cluster tables (migration 0012), as typed ORM classes.

``cluster_nodes``: one row per node id, moved by its heartbeat. ``camera_leases``: which
node holds which camera until when; ``generation`` grows each time a lease is taken anew,
so a write carrying an older one is refused (fencing). ``camera_status``: the health a
camera's owner publishes for the other nodes to show. Times are the database's
(``now()``), stored with their time zone. The SQL is in :mod:`.store`; these classes make
the tables part of the one metadata the migrations are checked against.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Float, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from surveillance.db.orm import Base

ID_LENGTH = 64  # node and camera ids (config Identifier)
URL_LENGTH = 300  # cluster.url's limit
INCARNATION_LENGTH = 32  # uuid4 hex


class ClusterNodeRow(Base):
    __tablename__ = "cluster_nodes"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    url: Mapped[str] = mapped_column(String(URL_LENGTH))
    capacity: Mapped[float] = mapped_column(Float)
    incarnation: Mapped[str] = mapped_column(String(INCARNATION_LENGTH))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    load: Mapped[str] = mapped_column(Text)  # JSON object of numbers


class CameraLeaseRow(Base):
    __tablename__ = "camera_leases"

    camera_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    generation: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CameraStatusRow(Base):
    __tablename__ = "camera_status"

    camera_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    generation: Mapped[int] = mapped_column(BigInteger)  # of the lease it was published under
    status: Mapped[str] = mapped_column(Text)  # JSON, the owner's health of the camera
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
