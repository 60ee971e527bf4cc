"""Sign-in, sessions, CSRF, API tokens, throttling and the audit log, against the real app
and its real SQLite database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.exc import DBAPIError

from surveillance.api.app import create_app
from surveillance.api.node import Node
from surveillance.auth.errors import AuthError
from surveillance.auth.roles import Permission, Role
from surveillance.config.models import AppConfig
from tests.auth_helpers import TEST_PASSWORD, ensure_user

EVIL_ORIGIN = "http://evil.example"


@pytest.fixture
def app_node(tmp_path: Path) -> Iterator[tuple[TestClient, Node]]:
    """A node of its own (no cameras): these tests sign in and out, fail on purpose and
    lock their client address out, which must not disturb other tests."""
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(tmp_path / "data"), "allowed_hosts": ["testserver"]},
            "auth": {"session_idle_minutes": 0.05, "sign_in_max_failures": 3},
            "platforms": [{"id": "town", "name": "Town"}],
        }
    )
    app = create_app(config)
    with TestClient(app, base_url="http://testserver") as client:
        yield client, app.state.node


def sign_in(client: TestClient, name: str) -> dict[str, Any]:
    response = client.post("/api/auth/login", json={"name": name, "password": TEST_PASSWORD})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_sign_in_sets_a_strict_http_only_cookie_and_a_csrf_token(
    app_node: tuple[TestClient, Node],
) -> None:
    client, node = app_node
    ensure_user(node, "ann", Role.OPERATOR)
    response = client.post("/api/auth/login", json={"name": "ann", "password": TEST_PASSWORD})
    cookies = {c.split("=", 1)[0]: c.lower() for c in response.headers.get_list("set-cookie")}
    assert "httponly" in cookies["surveillance_session"]
    assert "samesite=strict" in cookies["surveillance_session"]
    assert "httponly" not in cookies["surveillance_csrf"]  # the pages' scripts read it
    assert "secure" not in cookies["surveillance_session"]  # plain HTTP here; set under TLS
    assert response.json()["csrf_token"] == client.cookies["surveillance_csrf"]
    assert client.get("/api/auth/me").json()["name"] == "ann"


def test_wrong_name_and_wrong_password_get_the_same_answer(
    app_node: tuple[TestClient, Node],
) -> None:
    client, node = app_node
    ensure_user(node, "ann", Role.VIEWER)
    wrong_password = client.post("/api/auth/login", json={"name": "ann", "password": "x" * 12})
    no_such_user = client.post("/api/auth/login", json={"name": "nobody", "password": "x" * 12})
    assert wrong_password.status_code == no_such_user.status_code == 401
    assert wrong_password.json() == no_such_user.json()


def test_cross_origin_state_change_with_a_valid_cookie_is_refused(
    app_node: tuple[TestClient, Node],
) -> None:
    client, node = app_node
    ensure_user(node, "olga", Role.OPERATOR)
    csrf = sign_in(client, "olga")["csrf_token"]
    layout = {"name": "desk", "title": "Desk", "cols": 1, "rows": 1, "tiles": [{"x": 0, "y": 0}]}
    # What a forged form or fetch from another site can send: the cookie, no token.
    forged = client.put("/api/layouts/desk", json=layout, headers={"Origin": EVIL_ORIGIN})
    assert forged.status_code == 403
    no_token = client.put("/api/layouts/desk", json=layout)
    assert no_token.status_code == 403 and "CSRF" in no_token.json()["detail"]
    wrong = client.put("/api/layouts/desk", json=layout, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    # Even with the token, another origin is refused.
    stolen = client.put(
        "/api/layouts/desk", json=layout, headers={"X-CSRF-Token": csrf, "Origin": EVIL_ORIGIN}
    )
    assert stolen.status_code == 403
    assert client.get("/api/layouts/desk").status_code == 404  # nothing was saved
    same_site = client.put(
        "/api/layouts/desk",
        json=layout,
        headers={"X-CSRF-Token": csrf, "Origin": "http://testserver"},
    )
    assert same_site.status_code == 200


def test_api_tokens_need_no_csrf_token_and_stop_working_when_revoked(
    app_node: tuple[TestClient, Node],
) -> None:
    client, node = app_node
    ensure_user(node, "bot", Role.OPERATOR)
    info, secret = node.auth.create_token("bot", "integration")
    assert secret not in str(node.auth.tokens())  # only the hash is kept
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.delete("/api/layouts/none", headers=headers).status_code == 404  # let in
    assert node.auth.revoke_token(info.id)
    assert client.get("/api/cameras", headers=headers).status_code == 401
    assert (
        client.get("/api/cameras", headers={"Authorization": "Bearer svt_x_y"}).status_code == 401
    )


def test_idle_session_expires(app_node: tuple[TestClient, Node]) -> None:
    client, node = app_node  # session_idle_minutes is 3 s for this node
    ensure_user(node, "ivy", Role.VIEWER)
    sign_in(client, "ivy")
    # These sleeps are what is under test, not a wait for something: idle time passing on
    # the clock the session store reads.
    for _ in range(3):  # in use: stays alive past the idle limit
        time.sleep(1.2)
        assert client.get("/api/auth/me").status_code == 200
    time.sleep(3.5)
    assert client.get("/api/auth/me").status_code == 401


def test_password_change_ends_the_users_other_sessions(
    app_node: tuple[TestClient, Node],
) -> None:
    client, node = app_node
    ensure_user(node, "pat", Role.VIEWER)
    # A second browser: its own cookie jar; not entered, so the node is not started twice.
    second_browser = TestClient(client.app)
    sign_in(second_browser, "pat")
    csrf = sign_in(client, "pat")["csrf_token"]
    changed = client.post(
        "/api/auth/password",
        json={"current_password": TEST_PASSWORD, "new_password": "a brand new password"},
        headers={"X-CSRF-Token": csrf},
    )
    assert changed.status_code == 204
    assert second_browser.get("/api/auth/me").status_code == 401
    assert client.get("/api/auth/me").status_code == 200  # the browser that asked
    old = client.post("/api/auth/login", json={"name": "pat", "password": TEST_PASSWORD})
    assert old.status_code == 401


def test_sign_in_is_throttled_per_client_address(app_node: tuple[TestClient, Node]) -> None:
    client, node = app_node  # three failures allowed
    ensure_user(node, "tom", Role.VIEWER)
    for _ in range(3):
        bad = client.post("/api/auth/login", json={"name": "tom", "password": "wrong" * 3})
        assert bad.status_code == 401
    limited = client.post("/api/auth/login", json={"name": "tom", "password": TEST_PASSWORD})
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    outcomes = [e.outcome for e in node.audit.query(_query(user="tom"))]
    assert outcomes == ["limited", "failed", "failed", "failed"]


def test_a_disabled_user_is_signed_out_and_cannot_sign_in(
    app_node: tuple[TestClient, Node],
) -> None:
    client, node = app_node
    ensure_user(node, "dan", Role.VIEWER)
    sign_in(client, "dan")
    node.auth.update_user("dan", disabled=True)
    assert client.get("/api/auth/me").status_code == 401
    again = client.post("/api/auth/login", json={"name": "dan", "password": TEST_PASSWORD})
    assert again.status_code == 401


def test_the_audit_log_refuses_changes_in_the_database(app_node: tuple[TestClient, Node]) -> None:
    client, node = app_node
    client.post("/api/auth/login", json={"name": "mallory", "password": "x" * 12})
    node.audit.flush()
    with pytest.raises(DBAPIError, match="append-only"), node.engine.begin() as connection:
        connection.execute(sa.text("UPDATE audit_log SET outcome = 'ok'"))
    with pytest.raises(DBAPIError, match="append-only"), node.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM audit_log"))
    assert [e.user for e in node.audit.query(_query())] == ["mallory"]


def test_pages_send_strangers_to_sign_in_and_back(app_node: tuple[TestClient, Node]) -> None:
    client, _ = app_node
    response = client.get("/cases?state=reported", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fcases%3Fstate%3Dreported"
    login = client.get("/login")
    assert login.status_code == 200
    assert "frame-ancestors 'none'" in login.headers["content-security-policy"]
    assert login.headers["x-content-type-options"] == "nosniff"


def _query(**fields: Any) -> Any:
    from surveillance.auth.audit import AuditQuery

    return AuditQuery(**fields)


def test_a_token_limited_to_metrics_reads_metrics_only(app_node: tuple[TestClient, Node]) -> None:
    client, node = app_node
    ensure_user(node, "root", Role.ADMIN)
    _, secret = node.auth.create_token("root", "prometheus", [Permission.SYSTEM_READ])
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/metrics", headers=headers).status_code == 200
    assert client.get("/api/cameras", headers=headers).status_code == 403
    assert client.get("/api/users", headers=headers).status_code == 403
    # Nor may a token carry more than its user has.
    ensure_user(node, "vic", Role.VIEWER)
    with pytest.raises(AuthError, match=r"cannot have system\.read"):
        node.auth.create_token("vic", "sneaky", [Permission.SYSTEM_READ])


def test_guessing_the_current_password_is_throttled(app_node: tuple[TestClient, Node]) -> None:
    client, node = app_node  # three failures allowed
    ensure_user(node, "gus", Role.VIEWER)
    csrf = sign_in(client, "gus")["csrf_token"]
    statuses = [
        client.post(
            "/api/auth/password",
            json={"current_password": f"guess number {i}", "new_password": "whatever it is"},
            headers={"X-CSRF-Token": csrf},
        ).status_code
        for i in range(4)
    ]
    assert statuses == [401, 401, 401, 429]


def test_a_limited_token_gets_only_what_its_permissions_name(
    app_node: tuple[TestClient, Node],
) -> None:
    """Issue 10 item 11: routes that need no named permission are not for a limited token;
    "who am I" stays open to it, to tell it what it may do."""
    client, node = app_node
    ensure_user(node, "rita", Role.ADMIN)
    _, limited = node.auth.create_token("rita", "prometheus", [Permission.SYSTEM_READ])
    _, full = node.auth.create_token("rita", "all of rita's")
    headers = {"Authorization": f"Bearer {limited}"}
    change = {"current_password": TEST_PASSWORD, "new_password": "a new password, long enough"}
    assert client.post("/api/auth/password", json=change, headers=headers).status_code == 403
    assert node.auth.check_password("rita", TEST_PASSWORD) is not None  # unchanged
    assert client.get("/api/openapi.json", headers=headers).status_code == 403
    assert client.post("/api/auth/logout", headers=headers).status_code == 403
    me = client.get("/api/auth/me", headers=headers)
    assert me.status_code == 200 and me.json()["permissions"] == ["system.read"]
    denied = node.audit.query(_query(user="rita", action="access.denied"))
    assert {e.detail["path"] for e in denied} == {
        "/api/auth/password",
        "/api/openapi.json",
        "/api/auth/logout",
    }
    # A token with all of its user's permissions is the user, as before.
    full_headers = {"Authorization": f"Bearer {full}"}
    assert client.get("/api/openapi.json", headers=full_headers).status_code == 200
    assert client.post("/api/auth/password", json=change, headers=full_headers).status_code == 204
