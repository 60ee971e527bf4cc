"""Users, sessions and API tokens in the node's database."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from surveillance.auth.passwords import hash_password, needs_rehash, verify_password
from surveillance.auth.principal import Principal, User
from surveillance.auth.roles import ROLE_PERMISSIONS, Permission, Role
from surveillance.auth.scope import Scope
from surveillance.auth.tables import sessions_table, tokens_table, users_table

# Printable, no surrounding blanks; anything else a name may hold is shown as text.
USER_NAME = re.compile(r"^[^\x00-\x1f\x7f\s](?:[^\x00-\x1f\x7f]{0,62}[^\x00-\x1f\x7f\s])?$")
TOKEN_PREFIX = "svt_"  # noqa: S105 - a prefix, not a secret
# Writing last-seen on every request would make every API call a write; a minute's
# precision is plenty for idle expiry.
TOUCH_EVERY_S = 60.0


class AuthError(ValueError):
    """A user or token request that cannot be done; the message says why."""


class UnknownUser(AuthError):
    pass


class UserExists(AuthError):
    pass


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


@dataclass(frozen=True)
class TokenInfo:
    id: str
    user: str
    label: str
    created_at: float
    last_used_at: float | None
    revoked: bool
    permissions: frozenset[Permission] | None = None  # None: all of the user's


def _permissions(raw: object) -> frozenset[Permission] | None:
    return None if raw is None else frozenset(Permission(p) for p in json.loads(str(raw)))


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_user_name(name: str) -> str:
    if not USER_NAME.match(name):
        raise AuthError("user name must be 1-64 printable characters without outer spaces")
    return name


def _user(row: Row[tuple[object, ...]]) -> User:
    m = row._mapping
    return User(
        id=int(m["id"]),
        name=str(m["name"]),
        role=Role(m["role"]),
        scope=Scope.of(json.loads(m["platforms"]), json.loads(m["cameras"])),
        disabled=bool(m["disabled"]),
        created_at=float(m["created_at"]),
        password_changed_at=float(m["password_changed_at"]),
    )


def _check_scope(role: Role, scope: Scope) -> None:
    if role is Role.ADMIN and scope.limited:
        # An admin can edit any user's scope, their own included, so a limit would not hold.
        raise AuthError("an admin cannot be limited to platforms or cameras")


class AuthStore:
    def __init__(self, engine: Engine, policy: SessionPolicy | None = None) -> None:
        self._engine = engine
        self.policy = policy or SessionPolicy()

    # -- users -------------------------------------------------------------------------

    def add_user(
        self,
        name: str,
        role: Role,
        password: str,
        platforms: Iterable[str] = (),
        cameras: Iterable[str] = (),
    ) -> User:
        check_user_name(name)
        scope = Scope.of(platforms, cameras)
        _check_scope(role, scope)
        password_hash = hash_password(password)
        now = time.time()
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    insert(users_table).values(
                        name=name,
                        role=role.value,
                        password_hash=password_hash,
                        platforms=json.dumps(sorted(scope.platforms)),
                        cameras=json.dumps(sorted(scope.cameras)),
                        disabled=False,
                        created_at=now,
                        password_changed_at=now,
                    )
                )
        except IntegrityError:
            raise UserExists(f"user {name!r} exists already") from None
        return self.require_user(name)

    def users(self) -> list[User]:
        with self._engine.connect() as connection:
            rows = connection.execute(select(users_table).order_by(users_table.c.name)).all()
        return [_user(row) for row in rows]

    def user(self, name: str) -> User | None:
        with self._engine.connect() as connection:
            row = connection.execute(select(users_table).where(users_table.c.name == name)).first()
        return None if row is None else _user(row)

    def require_user(self, name: str) -> User:
        user = self.user(name)
        if user is None:
            raise UnknownUser(f"no user {name!r}")
        return user

    def update_user(
        self,
        name: str,
        *,
        role: Role | None = None,
        platforms: Iterable[str] | None = None,
        cameras: Iterable[str] | None = None,
        disabled: bool | None = None,
    ) -> User:
        user = self.require_user(name)
        new_role = role or user.role
        scope = Scope.of(
            user.scope.platforms if platforms is None else platforms,
            user.scope.cameras if cameras is None else cameras,
        )
        _check_scope(new_role, scope)
        values: dict[str, object] = {
            "role": new_role.value,
            "platforms": json.dumps(sorted(scope.platforms)),
            "cameras": json.dumps(sorted(scope.cameras)),
        }
        if disabled is not None:
            values["disabled"] = disabled
        with self._engine.begin() as connection:
            connection.execute(
                update(users_table).where(users_table.c.id == user.id).values(values)
            )
            if disabled or (role is not None and role != user.role):
                # A disabled user, or one whose rights changed, signs in again.
                connection.execute(
                    delete(sessions_table).where(sessions_table.c.user_id == user.id)
                )
        return self.require_user(name)

    def set_password(self, name: str, password: str) -> User:
        """Sets a new password and ends every session of the user."""
        user = self.require_user(name)
        password_hash = hash_password(password)
        with self._engine.begin() as connection:
            connection.execute(
                update(users_table)
                .where(users_table.c.id == user.id)
                .values(password_hash=password_hash, password_changed_at=time.time())
            )
            connection.execute(delete(sessions_table).where(sessions_table.c.user_id == user.id))
        return self.require_user(name)

    def is_last_admin(self, name: str) -> bool:
        """Whether this user is the only enabled admin (who must not be removed, disabled
        or demoted: nobody could manage users any more)."""
        admins = [u.name for u in self.users() if u.role is Role.ADMIN and not u.disabled]
        return admins == [name]

    def remove_user(self, name: str) -> None:
        user = self.require_user(name)
        with self._engine.begin() as connection:
            connection.execute(delete(sessions_table).where(sessions_table.c.user_id == user.id))
            connection.execute(delete(tokens_table).where(tokens_table.c.user_id == user.id))
            connection.execute(delete(users_table).where(users_table.c.id == user.id))

    def check_password(self, name: str, password: str) -> User | None:
        """The user if the name and password match and the user is enabled."""
        with self._engine.connect() as connection:
            row = connection.execute(select(users_table).where(users_table.c.name == name)).first()
        stored = None if row is None else str(row._mapping["password_hash"])
        if not verify_password(stored, password) or row is None:
            return None
        user = _user(row)
        if user.disabled:
            return None
        if stored is not None and needs_rehash(stored):
            with self._engine.begin() as connection:
                connection.execute(
                    update(users_table)
                    .where(users_table.c.id == user.id)
                    .values(password_hash=hash_password(password))
                )
        return user

    # -- sessions ----------------------------------------------------------------------

    def create_session(self, user: User, client: str) -> NewSession:
        secret = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = time.time()
        expires_at = now + self.policy.max_s
        hashed = secret_hash(secret)
        with self._engine.begin() as connection:
            connection.execute(
                insert(sessions_table).values(
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
        hashed = secret_hash(secret)
        now = time.time()
        statement = (
            select(
                users_table,
                sessions_table.c.csrf_token,
                sessions_table.c.last_seen_at,
                sessions_table.c.expires_at,
            )
            .join(users_table, users_table.c.id == sessions_table.c.user_id)
            .where(sessions_table.c.secret_hash == hashed)
        )
        with self._engine.connect() as connection:
            row = connection.execute(statement).first()
        if row is None:
            return None
        m = row._mapping
        expired = (
            now >= float(m["expires_at"]) or now - float(m["last_seen_at"]) > self.policy.idle_s
        )
        user = _user(row)
        if expired or user.disabled:
            self.end_session(hashed)
            return None
        # Short idle limits (tests, kiosks) need a finer touch than the default minute.
        if now - float(m["last_seen_at"]) > min(TOUCH_EVERY_S, self.policy.idle_s / 10):
            with self._engine.begin() as connection:
                connection.execute(
                    update(sessions_table)
                    .where(sessions_table.c.secret_hash == hashed)
                    .values(last_seen_at=now)
                )
        return Principal(user=user, session_hash=hashed, csrf_token=str(m["csrf_token"]))

    def end_session(self, hashed: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(delete(sessions_table).where(sessions_table.c.secret_hash == hashed))

    # -- API tokens --------------------------------------------------------------------

    def create_token(
        self, user_name: str, label: str, permissions: Iterable[Permission] | None = None
    ) -> tuple[TokenInfo, str]:
        """A new token for the user, and its secret: shown once, stored only hashed.
        ``permissions`` limits the token to those of the user's permissions."""
        user = self.require_user(user_name)
        label = label.strip()[:128] or "token"
        limited = None if permissions is None else frozenset(permissions)
        if limited is not None:
            beyond = sorted(p.value for p in limited - ROLE_PERMISSIONS[user.role])
            if beyond or not limited:
                raise AuthError(
                    f"a {user.role.value}'s token cannot have {', '.join(beyond)}"
                    if beyond
                    else "a limited token needs at least one permission"
                )
        token_id = secrets.token_hex(6)
        secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        now = time.time()
        with self._engine.begin() as connection:
            connection.execute(
                insert(tokens_table).values(
                    id=token_id,
                    user_id=user.id,
                    label=label,
                    secret_hash=secret_hash(secret),
                    permissions=None
                    if limited is None
                    else json.dumps(sorted(p.value for p in limited)),
                    created_at=now,
                    last_used_at=None,
                    revoked_at=None,
                )
            )
        return TokenInfo(token_id, user.name, label, now, None, False, limited), secret

    def tokens(self) -> list[TokenInfo]:
        statement = (
            select(tokens_table, users_table.c.name.label("user_name"))
            .join(users_table, users_table.c.id == tokens_table.c.user_id)
            .order_by(tokens_table.c.created_at)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [
            TokenInfo(
                id=str(m["id"]),
                user=str(m["user_name"]),
                label=str(m["label"]),
                created_at=float(m["created_at"]),
                last_used_at=None if m["last_used_at"] is None else float(m["last_used_at"]),
                revoked=m["revoked_at"] is not None,
                permissions=_permissions(m["permissions"]),
            )
            for m in (row._mapping for row in rows)
        ]

    def revoke_token(self, token_id: str) -> bool:
        with self._engine.begin() as connection:
            result = connection.execute(
                update(tokens_table)
                .where(tokens_table.c.id == token_id, tokens_table.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
        return bool(result.rowcount)

    def token_principal(self, secret: str) -> Principal | None:
        if not secret.startswith(TOKEN_PREFIX):
            return None
        statement = (
            select(
                users_table,
                tokens_table.c.id.label("token_id"),
                tokens_table.c.permissions.label("token_permissions"),
                tokens_table.c.last_used_at,
                tokens_table.c.revoked_at,
            )
            .join(users_table, users_table.c.id == tokens_table.c.user_id)
            .where(tokens_table.c.secret_hash == secret_hash(secret))
        )
        with self._engine.connect() as connection:
            row = connection.execute(statement).first()
        if row is None:
            return None
        m = row._mapping
        user = _user(row)
        if m["revoked_at"] is not None or user.disabled:
            return None
        now = time.time()
        last_used = m["last_used_at"]
        if last_used is None or now - float(last_used) > TOUCH_EVERY_S:
            with self._engine.begin() as connection:
                connection.execute(
                    update(tokens_table)
                    .where(tokens_table.c.id == m["token_id"])
                    .values(last_used_at=now)
                )
        return Principal(
            user=user,
            token_id=str(m["token_id"]),
            token_permissions=_permissions(m["token_permissions"]),
        )
