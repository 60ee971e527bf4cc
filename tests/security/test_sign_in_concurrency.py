"""Sign-in under concurrency, on the real server: parallel wrong sign-ins from one address get
exactly the configured number of password checks, and however many arrive at once, only a
bounded number of argon2 checks (64 MiB each) run at the same time."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from surveillance.auth.passwords import MAX_CONCURRENT_ARGON2
from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from tests.auth_helpers import ensure_user
from tests.service import ServiceProcess

PARALLEL = 60
ARGON2_MIB = 64  # argon2-cffi's default memory_cost, what each check takes
PAGE = 4096


@contextmanager
def running(data_dir: Path, **auth: object) -> Iterator[ServiceProcess]:
    config = AppConfig.model_validate({"server": {"data_dir": str(data_dir)}, "auth": auth})
    service = ServiceProcess(config)
    service.start()
    try:
        ensure_user(service.node, "alice", Role.VIEWER)
        yield service
    finally:
        service.stop()


def _parallel_wrong_sign_ins(service: ServiceProcess, count: int) -> Counter[int]:
    """``count`` wrong sign-ins released at the same moment; their statuses."""
    start = threading.Barrier(count)
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    with httpx.Client(base_url=service.url, timeout=120, limits=limits) as client:

        def sign_in(_: int) -> int:
            start.wait()
            body = {"name": "alice", "password": "not alice's password"}
            return client.post("/api/auth/login", json=body).status_code

        with ThreadPoolExecutor(count) as pool:
            return Counter(pool.map(sign_in, range(count)))


def test_parallel_wrong_sign_ins_get_exactly_the_limit(tmp_path: Path) -> None:
    with running(tmp_path, sign_in_max_failures=5) as service:
        statuses = _parallel_wrong_sign_ins(service, PARALLEL)
        assert statuses == {401: 5, 429: PARALLEL - 5}
        # The right password is refused too now: the address has used its attempts.
        right = {"name": "alice", "password": "test password, long enough"}
        assert httpx.post(f"{service.url}/api/auth/login", json=right).status_code == 429


def _rss_bytes() -> int:
    # The server runs in this process (uvicorn in a thread), so its memory is ours.
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def test_concurrent_sign_ins_check_a_bounded_number_of_passwords_at_once(
    tmp_path: Path,
) -> None:
    # No throttle in the way: every one of the sign-ins checks a password.
    with running(tmp_path, sign_in_max_failures=1000) as service:
        baseline = _rss_bytes()
        peak = baseline
        done = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not done.wait(0.002):
                peak = max(peak, _rss_bytes())

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            statuses = _parallel_wrong_sign_ins(service, PARALLEL)
        finally:
            done.set()
            watcher.join()
    assert statuses == {401: PARALLEL}
    grown_mib = (peak - baseline) / 2**20
    # The checks' own memory, plus room for 60 requests' threads and buffers; unbounded, the
    # 40 worker threads each held 64 MiB at once (2.5 GB).
    allowed_mib = MAX_CONCURRENT_ARGON2 * ARGON2_MIB + 256
    assert grown_mib < allowed_mib, f"grew {grown_mib:.0f} MiB at the peak"


@pytest.mark.parametrize("limit", [1, 3])
def test_a_right_password_takes_back_its_attempt(tmp_path: Path, limit: int) -> None:
    with running(tmp_path, sign_in_max_failures=limit) as service:
        right = {"name": "alice", "password": "test password, long enough"}
        for _ in range(limit + 2):
            assert httpx.post(f"{service.url}/api/auth/login", json=right).status_code == 200
