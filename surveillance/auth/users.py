"""Users: names, roles, scopes and passwords.

Password hashing is slow on purpose (argon2id), so it runs outside any transaction: on
SQLite a transaction holds the database's write lock (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from surveillance.auth.errors import AuthError, UnknownUser, UserExists
from surveillance.auth.passwords import hash_password, needs_rehash, verify_password
from surveillance.auth.principal import User
from surveillance.auth.roles import Role
from surveillance.auth.scope import Scope
from surveillance.auth.tables import SessionRow, TokenRow, UserRow
from surveillance.db.orm import Transactions, from_row

# ASCII letters, digits, '.', '_' and '-', starting with a letter or a digit, 1-64 long: a
# name is safe in a URL path segment (/api/users/{name}: "a/b" could be made but never
# managed), in a command-line argument (no leading '-'), in a log line and on a page; and
# no other script's letter can pass for a Latin one (a Cyrillic "a" for a Latin "a").
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
USER_NAME_RULE = (
    "user name must be 1-64 ASCII letters, digits, '.', '_' or '-', "
    "starting with a letter or a digit"
)

# Characters that pass for others, after NFKC and case folding: the ASCII ones that fonts
# draw alike (I/l/1, O/0), and the Cyrillic and Greek letters that look Latin, which names
# made before the rule above may hold. Two names that fold to the same key are one name.
_LOOKALIKE_LETTERS = {
    "CYRILLIC SMALL LETTER A": "a", "CYRILLIC SMALL LETTER VE": "b",
    "CYRILLIC SMALL LETTER IE": "e", "CYRILLIC SMALL LETTER KA": "k",
    "CYRILLIC SMALL LETTER EM": "m", "CYRILLIC SMALL LETTER EN": "h",
    "CYRILLIC SMALL LETTER O": "o", "CYRILLIC SMALL LETTER ER": "p",
    "CYRILLIC SMALL LETTER ES": "c", "CYRILLIC SMALL LETTER TE": "t",
    "CYRILLIC SMALL LETTER U": "y", "CYRILLIC SMALL LETTER HA": "x",
    "CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I": "l", "CYRILLIC SMALL LETTER JE": "j",
    "CYRILLIC SMALL LETTER DZE": "s", "CYRILLIC SMALL LETTER KOMI DE": "d",
    "CYRILLIC SMALL LETTER PALOCHKA": "l", "CYRILLIC SMALL LETTER SHHA": "h",
    "CYRILLIC SMALL LETTER QA": "q", "CYRILLIC SMALL LETTER WE": "w",
    "GREEK SMALL LETTER ALPHA": "a", "GREEK SMALL LETTER BETA": "b",
    "GREEK SMALL LETTER EPSILON": "e", "GREEK SMALL LETTER IOTA": "l",
    "GREEK SMALL LETTER KAPPA": "k", "GREEK SMALL LETTER NU": "v",
    "GREEK SMALL LETTER OMICRON": "o", "GREEK SMALL LETTER RHO": "p",
    "GREEK SMALL LETTER TAU": "t", "GREEK SMALL LETTER UPSILON": "u",
    "GREEK SMALL LETTER CHI": "x",
}  # fmt: skip
_LOOKALIKES = str.maketrans(
    {"0": "o", "1": "l", "i": "l"}
    | {unicodedata.lookup(name): latin for name, latin in _LOOKALIKE_LETTERS.items()}
)
# Pairs drawn like one letter, and separators, which a reader skims over ("hand1",
# "hand_1", "h-and1" and "hand1." read as one name): folded after the letters above.
_LOOKALIKE_PAIRS = (("rn", "m"), ("vv", "w"), ("cl", "d"))
_SEPARATORS = str.maketrans("", "", "._-")


def check_user_name(name: str) -> str:
    if not USER_NAME.fullmatch(name):
        raise AuthError(USER_NAME_RULE)
    return name


def name_key(name: str) -> str:
    """What a name looks like, for telling look-alikes apart: "Alice", "ALICE", "aIice" and
    "a1ice" have one key, and so do "hand1", "hancl1", "hand_1" and "h-and1". Migration 0004
    keeps a frozen copy for the names it found."""
    key = unicodedata.normalize("NFKC", name).casefold().translate(_LOOKALIKES)
    key = key.translate(_SEPARATORS)
    for pair, single in _LOOKALIKE_PAIRS:
        key = key.replace(pair, single)
    return key


def user_of(row: UserRow) -> User:
    """The user a row stores (scope lists are JSON text in the row)."""
    scope = Scope.of(json.loads(row.platforms), json.loads(row.cameras))
    return from_row(User, row, role=Role(row.role), scope=scope)


def _check_scope(role: Role, scope: Scope) -> None:
    if role is Role.ADMIN and scope.limited:
        # An admin can edit any user's scope, their own included, so a limit would not hold.
        raise AuthError("an admin cannot be limited to platforms or cameras")


class UserStore:
    def __init__(self, transactions: Transactions) -> None:
        self._transactions = transactions

    def add_user(
        self,
        name: str,
        role: Role,
        password: str,
        platforms: Iterable[str] = (),
        cameras: Iterable[str] = (),
    ) -> User:
        check_user_name(name)
        key = name_key(name)
        scope = Scope.of(platforms, cameras)
        _check_scope(role, scope)
        password_hash = hash_password(password)
        now = time.time()
        try:
            with self._transactions.begin() as session:
                alike = session.scalars(
                    select(UserRow.name).where(UserRow.name_key == key)
                ).one_or_none()
                if alike is not None and alike != name:
                    raise UserExists(f"user {name!r} would look like the existing user {alike!r}")
                row = UserRow(
                    name=name,
                    name_key=key,
                    role=role.value,
                    password_hash=password_hash,
                    platforms=json.dumps(sorted(scope.platforms)),
                    cameras=json.dumps(sorted(scope.cameras)),
                    disabled=False,
                    created_at=now,
                    password_changed_at=now,
                )
                session.add(row)
                session.flush()
                return user_of(row)
        except IntegrityError:
            raise UserExists(f"user {name!r} exists already") from None

    def users(self) -> list[User]:
        with self._transactions.begin() as session:
            rows = session.scalars(select(UserRow).order_by(UserRow.name)).all()
            return [user_of(row) for row in rows]

    def user(self, name: str) -> User | None:
        with self._transactions.begin() as session:
            row = _find(session, name)
            return None if row is None else user_of(row)

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
        with self._transactions.begin() as session:
            row = _require(session, name)
            user = user_of(row)
            new_role = role or user.role
            scope = Scope.of(
                user.scope.platforms if platforms is None else platforms,
                user.scope.cameras if cameras is None else cameras,
            )
            _check_scope(new_role, scope)
            row.role = new_role.value
            row.platforms = json.dumps(sorted(scope.platforms))
            row.cameras = json.dumps(sorted(scope.cameras))
            if disabled is not None:
                row.disabled = disabled
            if disabled or (role is not None and role != user.role):
                # A disabled user, or one whose rights changed, signs in again.
                session.execute(delete(SessionRow).where(SessionRow.user_id == row.id))
            session.flush()
            return user_of(row)

    def set_password(self, name: str, password: str) -> User:
        """Sets a new password and ends every session of the user."""
        self.require_user(name)
        password_hash = hash_password(password)
        with self._transactions.begin() as session:
            row = _require(session, name)
            row.password_hash = password_hash
            row.password_changed_at = time.time()
            session.execute(delete(SessionRow).where(SessionRow.user_id == row.id))
            session.flush()
            return user_of(row)

    def is_last_admin(self, name: str) -> bool:
        """Whether this user is the only enabled admin (who must not be removed, disabled
        or demoted: nobody could manage users any more)."""
        admins = [u.name for u in self.users() if u.role is Role.ADMIN and not u.disabled]
        return admins == [name]

    def remove_user(self, name: str) -> None:
        with self._transactions.begin() as session:
            row = _require(session, name)
            session.execute(delete(SessionRow).where(SessionRow.user_id == row.id))
            session.execute(delete(TokenRow).where(TokenRow.user_id == row.id))
            session.delete(row)

    def check_password(self, name: str, password: str) -> User | None:
        """The user if the name and password match and the user is enabled."""
        with self._transactions.begin() as session:
            row = _find(session, name)
            stored = None if row is None else row.password_hash
            user = None if row is None else user_of(row)
        if not verify_password(stored, password) or user is None:
            return None
        if user.disabled:
            return None
        if stored is not None and needs_rehash(stored):
            password_hash = hash_password(password)
            with self._transactions.begin() as session:
                found = session.get(UserRow, user.id)
                if found is not None:
                    found.password_hash = password_hash
        return user


def _find(session: Session, name: str) -> UserRow | None:
    return session.scalars(select(UserRow).where(UserRow.name == name)).one_or_none()


def _require(session: Session, name: str) -> UserRow:
    row = _find(session, name)
    if row is None:
        raise UnknownUser(f"no user {name!r}")
    return row
