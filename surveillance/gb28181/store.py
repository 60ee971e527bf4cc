"""The GB/T 28181 tables: the only code that reads or writes them.

Strings that came from the network are cut to their columns' lengths here, so a platform's
long name or address is shortened rather than refused by PostgreSQL (SQLite would keep it).
A catalog is replaced in one transaction: a reader sees the old catalog or the new one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, fields

from sqlalchemy import Engine, case, delete, func, insert, select, update
from sqlalchemy.orm import Session

from surveillance.db.orm import Transactions
from surveillance.gb28181.records import (
    GbChannelCounts,
    GbChannelRecord,
    GbOverride,
    GbPlatformRecord,
    GbRegistration,
    GbSessionRecord,
)
from surveillance.gb28181.tables import (
    GbChannelRow,
    GbOverrideRow,
    GbPlatformRow,
    GbSessionRow,
)

_CHANNEL_FIELDS = tuple(f.name for f in fields(GbChannelRecord))
_PLATFORM_FIELDS = tuple(f.name for f in fields(GbPlatformRecord))
_SESSION_FIELDS = tuple(f.name for f in fields(GbSessionRecord))


def _cut(value: str | None, column: object) -> str | None:
    length = getattr(getattr(column, "type", None), "length", None)
    if value is None or length is None:
        return value
    return value[:length]


def _channel_values(channel: GbChannelRecord) -> dict[str, object]:
    values: dict[str, object] = asdict(channel)
    for name, value in values.items():
        if isinstance(value, str):
            values[name] = _cut(value, GbChannelRow.__table__.c[name])
    return values


def _channel(row: GbChannelRow) -> GbChannelRecord:
    return GbChannelRecord(**{name: getattr(row, name) for name in _CHANNEL_FIELDS})


def _platform(row: GbPlatformRow) -> GbPlatformRecord:
    return GbPlatformRecord(**{name: getattr(row, name) for name in _PLATFORM_FIELDS})


def _session(row: GbSessionRow) -> GbSessionRecord:
    return GbSessionRecord(**{name: getattr(row, name) for name in _SESSION_FIELDS})


def _override(row: GbOverrideRow) -> GbOverride:
    tags = None if row.tags is None else tuple(str(t) for t in json.loads(row.tags))
    return GbOverride(
        camera_id=row.camera_id,
        name=row.name,
        tags=tags,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


class GbStore:
    def __init__(self, engine: Engine) -> None:
        self._transactions = Transactions(engine)

    # -- platforms ------------------------------------------------------------------------
    def record_registration(self, registration: GbRegistration) -> None:
        """A REGISTER accepted: where the platform is now and until when (its catalog and
        channels stay: a platform registering again, from anywhere, keeps its cameras)."""
        with self._transactions.begin() as session:
            row = session.get(GbPlatformRow, registration.platform_id)
            if row is None:
                row = GbPlatformRow(platform_id=registration.platform_id, channel_count=0)
                session.add(row)
            row.device_id = registration.device_id
            row.host = _cut(registration.host, GbPlatformRow.__table__.c.host) or ""
            row.port = registration.port
            row.transport = registration.transport
            row.registered_at = registration.registered_at
            row.expires_at = registration.expires_at
            row.user_agent = _cut(registration.user_agent, GbPlatformRow.__table__.c.user_agent)

    def record_keepalive(self, platform_id: str, at: float) -> bool:
        """False when the platform never registered (no row)."""
        with self._transactions.begin() as session:
            result = session.execute(
                update(GbPlatformRow)
                .where(GbPlatformRow.platform_id == platform_id)
                .values(last_keepalive_at=at)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def record_unregistered(self, platform_id: str, at: float) -> None:
        """The platform de-registered (Expires: 0): its registration ends now."""
        with self._transactions.begin() as session:
            session.execute(
                update(GbPlatformRow)
                .where(GbPlatformRow.platform_id == platform_id)
                .values(expires_at=at)
            )

    def forget_platform(self, platform_id: str) -> None:
        """A platform taken out of the configuration: its row, channels and sessions go
        (overrides stay, keyed by camera id, in case it comes back)."""
        with self._transactions.begin() as session:
            for table in (GbPlatformRow, GbChannelRow, GbSessionRow):
                session.execute(delete(table).where(table.platform_id == platform_id))

    def platform(self, platform_id: str) -> GbPlatformRecord | None:
        with self._transactions.begin() as session:
            row = session.get(GbPlatformRow, platform_id)
            return None if row is None else _platform(row)

    def platforms(self) -> list[GbPlatformRecord]:
        with self._transactions.begin() as session:
            query = select(GbPlatformRow).order_by(GbPlatformRow.platform_id)
            return [_platform(row) for row in session.scalars(query)]

    # -- channels -------------------------------------------------------------------------
    def replace_channels(
        self, platform_id: str, channels: Iterable[GbChannelRecord], at: float
    ) -> int:
        """A complete catalog: the platform's channels become exactly these (one
        transaction); its catalog time and count are set. The number stored."""
        values = [_channel_values(c) for c in channels if c.platform_id == platform_id]
        with self._transactions.begin() as session:
            session.execute(delete(GbChannelRow).where(GbChannelRow.platform_id == platform_id))
            if values:
                session.execute(insert(GbChannelRow), values)
            session.execute(
                update(GbPlatformRow)
                .where(GbPlatformRow.platform_id == platform_id)
                .values(catalog_at=at, channel_count=len(values))
            )
        return len(values)

    def upsert_channels(self, platform_id: str, channels: Iterable[GbChannelRecord]) -> None:
        """Channels added or changed (a catalog NOTIFY ADD/UPDATE/ON/OFF)."""
        wanted = {c.channel_id: c for c in channels if c.platform_id == platform_id}
        if not wanted:
            return
        with self._transactions.begin() as session:
            existing = {
                row.channel_id: row
                for row in session.scalars(
                    select(GbChannelRow).where(
                        GbChannelRow.platform_id == platform_id,
                        GbChannelRow.channel_id.in_(list(wanted)),
                    )
                )
            }
            for channel_id, channel in wanted.items():
                values = _channel_values(channel)
                row = existing.get(channel_id)
                if row is None:
                    session.add(GbChannelRow(**values))
                else:
                    for name, value in values.items():
                        setattr(row, name, value)
            session.flush()
            self._count(session, platform_id)

    def delete_channels(self, platform_id: str, channel_ids: Iterable[str]) -> None:
        ids = list(channel_ids)
        if not ids:
            return
        with self._transactions.begin() as session:
            session.execute(
                delete(GbChannelRow).where(
                    GbChannelRow.platform_id == platform_id, GbChannelRow.channel_id.in_(ids)
                )
            )
            self._count(session, platform_id)

    @staticmethod
    def _count(session: Session, platform_id: str) -> None:
        total = session.scalar(select(func.count()).where(GbChannelRow.platform_id == platform_id))
        session.execute(
            update(GbPlatformRow)
            .where(GbPlatformRow.platform_id == platform_id)
            .values(channel_count=int(total or 0))
        )

    def channels(
        self, platform_id: str | None = None, *, offset: int = 0, limit: int | None = None
    ) -> list[GbChannelRecord]:
        """Channels by platform and channel id; one platform's, or every one."""
        query = select(GbChannelRow).order_by(GbChannelRow.platform_id, GbChannelRow.channel_id)
        if platform_id is not None:
            query = query.where(GbChannelRow.platform_id == platform_id)
        query = query.offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self._transactions.begin() as session:
            return [_channel(row) for row in session.scalars(query)]

    def channel_counts(self) -> dict[str, GbChannelCounts]:
        """Per platform: its channels, and those whose last status was not OFF."""
        online = func.sum(case((GbChannelRow.status == "OFF", 0), else_=1))
        query = select(GbChannelRow.platform_id, func.count(), online).group_by(
            GbChannelRow.platform_id
        )
        with self._transactions.begin() as session:
            return {
                platform_id: GbChannelCounts(total=int(total), online=int(on or 0))
                for platform_id, total, on in session.execute(query)
            }

    # -- overrides ------------------------------------------------------------------------
    def override(self, camera_id: str) -> GbOverride | None:
        with self._transactions.begin() as session:
            row = session.get(GbOverrideRow, camera_id)
            return None if row is None else _override(row)

    def overrides(self) -> dict[str, GbOverride]:
        with self._transactions.begin() as session:
            return {row.camera_id: _override(row) for row in session.scalars(select(GbOverrideRow))}

    def set_override(
        self, camera_id: str, *, name: str | None, tags: Iterable[str] | None, user: str, at: float
    ) -> GbOverride:
        with self._transactions.begin() as session:
            row = session.get(GbOverrideRow, camera_id)
            if row is None:
                row = GbOverrideRow(camera_id=camera_id)
                session.add(row)
            row.name = _cut(name, GbOverrideRow.__table__.c.name)
            row.tags = None if tags is None else json.dumps(list(tags))
            row.updated_by = user
            row.updated_at = at
            session.flush()
            return _override(row)

    def clear_override(self, camera_id: str) -> GbOverride | None:
        """Remove it; the override as it was (None: there was none)."""
        with self._transactions.begin() as session:
            row = session.get(GbOverrideRow, camera_id)
            if row is None:
                return None
            record = _override(row)
            session.delete(row)
            return record

    # -- play sessions --------------------------------------------------------------------
    def add_session(self, record: GbSessionRecord) -> None:
        with self._transactions.begin() as session:
            session.merge(GbSessionRow(**asdict(record)))

    def remove_session(self, call_id: str) -> GbSessionRecord | None:
        with self._transactions.begin() as session:
            row = session.get(GbSessionRow, call_id)
            if row is None:
                return None
            record = _session(row)
            session.delete(row)
            return record

    def clear_sessions(self) -> list[GbSessionRecord]:
        """Every session row removed (a node starting: the dialogs it left are over); the
        ones there were, for the player to send them BYE."""
        with self._transactions.begin() as session:
            records = [_session(row) for row in session.scalars(select(GbSessionRow))]
            session.execute(delete(GbSessionRow))
            return records

    def sessions(self, platform_id: str | None = None) -> list[GbSessionRecord]:
        query = select(GbSessionRow).order_by(GbSessionRow.started_at)
        if platform_id is not None:
            query = query.where(GbSessionRow.platform_id == platform_id)
        with self._transactions.begin() as session:
            return [_session(row) for row in session.scalars(query)]
