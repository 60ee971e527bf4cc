"""Users, sessions, tokens and the audit log on both databases the node supports (this
folder's fixtures run each node-store test on SQLite and on a real PostgreSQL)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from surveillance.auth.audit import AuditEntry, AuditLog, AuditQuery
from surveillance.auth.roles import Permission, Role
from surveillance.auth.store import AuthError, AuthStore, SessionPolicy

PASSWORD = "a password long enough"


def test_users_sessions_and_tokens(engine: Engine) -> None:
    store = AuthStore(engine, SessionPolicy(idle_s=60, max_s=3600))
    user = store.add_user("ann", Role.HANDLER, PASSWORD, platforms=["town"])
    with pytest.raises(AuthError, match="exists already"):
        store.add_user("ann", Role.VIEWER, PASSWORD)
    assert store.check_password("ann", "wrong password!") is None
    assert store.check_password("ann", PASSWORD) == user
    session = store.create_session(user, "10.0.0.7")
    found = store.session_principal(session.secret)
    assert found is not None and found.csrf_token == session.csrf_token
    assert found.scope.platforms == {"town"}
    info, secret = store.create_token("ann", "export job", [Permission.CASES_READ])
    principal = store.token_principal(secret)
    assert principal is not None and principal.permissions == {Permission.CASES_READ}
    store.set_password("ann", "another long password")
    assert store.session_principal(session.secret) is None  # ended by the change
    assert store.token_principal(secret) is not None  # tokens are revoked on their own
    assert store.revoke_token(info.id)
    assert store.token_principal(secret) is None
    store.remove_user("ann")
    assert store.users() == []


def test_the_audit_log_is_append_only(engine: Engine) -> None:
    audit = AuditLog(engine)
    audit.start()
    try:
        for n in range(3):
            audit.record(AuditEntry(user="ann", action="snapshot", camera_id=f"cam{n}"))
        assert [e.camera_id for e in audit.query(AuditQuery(user="ann"))] == [
            "cam2",
            "cam1",
            "cam0",
        ]
        statements = ["UPDATE audit_log SET outcome = 'x'", "DELETE FROM audit_log"]
        if engine.dialect.name == "postgresql":
            statements.append("TRUNCATE audit_log")
        for statement in statements:
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
                connection.execute(sa.text(statement))
        assert len(audit.query(AuditQuery())) == 3
    finally:
        audit.close()
