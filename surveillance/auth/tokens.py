"""API tokens: created for a user (optionally limited to some of the user's permissions),
shown once, stored only hashed, found by their secret, revoked by id."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select, update

from surveillance.auth.errors import AuthError
from surveillance.auth.passwords import secret_hash
from surveillance.auth.principal import Principal
from surveillance.auth.roles import ROLE_PERMISSIONS, Permission
from surveillance.auth.tables import TokenRow, UserRow
from surveillance.auth.users import UserStore, user_of
from surveillance.db.orm import Transactions, from_row

TOKEN_PREFIX = "svt_"  # noqa: S105 - a prefix, not a secret
# Writing last-used on every request would make every API call a write; a minute's
# precision is plenty for an operator's "last used".
TOUCH_EVERY_S = 60.0


@dataclass(frozen=True)
class TokenInfo:
    id: str
    user: str
    label: str
    created_at: float
    last_used_at: float | None
    revoked: bool
    permissions: frozenset[Permission] | None = None  # None: all of the user's


def _permissions(stored: str | None) -> frozenset[Permission] | None:
    return None if stored is None else frozenset(Permission(p) for p in json.loads(stored))


def _info(row: TokenRow, user_name: str) -> TokenInfo:
    return from_row(
        TokenInfo,
        row,
        user=user_name,
        revoked=row.revoked_at is not None,
        permissions=_permissions(row.permissions),
    )


class TokenStore:
    def __init__(self, transactions: Transactions, users: UserStore) -> None:
        self._transactions = transactions
        self._users = users

    def create_token(
        self, user_name: str, label: str, permissions: Iterable[Permission] | None = None
    ) -> tuple[TokenInfo, str]:
        """A new token for the user, and its secret: shown once, stored only hashed.
        ``permissions`` limits the token to those of the user's permissions."""
        user = self._users.require_user(user_name)
        label = label.strip()[:128] or "token"
        limited = None if permissions is None else frozenset(permissions)
        if limited is not None:
            beyond = sorted(p.value for p in limited - ROLE_PERMISSIONS[user.role])
            if beyond or not limited:
                raise AuthError(
                    f"a token of the {user.role.value} role cannot have {', '.join(beyond)}"
                    if beyond
                    else "a limited token needs at least one permission"
                )
        token_id = secrets.token_hex(6)
        secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        row = TokenRow(
            id=token_id,
            user_id=user.id,
            label=label,
            secret_hash=secret_hash(secret),
            permissions=None if limited is None else json.dumps(sorted(p.value for p in limited)),
            created_at=time.time(),
            last_used_at=None,
            revoked_at=None,
        )
        with self._transactions.begin() as session:
            session.add(row)
        return _info(row, user.name), secret

    def tokens(self) -> list[TokenInfo]:
        with self._transactions.begin() as session:
            rows = session.execute(
                select(TokenRow, UserRow.name)
                .join(UserRow, UserRow.id == TokenRow.user_id)
                .order_by(TokenRow.created_at)
            ).all()
            return [_info(token, name) for token, name in rows]

    def revoke_token(self, token_id: str) -> bool:
        """Whether a token was revoked now (False: no such token, or revoked already)."""
        with self._transactions.begin() as session:
            revoked = session.scalars(
                update(TokenRow)
                .where(TokenRow.id == token_id, TokenRow.revoked_at.is_(None))
                .values(revoked_at=time.time())
                .returning(TokenRow.id)
            ).all()
        return bool(revoked)

    def token_principal(self, secret: str) -> Principal | None:
        if not secret.startswith(TOKEN_PREFIX):
            return None
        with self._transactions.begin() as session:
            found = session.execute(
                select(TokenRow, UserRow)
                .join(UserRow, UserRow.id == TokenRow.user_id)
                .where(TokenRow.secret_hash == secret_hash(secret))
            ).first()
            if found is None:
                return None
            token, user_row = found
            user = user_of(user_row)
            if token.revoked_at is not None or user.disabled:
                return None
            now = time.time()
            if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY_S:
                token.last_used_at = now
            return Principal(
                user=user, token_id=token.id, token_permissions=_permissions(token.permissions)
            )
