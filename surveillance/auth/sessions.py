"""Sign-in sessions: created at sign-in, found by the cookie's secret, ended by sign-out,
idle expiry, maximum age, or a change to the user (see :mod:`.users`)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete, select

from surveillance.auth.passwords import secret_hash
from surveillance.auth.principal import Principal, User
from surveillance.auth.tables import SessionRow, UserRow
from surveillance.auth.users import user_of
from surveillance.db.orm import Transactions

# Writing last-seen on every request would make every API call a write; a minute's
# precision is plenty for idle expiry.
TOUCH_EVERY_S = 60.0


@dataclass(frozen=True)
class SessionPolicy:
    idle_s: float = 3600.0
    max_s: float = 12 * 3600.0


@dataclass(frozen=True)
class NewSession:
    secret: str
    csrf_token: str
    expires_at: float
    principal: Principal


class SessionStore:
    def __init__(self, transactions: Transactions, policy: SessionPolicy) -> None:
        self._transactions = transactions
        self.policy = policy

    def create_session(self, user: User, client: str) -> NewSession:
        secret = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = time.time()
        expires_at = now + self.policy.max_s
        hashed = secret_hash(secret)
        with self._transactions.begin() as session:
            session.add(
                SessionRow(
                    secret_hash=hashed,
                    user_id=user.id,
                    csrf_token=csrf,
                    client=client[:64],
                    created_at=now,
                    last_seen_at=now,
                    expires_at=expires_at,
                )
            )
        principal = Principal(user=user, session_hash=hashed, csrf_token=csrf)
        return NewSession(secret, csrf, expires_at, principal)

    def session_principal(self, secret: str) -> Principal | None:
        """Who the session with this secret signs in, if it is still valid; an expired
        session, or one of a disabled user, is ended here."""
        hashed = secret_hash(secret)
        now = time.time()
        with self._transactions.begin() as session:
            found = session.execute(
                select(SessionRow, UserRow)
                .join(UserRow, UserRow.id == SessionRow.user_id)
                .where(SessionRow.secret_hash == hashed)
            ).first()
            if found is None:
                return None
            row, user_row = found
            user = user_of(user_row)
            idle = now - row.last_seen_at
            if now >= row.expires_at or idle > self.policy.idle_s or user.disabled:
                session.delete(row)
                return None
            # Short idle limits (tests, kiosks) need a finer touch than the default minute.
            if idle > min(TOUCH_EVERY_S, self.policy.idle_s / 10):
                row.last_seen_at = now
            return Principal(user=user, session_hash=hashed, csrf_token=row.csrf_token)

    def end_session(self, hashed: str) -> int | None:
        """The id of the session's user (None: there was no such session)."""
        with self._transactions.begin() as session:
            return session.scalars(
                delete(SessionRow)
                .where(SessionRow.secret_hash == hashed)
                .returning(SessionRow.user_id)
            ).first()
