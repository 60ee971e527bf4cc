"""The zones table: the only code that reads or writes it.

A name is unique per camera (the table says so too, for two editors saving at once). Who
changed what goes to the audit log, from the route; whoever watches zones (the motion
service) registers a listener and is told after each committed change.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError

from surveillance.db.orm import Transactions
from surveillance.errors import InvalidRequest, NotFound
from surveillance.zones.records import ZoneRecord, ZoneSpec
from surveillance.zones.schedule import Schedule
from surveillance.zones.tables import ZoneRow

log = logging.getLogger(__name__)


class ZoneNotFound(NotFound):
    def __init__(self, camera_id: str, zone_id: int) -> None:
        super().__init__(f"camera {camera_id} has no zone {zone_id}")


class ZoneNameTaken(InvalidRequest):
    """422 as the other shape problems of a zone: the editor shows it by the name field."""

    def __init__(self, name: str) -> None:
        super().__init__(f"name: this camera already has a zone called {name!r}")


def _record(row: ZoneRow) -> ZoneRecord:
    return ZoneRecord(
        camera_id=row.camera_id,
        name=row.name,
        tag=row.tag,
        points=tuple((float(x), float(y)) for x, y in json.loads(row.points)),
        schedule=Schedule.model_validate_json(row.schedule),
        sensitivity=row.sensitivity,
        enabled=row.enabled,
        id=row.id,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _fill(row: ZoneRow, spec: ZoneSpec, now: float) -> None:
    row.camera_id = spec.camera_id
    row.name = spec.name
    row.tag = spec.tag
    row.points = json.dumps([list(point) for point in spec.points])
    row.schedule = spec.schedule.model_dump_json(by_alias=True)
    row.sensitivity = spec.sensitivity
    row.enabled = spec.enabled
    row.updated_at = now


class ZoneStore:
    def __init__(self, engine: Engine) -> None:
        self._transactions = Transactions(engine)
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def add_listener(self, listener: Callable[[], None]) -> None:
        """``listener()`` after every committed change (from the changing thread)."""
        with self._lock:
            self._listeners.append(listener)

    def _changed(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener()
            except Exception:  # a listener's bug must not turn a saved zone into a 500
                log.exception("zone change listener failed")

    def zones(self, camera_id: str | None = None) -> list[ZoneRecord]:
        """Every zone (of one camera), by camera and name."""
        query = select(ZoneRow).order_by(ZoneRow.camera_id, ZoneRow.name)
        if camera_id is not None:
            query = query.where(ZoneRow.camera_id == camera_id)
        with self._transactions.begin() as session:
            return [_record(row) for row in session.scalars(query)]

    def create(self, spec: ZoneSpec, user: str) -> ZoneRecord:
        now = time.time()
        try:
            with self._transactions.begin() as session:
                row = ZoneRow(created_by=user, created_at=now)
                _fill(row, spec, now)
                session.add(row)
                session.flush()
                record = _record(row)
        except IntegrityError:
            raise ZoneNameTaken(spec.name) from None
        self._changed()
        return record

    def update(self, zone_id: int, spec: ZoneSpec) -> ZoneRecord:
        try:
            with self._transactions.begin() as session:
                row = session.get(ZoneRow, zone_id)
                if row is None or row.camera_id != spec.camera_id:
                    raise ZoneNotFound(spec.camera_id, zone_id)
                _fill(row, spec, time.time())
                session.flush()
                record = _record(row)
        except IntegrityError:
            raise ZoneNameTaken(spec.name) from None
        self._changed()
        return record

    def delete(self, camera_id: str, zone_id: int) -> ZoneRecord:
        """Remove a zone; the zone as it was."""
        with self._transactions.begin() as session:
            row = session.get(ZoneRow, zone_id)
            if row is None or row.camera_id != camera_id:
                raise ZoneNotFound(camera_id, zone_id)
            record = _record(row)
            session.execute(delete(ZoneRow).where(ZoneRow.id == zone_id))
        self._changed()
        return record
