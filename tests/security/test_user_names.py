"""User names on the real server: only a safe set of characters, no look-alike of an existing
name, and a name given again to a new user does not hand over the old user's audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from surveillance.auth.audit import AuditQuery
from surveillance.config.models import AppConfig
from tests.auth_helpers import TEST_PASSWORD, bearer
from tests.service import ServiceProcess

CYRILLIC_A = "\u0430"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    data_dir: Path = tmp_path_factory.mktemp("names")
    running = ServiceProcess(AppConfig.model_validate({"server": {"data_dir": str(data_dir)}}))
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def admin(service: ServiceProcess) -> httpx.Client:
    return httpx.Client(base_url=service.url, headers=bearer(service.node), timeout=30)


def _add(admin: httpx.Client, name: str, role: str = "viewer") -> httpx.Response:
    return admin.post("/api/users", json={"name": name, "role": role, "password": TEST_PASSWORD})


@pytest.mark.parametrize(
    "name",
    [
        "a/b",  # could be made, but no /api/users/{name} path reaches it
        f"{CYRILLIC_A}dmin",  # looks like "admin"
        "-rf",  # an option to the command line
        ".hidden",
        "two words",
        "zero\u200bwidth",
        "x" * 65,
        "caf\u00e9",
    ],
)
def test_names_outside_the_safe_set_are_refused(admin: httpx.Client, name: str) -> None:
    answer = _add(admin, name)
    assert answer.status_code == 422, answer.text
    assert "ASCII letters, digits" in answer.text or len(name) > 64


def test_safe_names_are_accepted_and_managed_by_path(admin: httpx.Client) -> None:
    for name in ("j.doe", "ops_2", "night-shift", "7th"):
        assert _add(admin, name).status_code == 201
        assert admin.patch(f"/api/users/{name}", json={"disabled": True}).status_code == 200
        assert admin.delete(f"/api/users/{name}").status_code == 204


@pytest.mark.parametrize("twin", ["Alice", "ALICE", "aIice", "a1ice", "alice"])
def test_a_look_alike_of_an_existing_name_is_refused(admin: httpx.Client, twin: str) -> None:
    if "alice" not in {user["name"] for user in admin.get("/api/users").json()}:
        assert _add(admin, "alice").status_code == 201
    answer = _add(admin, twin)
    assert answer.status_code == 409, answer.text


@pytest.mark.parametrize("twin", ["hancl1", "hand1.", "hand1-", "hand_1", "h-and1", "HAN.CL1"])
def test_separators_and_cl_do_not_make_a_new_name(admin: httpx.Client, twin: str) -> None:
    """Separators are skimmed over and "cl" reads as "d": each of these passes for hand1."""
    if "hand1" not in {user["name"] for user in admin.get("/api/users").json()}:
        assert _add(admin, "hand1").status_code == 201
    answer = _add(admin, twin)
    assert answer.status_code == 409, answer.text


def test_a_recreated_name_does_not_inherit_the_audit_trail(
    service: ServiceProcess, admin: httpx.Client
) -> None:
    def as_new_rita() -> httpx.Client:
        assert _add(admin, "rita").status_code == 201
        token = admin.post("/api/tokens", json={"user": "rita", "label": "t"}).json()["token"]
        return httpx.Client(
            base_url=service.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    first = as_new_rita()
    assert first.get("/api/users").status_code == 403  # audited: access.denied, as rita
    first_entries = first.get("/api/audit").json()["entries"]
    assert [e["action"] for e in first_entries] == ["access.denied"]

    assert admin.delete("/api/users/rita").status_code == 204
    second = as_new_rita()
    # Someone else now, under the same name: none of the first rita's history is theirs.
    assert second.get("/api/audit").json()["entries"] == []
    assert second.get("/api/audit", params={"user": "rita"}).json()["entries"] == []
    first_id = first_entries[0]["user_id"]
    assert first_id is not None

    # Their own entries are theirs alone; an admin still reads both ritas' by name.
    assert second.get("/api/users").status_code == 403
    assert len(second.get("/api/audit").json()["entries"]) == 1
    by_name = admin.get("/api/audit", params={"user": "rita"}).json()["entries"]
    assert [e["action"] for e in by_name] == ["access.denied", "access.denied"]
    assert by_name[1]["user_id"] == first_id


def test_a_removed_users_id_is_never_given_again(
    service: ServiceProcess, admin: httpx.Client
) -> None:
    """SQLite without AUTOINCREMENT gave the newest removed user's id to the next one: the
    audit log's entries by id then passed to them."""

    def new_temp() -> tuple[int, httpx.Client]:
        assert _add(admin, "temp1").status_code == 201
        token = admin.post("/api/tokens", json={"user": "temp1", "label": "t"}).json()["token"]
        client = httpx.Client(
            base_url=service.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert client.get("/api/users").status_code == 403  # an entry under this user's id
        service.node.audit.flush()
        entries = client.get("/api/audit").json()["entries"]
        return entries[0]["user_id"], client

    first_id, _ = new_temp()  # the newest user: the one whose id SQLite would hand out again
    assert admin.delete("/api/users/temp1").status_code == 204
    second_id, _ = new_temp()
    assert second_id != first_id
    service.node.audit.flush()
    by_id = service.node.audit.query(AuditQuery(user_id=second_id))
    assert [e.action for e in by_id] == ["access.denied"]
