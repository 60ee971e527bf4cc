"""No evidence file without its item, against the real RTSP server and a real SQLite file:
a database that cannot grow answers 507 and keeps nothing; an attach refused because the
case closed while its clip waited leaves no file; a file a crash left between storing and
recording is reported by `surveillance verify` and moved out of the store at start."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from surveillance.api.app import create_app
from surveillance.api.node import Node
from surveillance.auth.roles import Role
from surveillance.cases.storage import LocalEvidenceStore
from surveillance.config.models import AppConfig
from surveillance.simulator import Simulator
from tests.auth_helpers import bearer
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

MAX_ATTACHES_TO_FILL = 300  # snapshots until the few free pages of the database are used


def config_for(simulator: Simulator, data_dir: Path) -> AppConfig:
    return AppConfig.model_validate(
        {
            "server": {"data_dir": str(data_dir)},
            "ingest": {"ring_seconds": 10},
            "platforms": [{"id": "town", "name": "Town"}],
            "cameras": [
                {"id": "gate", "name": "gate", "platform": "town", "url": simulator.url("cam04")}
            ],
        }
    )


@contextmanager
def running(simulator: Simulator, data_dir: Path) -> Iterator[TestClient]:
    app = create_app(config_for(simulator, data_dir))
    with TestClient(app, base_url="http://localhost") as client:
        client.headers.update(bearer(app.state.node, "handler1", Role.HANDLER))

        def online() -> bool:
            return bool(client.get("/api/cameras").json()[0]["state"] == "online")

        wait_until(online, 20, "the camera online")
        yield client


def node_of(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


def new_case(client: TestClient) -> str:
    response = client.post("/api/cases", json={"title": "Flooded underpass"})
    assert response.status_code == 201, response.text
    number: str = response.json()["number"]
    return number


def evidence_files(data_dir: Path) -> set[str]:
    return {p.name for p in (data_dir / "evidence").rglob("*") if p.is_file()}


def item_hashes(client: TestClient, number: str) -> set[str]:
    return {i["sha256"] for i in client.get(f"/api/cases/{number}/items").json()}


def run_verify(data_dir: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "verify.yaml"
    config.write_text(f"server:\n  data_dir: {data_dir}\n")
    return subprocess.run(
        [sys.executable, "-m", "surveillance.cli", "verify", "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_database_that_cannot_grow_answers_507_and_keeps_nothing(
    simulator: Simulator, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    with running(simulator, data_dir) as client:
        number = new_case(client)
        engine = node_of(client).engine
        with engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()

        # The real SQLite file may not grow past its size now: SQLite's own limit, on every
        # connection the node opens from here on (the pool is emptied to open new ones).
        def cannot_grow(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

        event.listen(engine, "connect", cannot_grow)
        engine.dispose()
        try:
            for _ in range(MAX_ATTACHES_TO_FILL):
                before = client.get(f"/api/cases/{number}").json()
                response = client.post(
                    f"/api/cases/{number}/items/snapshot", json={"camera": "gate"}
                )
                if response.status_code != 201:
                    break
            assert response.status_code == 507, response.text
            detail = response.json()["detail"]
            assert "database cannot grow (database or disk is full)" in detail
            assert "nothing was stored" in detail
            assert client.get(f"/api/cases/{number}").json() == before  # readable, unchanged
            assert evidence_files(data_dir) == item_hashes(client, number)  # no orphan file
        finally:
            event.remove(engine, "connect", cannot_grow)
            engine.dispose()
        again = client.post(f"/api/cases/{number}/items/snapshot", json={"camera": "gate"})
        assert again.status_code == 201, again.text  # room again: attaching works again
    assert "owned by no item" not in run_verify(data_dir, tmp_path).stdout


def test_an_attach_refused_while_its_clip_waited_leaves_no_file(
    simulator: Simulator, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    with running(simulator, data_dir) as client:
        number = new_case(client)
        answers: list[Any] = []
        attach = threading.Thread(
            target=lambda: answers.append(
                client.post(
                    f"/api/cases/{number}/items/clip",
                    json={"camera": "gate", "pre_s": 1, "post_s": 3},
                )
            )
        )
        stream = node_of(client).ingest.stream("gate")
        consumers = stream.consumers
        attach.start()
        # The clip subscribes to the stream once the case was found open; it then waits
        # for its 3 post-event seconds, and the case closes meanwhile.
        wait_until(lambda: stream.consumers > consumers, 10, "the clip collecting packets")
        closed = client.post(f"/api/cases/{number}/transitions", json={"to": "closed"})
        assert closed.status_code == 200
        attach.join()
        assert answers[0].status_code == 409 and "closed" in answers[0].json()["detail"]
        assert evidence_files(data_dir) == set()
    assert run_verify(data_dir, tmp_path).returncode == 0


def test_a_file_a_crash_left_is_reported_and_set_aside_at_start(
    simulator: Simulator, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    with running(simulator, data_dir) as client:
        number = new_case(client)
        kept = client.post(f"/api/cases/{number}/items/snapshot", json={"camera": "gate"}).json()
    # What a crash between writing the file and committing its row leaves: a complete file.
    orphan = b"a clip whose row was never committed"
    digest = LocalEvidenceStore(data_dir / "evidence").put(orphan).sha256
    assert digest == hashlib.sha256(orphan).hexdigest()
    reported = run_verify(data_dir, tmp_path)
    assert reported.returncode == 1
    assert f"FAILED: evidence file {digest} is owned by no item" in reported.stdout

    with running(simulator, data_dir) as client:
        assert evidence_files(data_dir) == {kept["sha256"]}
        assert client.get(kept["content_url"]).status_code == 200
    aside = data_dir / "evidence-unowned" / digest
    assert aside.read_bytes() == orphan and aside.stat().st_mode & 0o077 == 0
    after = run_verify(data_dir, tmp_path)
    assert after.returncode == 0, after.stdout
    assert f"Note: {aside}: set aside at start, owned by no item" in after.stdout
