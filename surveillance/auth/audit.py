"""The audit log: who did or looked at what, when, from where, and how it went.

Entries are appended by one writer thread so that a request never waits for a disk sync;
``flush`` waits for everything recorded so far, and every query flushes first, so a reader
always sees its own actions. The table refuses UPDATE and DELETE (migration 0003).

Each entry is keyed by the acting user's id as well as their name: a removed user's name
can be given to someone else, who must not inherit the entries. The writer looks the id
up by name when it writes, taking only a user created before the entry's moment, so an
entry never lands on a user that did not exist when it happened.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from surveillance.auth.tables import UserRow, audit_table

log = logging.getLogger(__name__)

BATCH = 256
MAX_PAGE = 500


class AuditAction(StrEnum):
    """Every action the log records: the one list a reader of the log filters by."""

    ACCESS_DENIED = "access.denied"  # a signed-in user was refused by a route's rule
    SIGN_IN = "auth.sign_in"
    SIGN_OUT = "auth.sign_out"
    PASSWORD = "auth.password"  # noqa: S105 - an action's name; one's own password changed
    USER_ADD = "user.add"
    USER_UPDATE = "user.update"
    USER_REMOVE = "user.remove"
    TOKEN_CREATE = "token.create"  # noqa: S105 - an action's name
    TOKEN_REVOKE = "token.revoke"  # noqa: S105 - an action's name
    LIVE_START = "live.start"  # per camera, also for each camera of a mosaic
    LIVE_STOP = "live.stop"
    SNAPSHOT = "snapshot"  # a still picture straight from a camera or a mosaic
    EVIDENCE_SNAPSHOT = "evidence.snapshot"  # attaching a picture to a case
    EVIDENCE_CLIP = "evidence.clip"
    EVIDENCE_VIEW = "evidence.view"
    EVIDENCE_DOWNLOAD = "evidence.download"
    CASE_EXPORT = "case.export"
    RECORDINGS_PLAY = "recordings.play"  # a window of recorded footage watched
    RECORDINGS_EXPORT = "recordings.export"  # a window of recorded footage downloaded
    RECORDINGS_HOLD = "recordings.hold"  # a case keeps a camera's window from retention
    RECORDINGS_RELEASE = "recordings.release"  # a hold let go (by hand or by archiving)
    RECORDINGS_DELETE = "recordings.delete"  # segments removed by retention
    LAYOUT_SAVE = "layout.save"
    LAYOUT_DELETE = "layout.delete"
    TOUR_SAVE = "tour.save"
    TOUR_DELETE = "tour.delete"
    EVENTS_ACK = "events.ack"  # an event acknowledged
    EVENTS_CLOSE = "events.close"  # an event closed by hand, with its note
    EVENTS_CASE = "events.case"  # an event turned into a case
    ZONE_SAVE = "zone.save"
    ZONE_DELETE = "zone.delete"
    CAMERA_REFERENCE = "camera.reference"  # a camera's reference picture set or removed
    GB_OVERRIDE = "gb.override"  # a GB/T 28181 channel camera's name and tags set or cleared
    CAMERA_PTZ = "camera.ptz"  # a PTZ move or preset sent to a camera
    PTZ_LEASE = "ptz.lease"  # a camera's PTZ control taken, taken over, released, ended home
    PTZ_HOME = "ptz.home"  # a camera sent home by the node after it was left idle
    ONVIF_DISCOVER = "onvif.discover"  # a discovery run started (its targets; no password)


@dataclass(frozen=True)
class AuditEntry:
    user: str
    # An AuditAction when the service writes it; read back from the table as text.
    action: str
    outcome: str = "ok"
    camera_id: str | None = None
    client: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)
    id: int | None = None
    # The acting user's id, looked up from ``user`` when written; None when no user of that
    # name existed at ``at``, or when the actor is not a user (``actor_is_user``).
    user_id: int | None = None
    actor_is_user: bool = True  # False for the command line's "cli"


@dataclass(frozen=True)
class AuditQuery:
    user: str | None = None  # everyone who acted under this name
    user_id: int | None = None  # one user, whatever their name
    camera_id: str | None = None
    action: str | None = None
    since: float | None = None
    until: float | None = None
    before_id: int | None = None
    limit: int = 100


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: queue.Queue[AuditEntry | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._write_forever, name="audit", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def record(self, entry: AuditEntry) -> None:
        if self._thread is None:  # not started (command-line use): write through
            self._write([entry])
        else:
            self._queue.put(entry)

    def flush(self) -> None:
        if self._thread is not None:
            self._queue.join()

    def query(self, q: AuditQuery) -> list[AuditEntry]:
        self.flush()
        t = audit_table
        statement = select(t).order_by(t.c.id.desc()).limit(max(1, min(q.limit, MAX_PAGE)))
        if q.user is not None:
            statement = statement.where(t.c.user_name == q.user)
        if q.user_id is not None:
            statement = statement.where(t.c.user_id == q.user_id)
        if q.camera_id is not None:
            statement = statement.where(t.c.camera_id == q.camera_id)
        if q.action is not None:
            statement = statement.where(t.c.action == q.action)
        if q.since is not None:
            statement = statement.where(t.c.at >= q.since)
        if q.until is not None:
            statement = statement.where(t.c.at < q.until)
        if q.before_id is not None:
            statement = statement.where(t.c.id < q.before_id)
        with self._engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [
            AuditEntry(
                id=int(m["id"]),
                at=float(m["at"]),
                user=str(m["user_name"]),
                user_id=m["user_id"],
                action=str(m["action"]),
                camera_id=m["camera_id"],
                client=str(m["client"]),
                outcome=str(m["outcome"]),
                detail=json.loads(m["detail"]),
            )
            for m in (row._mapping for row in rows)
        ]

    def _write_forever(self) -> None:
        while True:
            entries: list[AuditEntry] = []
            first = self._queue.get()
            stop = first is None
            if first is not None:
                entries.append(first)
            while len(entries) < BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                else:
                    entries.append(more)
            try:
                if entries:
                    self._write(entries)
            except Exception:
                # Losing the audit trail silently would be worse than a loud log line.
                log.exception("could not write %d audit entries", len(entries))
            finally:
                for _ in range(len(entries) + (1 if stop else 0)):
                    self._queue.task_done()
            if stop:
                return

    def _write(self, entries: list[AuditEntry]) -> None:
        with self._engine.begin() as connection:
            user_ids = _user_ids(connection, entries)
            rows = [
                {
                    "at": e.at,
                    "user_name": e.user[:128],
                    "user_id": user_id,
                    "action": e.action,
                    "camera_id": e.camera_id,
                    "client": e.client[:64],
                    "outcome": e.outcome,
                    "detail": json.dumps(e.detail, sort_keys=True, default=str),
                }
                for e, user_id in zip(entries, user_ids, strict=True)
            ]
            connection.execute(insert(audit_table), rows)


def _user_ids(connection: Connection, entries: list[AuditEntry]) -> list[int | None]:
    """Each entry's acting user: the id it carries, else that of the user of its name if
    one was created before the entry's moment, else None."""
    names = {e.user for e in entries if e.actor_is_user and e.user_id is None}
    users: dict[str, tuple[int, float]] = {}
    if names:
        found = connection.execute(
            select(UserRow.name, UserRow.id, UserRow.created_at).where(UserRow.name.in_(names))
        ).all()
        users = {name: (user_id, created_at) for name, user_id, created_at in found}
    ids: list[int | None] = []
    for e in entries:
        user = users.get(e.user) if e.actor_is_user else None
        if e.user_id is not None:
            ids.append(e.user_id)
        elif user is not None and user[1] <= e.at:
            ids.append(user[0])
        else:
            ids.append(None)
    return ids
