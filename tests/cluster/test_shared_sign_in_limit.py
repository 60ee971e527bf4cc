"""The sign-in limit across nodes (finding: behind a load balancer each node counted its own
failures, so N nodes gave N allowances): two real nodes in cluster mode on one real
PostgreSQL count one address's failures together, and parallel attempts through two
connection pools never pass the limit (auth/shared_ratelimit.py)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from surveillance import db
from surveillance.auth.roles import Role
from surveillance.auth.shared_ratelimit import SharedSignInLimiter
from surveillance.config.models import AppConfig
from tests.auth_helpers import TEST_PASSWORD, ensure_user
from tests.cases.conftest import PostgresCluster
from tests.service import ServiceProcess
from tests.waits import wait_until

pytestmark = pytest.mark.postgresql

MAX_FAILURES = 3
WINDOW_S = 600.0  # never runs out during a test
SHORT_WINDOW_S = 1.0  # one that a test waits out (for the database to say so)
TIMEOUT_S = 30
# The test's client is 127.0.0.1, whose X-Forwarded-For uvicorn trusts by default (as from a
# balancer named in FORWARDED_ALLOW_IPS): each "attacker" is its own forwarded address.
FORWARDED = "X-Forwarded-For"


def _config(node_id: str, port: int, database: str, root: Path) -> AppConfig:
    return AppConfig.model_validate(
        {
            "server": {"data_dir": str(root / node_id), "port": port},
            "database": {"url": database},
            "auth": {"sign_in_max_failures": MAX_FAILURES, "sign_in_window_s": WINDOW_S},
            "cluster": {"enabled": True, "node_id": node_id, "lease_s": 3, "renew_s": 1,
                        "url": f"http://127.0.0.1:{port}", "shared_dir": str(root / "shared")},
        }
    )  # fmt: skip


@pytest.fixture(scope="module")
def nodes(
    postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    root = tmp_path_factory.mktemp("sign-in")
    database = postgres.new_database()
    a = ServiceProcess(AppConfig())
    b = ServiceProcess(AppConfig())
    a.config = _config("a", a.port, database, root)
    b.config = _config("b", b.port, database, root)
    a.start()
    b.start()
    try:
        ensure_user(a.node, "guard", Role.OPERATOR)
        yield a, b
    finally:
        a.stop()
        b.stop()


def _sign_in(node: ServiceProcess, address: str, password: str) -> int:
    response = httpx.post(
        f"{node.url}/api/auth/login",
        json={"name": "guard", "password": password},
        headers={FORWARDED: address, "Origin": node.url},
        timeout=TIMEOUT_S,
    )
    return response.status_code


def test_failures_on_one_node_count_on_the_other(
    nodes: tuple[ServiceProcess, ServiceProcess],
) -> None:
    a, b = nodes
    attacker, bystander = "203.0.113.7", "203.0.113.8"
    assert [_sign_in(a, attacker, "wrong") for _ in range(MAX_FAILURES - 1)] == [401, 401]
    assert _sign_in(b, attacker, "wrong") == 401  # the last allowance, spent on the other node
    # Both nodes refuse the address now, even its right password.
    assert _sign_in(b, attacker, "wrong") == 429
    assert _sign_in(a, attacker, TEST_PASSWORD) == 429
    assert _sign_in(b, attacker, TEST_PASSWORD) == 429
    # Another address is not held back, and its success takes back only its own attempt.
    assert _sign_in(b, bystander, "wrong") == 401
    assert _sign_in(a, bystander, TEST_PASSWORD) == 200
    assert _sign_in(b, bystander, "wrong") == 401
    assert _sign_in(a, bystander, "wrong") == 401  # 1 + 2 failures counted: the limit
    assert _sign_in(b, bystander, TEST_PASSWORD) == 429


@pytest.fixture
def engines(postgres: PostgresCluster) -> Iterator[tuple[Engine, Engine]]:
    """Two nodes' connection pools on one migrated database."""
    url = postgres.new_database()
    one, two = db.create_db_engine(url), db.create_db_engine(url)
    db.upgrade(one)
    try:
        yield one, two
    finally:
        one.dispose()
        two.dispose()


def test_parallel_attempts_through_two_pools_never_pass_the_limit(
    engines: tuple[Engine, Engine],
) -> None:
    limiters = [SharedSignInLimiter(engine, MAX_FAILURES, WINDOW_S) for engine in engines]
    passed: list[str] = []
    start = threading.Barrier(16)

    def attempt(index: int) -> None:
        start.wait(TIMEOUT_S)
        if limiters[index % 2].attempt("198.51.100.1") == 0:
            passed.append(f"pool {index % 2}")

    threads = [threading.Thread(target=attempt, args=(index,)) for index in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT_S)
    assert len(passed) == MAX_FAILURES, passed
    wait = limiters[1].retry_after("198.51.100.1")
    assert 0 < wait <= WINDOW_S
    # Refused attempts were not counted; a success takes back one attempt, seen by both.
    with engines[0].connect() as connection:
        rows = connection.execute(text("SELECT count(*) FROM sign_in_attempts")).scalar()
    assert rows == MAX_FAILURES
    limiters[0].succeeded("198.51.100.1")
    assert limiters[1].retry_after("198.51.100.1") == 0
    assert limiters[1].attempt("198.51.100.1") == 0
    assert limiters[0].attempt("198.51.100.1") > 0


def test_attempts_leave_with_the_window_by_the_database_clock(
    engines: tuple[Engine, Engine],
) -> None:
    short = SharedSignInLimiter(engines[0], MAX_FAILURES, SHORT_WINDOW_S)
    other = SharedSignInLimiter(engines[1], MAX_FAILURES, SHORT_WINDOW_S)
    for _ in range(MAX_FAILURES):
        assert short.attempt("192.0.2.1") == 0
    assert 0 < other.attempt("192.0.2.1") <= SHORT_WINDOW_S
    wait_until(lambda: other.retry_after("192.0.2.1") == 0, TIMEOUT_S, "the window passed")

    def clients() -> list[str]:
        with engines[0].connect() as connection:
            query = text("SELECT client FROM sign_in_attempts")
            return list(connection.execute(query).scalars().all())

    others = (f"192.0.2.{n}" for n in itertools.count(2))

    def cleared() -> bool:
        # Any address's attempt clears the rows gone out of the window (retry_after rounds
        # to whole seconds, so the first one may come a moment early).
        assert other.attempt(next(others)) == 0
        return "192.0.2.1" not in clients()

    wait_until(cleared, TIMEOUT_S, "the old address's attempts cleared")
    assert clients() and "192.0.2.1" not in clients()
