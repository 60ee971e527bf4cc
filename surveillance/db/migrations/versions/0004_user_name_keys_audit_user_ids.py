"""User name keys (look-alike names are one name) and the audit log keyed by user id.

``users.name_key`` is each name folded so that look-alikes meet (NFKC, case folding, the
look-alike letters below, separators '.', '_' and '-' dropped, then rn/vv/cl as m/w/d),
under a unique index. A database may hold names from before
the name rule that fold alike; the later of such users gets its id appended to its key,
so the upgrade never fails and the names stay as they are.

``audit_log.user_id`` is the acting user's id. Existing entries get the id of the user of
their name who was created at or before the entry (names are unique at any moment, so
that user is the one who acted); entries of a removed user whose name now belongs to
someone else get none, and stay readable by name. The append-only triggers are lifted for
this one UPDATE, in the migration's transaction, and put back as they were.

User ids are never reused. SQLite without AUTOINCREMENT gives a new row the largest id + 1,
so removing the newest user and adding one handed the same id to the new user, and the
audit log's entries by id to them; PostgreSQL's sequence never goes back. On SQLite the
users table is rebuilt with AUTOINCREMENT, its sequence started past every id the audit log
names; sessions and api_tokens are rebuilt with it (dropping a table their ON DELETE
CASCADE keys point to would delete their rows, foreign keys being on).

Revision ID: 0004
Revises: 0003 (the head at a3edb3b; the lead orders it after 0004 if that lands too)
Create Date: 2026-12-01
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

APPEND_ONLY = "audit log is append-only"
CLI_ACTOR = "cli"  # the command line's entries: no user acted

# A frozen copy of surveillance.auth.users.name_key as of this migration (db/ may not
# import auth/, and a migration must not change when that code does).
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


def _name_key(name: str) -> str:
    key = unicodedata.normalize("NFKC", name).casefold().translate(_LOOKALIKES)
    key = key.translate(str.maketrans("", "", "._-"))
    for pair, single in (("rn", "m"), ("vv", "w"), ("cl", "d")):
        key = key.replace(pair, single)
    return key


def upgrade() -> None:
    op.add_column("users", sa.Column("name_key", sa.String(255), nullable=True))
    bind = op.get_bind()
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("name", sa.String))
    taken: set[str] = set()
    for user_id, name in bind.execute(sa.select(users.c.id, users.c.name).order_by(users.c.id)):
        key = _name_key(name)
        if key in taken:
            key = f"{key}#{user_id}"
        taken.add(key)
        bind.execute(
            sa.text("UPDATE users SET name_key = :key WHERE id = :id"), {"key": key, "id": user_id}
        )
    op.create_index("users_name_key_unique", "users", ["name_key"], unique=True)

    op.add_column("audit_log", sa.Column("user_id", sa.Integer, nullable=True))
    op.create_index("audit_log_user_id_at", "audit_log", ["user_id", "at"])
    with _audit_updates_allowed():
        op.execute(
            sa.text(
                "UPDATE audit_log SET user_id = (SELECT users.id FROM users "
                "WHERE users.name = audit_log.user_name AND users.created_at <= audit_log.at) "
                "WHERE NOT (audit_log.user_name = :cli AND audit_log.client = 'local')"
            ).bindparams(cli=CLI_ACTOR)
        )
    if bind.dialect.name == "sqlite":
        _sqlite_user_ids_never_reused()


# The tables as migrations 0003 and 0004 leave them (in SQLAlchemy's DDL, which reflection
# reads back), users with AUTOINCREMENT; the children's keys point to users_new until the
# rename.
_USERS = """CREATE TABLE users_new (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(64) NOT NULL,
    role VARCHAR(16) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    platforms TEXT NOT NULL,
    cameras TEXT NOT NULL,
    disabled BOOLEAN NOT NULL,
    created_at FLOAT NOT NULL,
    password_changed_at FLOAT NOT NULL,
    name_key VARCHAR(255),
    UNIQUE (name)
)"""
_SESSIONS = """CREATE TABLE sessions_new (
    secret_hash VARCHAR(64) NOT NULL,
    user_id INTEGER NOT NULL,
    csrf_token VARCHAR(64) NOT NULL,
    client VARCHAR(64) NOT NULL,
    created_at FLOAT NOT NULL,
    last_seen_at FLOAT NOT NULL,
    expires_at FLOAT NOT NULL,
    PRIMARY KEY (secret_hash),
    FOREIGN KEY(user_id) REFERENCES users_new (id) ON DELETE CASCADE
)"""
_TOKENS = """CREATE TABLE api_tokens_new (
    id VARCHAR(16) NOT NULL,
    user_id INTEGER NOT NULL,
    label VARCHAR(128) NOT NULL,
    secret_hash VARCHAR(64) NOT NULL,
    permissions TEXT,
    created_at FLOAT NOT NULL,
    last_used_at FLOAT,
    revoked_at FLOAT,
    PRIMARY KEY (id),
    FOREIGN KEY(user_id) REFERENCES users_new (id) ON DELETE CASCADE,
    UNIQUE (secret_hash)
)"""
_USER_COLUMNS = (
    "id, name, role, password_hash, platforms, cameras, disabled, created_at, "
    "password_changed_at, name_key"
)
_SESSION_COLUMNS = "secret_hash, user_id, csrf_token, client, created_at, last_seen_at, expires_at"
_API_TOKENS_COLUMNS = (
    "id, user_id, label, secret_hash, permissions, created_at, last_used_at, revoked_at"
)


def _sqlite_user_ids_never_reused() -> None:
    """Rebuilds users with AUTOINCREMENT, and its two children, without ever dropping a
    table that a cascading key points to: the copies point to users_new, the old tables go
    children first, and renaming users_new to users rewrites the copies' keys (SQLite
    >= 3.26 renames references along with the table)."""
    for create, table, columns in (
        (_USERS, "users", _USER_COLUMNS),
        (_SESSIONS, "sessions", _SESSION_COLUMNS),
        (_TOKENS, "api_tokens", _API_TOKENS_COLUMNS),
    ):
        op.execute(create)
        op.execute(f"INSERT INTO {table}_new ({columns}) SELECT {columns} FROM {table}")  # noqa: S608
    for table in ("sessions", "api_tokens", "users"):
        op.execute(f"DROP TABLE {table}")
    for table in ("users", "sessions", "api_tokens"):
        op.execute(f"ALTER TABLE {table}_new RENAME TO {table}")
    op.create_index("users_name_key_unique", "users", ["name_key"], unique=True)
    op.create_index("sessions_user", "sessions", ["user_id"])
    # Past every id in use or named by the audit log (ids reused before this migration
    # included): a new user never takes over an old one's entries.
    op.execute("DELETE FROM sqlite_sequence WHERE name = 'users'")
    op.execute(
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'users', MAX(COALESCE(MAX(u), 0), "
        "COALESCE((SELECT MAX(user_id) FROM audit_log), 0)) FROM (SELECT MAX(id) AS u FROM users)"
    )


@contextmanager
def _audit_updates_allowed() -> Iterator[None]:
    """Lifts the UPDATE trigger of migration 0003 for the block and puts it back."""
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update")
    else:
        op.execute("DROP TRIGGER audit_log_no_update")
    yield
    if postgres:
        op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update")
    else:
        op.execute(
            "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
        )


def downgrade() -> None:
    op.drop_index("audit_log_user_id_at", "audit_log")
    op.drop_column("audit_log", "user_id")
    op.drop_index("users_name_key_unique", "users")
    op.drop_column("users", "name_key")
