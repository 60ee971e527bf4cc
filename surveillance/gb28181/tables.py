"""The GB/T 28181 tables (migration 0010; gb_sessions.dialog: 0011), as typed ORM classes.

``gb_platforms`` holds what a platform last told us of itself when it registered and kept
alive (the configuration holds what we know of it: name, password, tags), so ``surveillance
gb status`` can answer without the node running. ``gb_channels`` is each platform's last
catalog of video channels, kept so its cameras exist at start before it registers again.
``gb_overrides`` are an administrator's names and tags for channel cameras, keyed by the
camera id so a catalog refresh (which replaces ``gb_channels``) never touches them.
``gb_sessions`` are the streams being played (INVITE dialogs), written by the player.
"""

from __future__ import annotations

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from surveillance.db.orm import Base

ID_LENGTH = 64  # camera and platform ids (config Identifier)
GB_ID_LENGTH = 20  # GB/T 28181-2016 Annex D: 20 digits
# ParentID may be a civil code, a group id or (some platforms) a "/"-separated path of them.
PARENT_LENGTH = 200
HOST_LENGTH = 255
TRANSPORT_LENGTH = 16
USER_AGENT_LENGTH = 200
NAME_LENGTH = 200
STATUS_LENGTH = 16
TEXT_LENGTH = 200  # manufacturer, model, address
USER_LENGTH = 128
CALL_ID_LENGTH = 200
SSRC_LENGTH = 10  # GB/T 28181-2016 Annex F: y= is 10 digits


class GbPlatformRow(Base):
    __tablename__ = "gb_platforms"

    platform_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(GB_ID_LENGTH))
    host: Mapped[str] = mapped_column(String(HOST_LENGTH))  # where its SIP came from last
    port: Mapped[int] = mapped_column(Integer)
    transport: Mapped[str] = mapped_column(String(TRANSPORT_LENGTH))  # SIP: "udp" | "tcp"
    registered_at: Mapped[float | None] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float)  # <= now: not registered
    last_keepalive_at: Mapped[float | None] = mapped_column(Float)
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_LENGTH))
    catalog_at: Mapped[float | None] = mapped_column(Float)  # last complete catalog applied
    channel_count: Mapped[int] = mapped_column(Integer)


class GbChannelRow(Base):
    __tablename__ = "gb_channels"

    platform_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(GB_ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    status: Mapped[str | None] = mapped_column(String(STATUS_LENGTH))  # "ON" | "OFF" | None
    civil_code: Mapped[str | None] = mapped_column(String(GB_ID_LENGTH))
    parent_id: Mapped[str | None] = mapped_column(String(PARENT_LENGTH))
    business_group_id: Mapped[str | None] = mapped_column(String(GB_ID_LENGTH))
    manufacturer: Mapped[str | None] = mapped_column(String(TEXT_LENGTH))
    model: Mapped[str | None] = mapped_column(String(TEXT_LENGTH))
    address: Mapped[str | None] = mapped_column(String(TEXT_LENGTH))
    longitude: Mapped[float | None] = mapped_column(Float)  # WGS-84
    latitude: Mapped[float | None] = mapped_column(Float)
    raw_longitude: Mapped[float | None] = mapped_column(Float)  # as the platform sent them
    raw_latitude: Mapped[float | None] = mapped_column(Float)
    ptz_type: Mapped[int | None] = mapped_column(Integer)  # Annex A.2.1: 1 dome, 2 half-dome...
    updated_at: Mapped[float] = mapped_column(Float)


class GbOverrideRow(Base):
    __tablename__ = "gb_overrides"

    camera_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))  # None: the channel's name
    tags: Mapped[str | None] = mapped_column(Text)  # JSON list; None: tags by rule
    updated_by: Mapped[str] = mapped_column(String(USER_LENGTH))
    updated_at: Mapped[float] = mapped_column(Float)


class GbSessionRow(Base):
    __tablename__ = "gb_sessions"

    call_id: Mapped[str] = mapped_column(String(CALL_ID_LENGTH), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    platform_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    transport: Mapped[str] = mapped_column(String(TRANSPORT_LENGTH))  # GbTransport value
    local_port: Mapped[int] = mapped_column(Integer)
    ssrc: Mapped[str] = mapped_column(String(SSRC_LENGTH))
    started_at: Mapped[float] = mapped_column(Float)
    # What a BYE needs, as JSON (migration 0011): a restarted node ends what it left.
    dialog: Mapped[str | None] = mapped_column(Text, nullable=True)
