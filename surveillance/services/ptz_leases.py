"""Who steers each camera: the ``ptz_leases`` table (migration 0014) and its one store.

One row per camera that someone steered or holds: its holder, the holder's role, when the
hold was taken and ends, and when the last command came (NULL: held, never commanded). A
lease is held while ``expires_at`` is ahead; a row whose lease ended stays until the
camera went home (``last_command_at`` set: it was steered and is waiting for its idle
return home), so a released camera still goes home. Any node reads the table (a wall on
any node shows who steers); the node holding the camera writes it, one transaction per
change (``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR UPDATE`` on PostgreSQL), so two
operators reaching for one camera at once cannot both get it. Times are Unix seconds of
the writing node's clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Engine, Float, String, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from surveillance.auth.roles import Role
from surveillance.db.orm import Base, Transactions, from_row
from surveillance.errors import Conflict

ID_LENGTH = 64  # camera ids (config Identifier)
USER_LENGTH = 128
ROLE_LENGTH = 16
# Who may take a camera from whom: strictly higher only.
ROLE_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.HANDLER: 2, Role.ADMIN: 3}

LeaseEvent = Literal["taken", "renewed", "taken-over"]


class PtzLeaseRow(Base):
    __tablename__ = "ptz_leases"

    camera_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    holder: Mapped[str] = mapped_column(String(USER_LENGTH))
    role: Mapped[str] = mapped_column(String(ROLE_LENGTH))
    taken_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    last_command_at: Mapped[float | None] = mapped_column(Float)


@dataclass(frozen=True)
class PtzLease:
    camera_id: str
    holder: str
    role: str
    taken_at: float
    expires_at: float
    last_command_at: float | None

    def held(self, now: float) -> bool:
        return self.expires_at > now

    @property
    def rank(self) -> int:
        return rank_of(self.role)


@dataclass(frozen=True)
class Taken:
    lease: PtzLease
    event: LeaseEvent
    previous_holder: str | None  # who had it (a take-over), else None


def rank_of(role: str) -> int:
    try:
        return ROLE_RANK[Role(role)]
    except ValueError:
        return 0


class PtzLeaseHeld(Conflict):
    """Another user steers the camera and the caller may not take it from them."""

    def __init__(self, lease: PtzLease, now: float) -> None:
        self.lease = lease
        left = max(1, round(lease.expires_at - now))
        super().__init__(
            f"camera {lease.camera_id} is steered by {lease.holder} ({lease.role}) for "
            f"{left} s more; only a higher role may take it over"
        )


class PtzLeaseStore:
    def __init__(self, engine: Engine) -> None:
        self._transactions = Transactions(engine)

    def get(self, camera_id: str) -> PtzLease | None:
        with self._transactions.begin() as session:
            row = session.get(PtzLeaseRow, camera_id)
            return None if row is None else from_row(PtzLease, row)

    def held(self, now: float | None = None) -> list[PtzLease]:
        """Every lease held now."""
        now = time.time() if now is None else now
        with self._transactions.begin() as session:
            rows = session.scalars(select(PtzLeaseRow).where(PtzLeaseRow.expires_at > now)).all()
            return [from_row(PtzLease, row) for row in rows]

    def take(
        self,
        camera_id: str,
        holder: str,
        role: Role,
        lease_s: float,
        *,
        takeover: bool = False,
        command: bool = False,
        now: float | None = None,
    ) -> Taken:
        """Take or renew ``holder``'s lease (``command``: a command comes with it, the
        camera was steered). Held by another: PtzLeaseHeld, unless ``takeover`` by a
        strictly higher role."""
        for attempt in (1, 2):
            try:
                return self._take(camera_id, holder, role, lease_s, takeover, command, now)
            except IntegrityError:
                # Two first takes of one camera at once (PostgreSQL: no row to lock yet);
                # the second attempt finds the other's row and decides against it.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _take(
        self,
        camera_id: str,
        holder: str,
        role: Role,
        lease_s: float,
        takeover: bool,
        command: bool,
        now: float | None,
    ) -> Taken:
        with self._transactions.begin() as session:
            now = time.time() if now is None else now
            row = session.get(PtzLeaseRow, camera_id, with_for_update=True)
            previous = None if row is None else from_row(PtzLease, row)
            event: LeaseEvent = "taken"
            if previous is not None and previous.held(now):
                if previous.holder == holder:
                    event = "renewed"
                elif takeover and ROLE_RANK[role] > previous.rank:
                    event = "taken-over"
                else:
                    raise PtzLeaseHeld(previous, now)
            if row is None:
                row = PtzLeaseRow(camera_id=camera_id, last_command_at=None)
                session.add(row)
            if event != "renewed":
                row.taken_at = now
            row.holder = holder[:USER_LENGTH]
            row.role = role.value
            row.expires_at = now + lease_s
            if command:
                row.last_command_at = now
            session.flush()
            return Taken(
                from_row(PtzLease, row),
                event,
                previous.holder if event == "taken-over" and previous is not None else None,
            )

    def steered(self, camera_id: str, holder: str, now: float | None = None) -> None:
        """A command of ``holder``'s reached the camera: its idle time starts again."""
        with self._transactions.begin() as session:
            row = session.get(PtzLeaseRow, camera_id, with_for_update=True)
            if row is not None and row.holder == holder:
                row.last_command_at = time.time() if now is None else now

    def release(
        self, camera_id: str, by: str, role: Role, *, keep_for_home: bool, now: float | None = None
    ) -> PtzLease | None:
        """End the lease (its holder, or a strictly higher role). The row stays when the
        camera was steered and ``keep_for_home`` (its idle return home is still due).
        Returns the lease ended, None when none was held."""
        with self._transactions.begin() as session:
            now = time.time() if now is None else now
            row = session.get(PtzLeaseRow, camera_id, with_for_update=True)
            if row is None:
                return None
            lease = from_row(PtzLease, row)
            if not lease.held(now):
                return None
            if lease.holder != by and ROLE_RANK[role] <= lease.rank:
                raise PtzLeaseHeld(lease, now)
            if keep_for_home and row.last_command_at is not None:
                row.expires_at = now
            else:
                session.delete(row)
            return lease

    def idle(self, commanded_before: float) -> list[PtzLease]:
        """Cameras steered last before ``commanded_before``: due to go home."""
        with self._transactions.begin() as session:
            rows = session.scalars(
                select(PtzLeaseRow).where(PtzLeaseRow.last_command_at <= commanded_before)
            ).all()
            return [from_row(PtzLease, row) for row in rows]

    def went_home(self, lease: PtzLease) -> bool:
        """Remove the row of a camera sent home, unless a command came since (then it
        stays steered). Whether it was removed."""
        with self._transactions.begin() as session:
            return _delete_if_unchanged(session, lease)

    def forget(self, camera_id: str) -> None:
        """The camera's row, whatever it holds (a camera that cannot go home)."""
        with self._transactions.begin() as session:
            session.execute(delete(PtzLeaseRow).where(PtzLeaseRow.camera_id == camera_id))


def _delete_if_unchanged(session: Session, lease: PtzLease) -> bool:
    result = session.execute(
        delete(PtzLeaseRow).where(
            PtzLeaseRow.camera_id == lease.camera_id,
            PtzLeaseRow.last_command_at == lease.last_command_at,
        )
    )
    return bool(getattr(result, "rowcount", 0))
