"""Users, sessions and API tokens in the node's database: one store per part, composed.

:class:`AuthStore` is what the API, the commands and the demo hold: it opens the three
parts (:mod:`.users`, :mod:`.sessions`, :mod:`.tokens`) on one engine and offers their
methods under one name. The names below are re-exported so existing imports keep working.
"""

from __future__ import annotations

from sqlalchemy import Engine

from surveillance.auth.errors import AuthError, UnknownUser, UserExists
from surveillance.auth.passwords import secret_hash
from surveillance.auth.sessions import NewSession, SessionPolicy, SessionStore
from surveillance.auth.tokens import TokenInfo, TokenStore
from surveillance.auth.users import UserStore, check_user_name
from surveillance.db.orm import Transactions

__all__ = [
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
        self.update_user = users.update_user
        self.set_password = users.set_password
        self.is_last_admin = users.is_last_admin
        self.remove_user = users.remove_user
        self.check_password = users.check_password
        self.create_session = sessions.create_session
        self.session_principal = sessions.session_principal
        self.end_session = sessions.end_session
        self.create_token = tokens.create_token
        self.tokens = tokens.tokens
        self.revoke_token = tokens.revoke_token
        self.token_principal = tokens.token_principal

    @property
    def policy(self) -> SessionPolicy:
        return self.session_store.policy
