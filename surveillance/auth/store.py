"""Users, sessions and API tokens in the node's database: one store per part, composed.

:class:`AuthStore` is what the API, the commands and the demo hold: it opens the three
parts (:mod:`.users`, :mod:`.sessions`, :mod:`.tokens`) on one engine and offers their
methods under one name. The names below are re-exported so existing imports keep working.

Whoever must act at once when someone's access narrows or ends (live views and event
streams opened with it, on this node and, in cluster mode, on the others) registers with
:meth:`AuthStore.on_access_changed`; it is told after the change is committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Engine

from surveillance.auth.errors import AuthError, UnknownUser, UserExists
from surveillance.auth.passwords import secret_hash
from surveillance.auth.principal import User
from surveillance.auth.roles import Role
from surveillance.auth.sessions import NewSession, SessionPolicy, SessionStore
from surveillance.auth.tokens import TokenInfo, TokenStore
from surveillance.auth.users import UserStore, check_user_name
from surveillance.db.orm import Transactions

__all__ = [
    "AccessChange",
    "AuthError",
    "AuthStore",
    "NewSession",
    "SessionPolicy",
    "TokenInfo",
    "UnknownUser",
    "UserExists",
    "check_user_name",
    "secret_hash",
]


@dataclass(frozen=True)
class AccessChange:
    """Whose access just narrowed or ended: one session (signed out), one API token
    (revoked), or a user (disabled, removed, role, scope or password changed: every
    credential of theirs). ``user_id`` is set whenever it is known."""

    user_id: int | None = None
    session_hash: str | None = None
    token_id: str | None = None


class AuthStore:
    def __init__(self, engine: Engine, policy: SessionPolicy | None = None) -> None:
        transactions = Transactions(engine)
        self.user_store = UserStore(transactions)
        self.session_store = SessionStore(transactions, policy or SessionPolicy())
        self.token_store = TokenStore(transactions, self.user_store)
        users, sessions, tokens = self.user_store, self.session_store, self.token_store
        # The parts' methods, under the names callers have always used.
        self.add_user = users.add_user
        self.users = users.users
        self.user = users.user
        self.require_user = users.require_user
        self.is_last_admin = users.is_last_admin
        self.check_password = users.check_password
        self.create_session = sessions.create_session
        self.session_principal = sessions.session_principal
        self.create_token = tokens.create_token
        self.tokens = tokens.tokens
        self.token_principal = tokens.token_principal
        self._access_listeners: list[Callable[[AccessChange], None]] = []

    def on_access_changed(self, listener: Callable[[AccessChange], None]) -> None:
        """``listener(change)`` in the writer's thread after each committed change that
        narrows or ends someone's access; quick, and it must not raise."""
        self._access_listeners.append(listener)

    def _access_changed(self, change: AccessChange) -> None:
        for listener in self._access_listeners:
            listener(change)

    # -- the changes that narrow or end access ---------------------------------------------
    def update_user(
        self,
        name: str,
        *,
        role: Role | None = None,
        platforms: Iterable[str] | None = None,
        cameras: Iterable[str] | None = None,
        disabled: bool | None = None,
    ) -> User:
        user = self.user_store.update_user(
            name, role=role, platforms=platforms, cameras=cameras, disabled=disabled
        )
        self._access_changed(AccessChange(user_id=user.id))
        return user

    def set_password(self, name: str, password: str) -> User:
        """Sets a new password and ends every session of the user."""
        user = self.user_store.set_password(name, password)
        self._access_changed(AccessChange(user_id=user.id))
        return user

    def remove_user(self, name: str) -> None:
        user = self.user_store.user(name)
        self.user_store.remove_user(name)
        if user is not None:
            self._access_changed(AccessChange(user_id=user.id))

    def end_session(self, hashed: str) -> None:
        user_id = self.session_store.end_session(hashed)
        self._access_changed(AccessChange(user_id=user_id, session_hash=hashed))

    def revoke_token(self, token_id: str) -> bool:
        """Whether a token was revoked now (False: no such token, or revoked already)."""
        revoked = self.token_store.revoke_token(token_id)
        if revoked:
            self._access_changed(AccessChange(token_id=token_id))
        return revoked

    @property
    def policy(self) -> SessionPolicy:
        return self.session_store.policy
