"""ClusterStore on a real PostgreSQL: leases, fencing, membership, all by the database clock.

Lease lengths are short (1 s) where a test needs one to run out, and the waits are for the
database to say so (``remaining_s`` / ``age_s``), never a fixed sleep.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError

from surveillance import db
from surveillance.cluster import store as cluster_store
from surveillance.cluster.errors import ClusterNeedsPostgres, LeaseLost, NodeIdTaken
from surveillance.cluster.records import Lease, LeaseToken
from surveillance.cluster.store import ClusterStore
from tests.cases.conftest import PostgresCluster
from tests.waits import wait_until

pytestmark = pytest.mark.postgresql

SHORT_S = 1.0  # a lease or silence a test waits out
LONG_S = 60.0  # one that never runs out during a test
WAIT_S = 30.0


@pytest.fixture(scope="module")
def url(postgres: PostgresCluster) -> str:
    """One migrated database for the module (migrating one per test costs more than the
    tests); each test starts from empty cluster tables."""
    url = postgres.new_database()
    engine = db.create_db_engine(url)
    try:
        db.upgrade(engine)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    engine = db.create_db_engine(url)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE cluster_nodes, camera_leases, camera_status"))
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def store(engine: Engine) -> ClusterStore:
    return ClusterStore(engine)


def _held(store: ClusterStore, camera_id: str) -> Lease:
    return next(lease for lease in store.leases() if lease.camera_id == camera_id)


def _expired(store: ClusterStore, camera_id: str) -> bool:
    return _held(store, camera_id).remaining_s <= 0


def _fence(engine: Engine, store: ClusterStore, camera_id: str, token: LeaseToken) -> None:
    with engine.begin() as connection:
        store.check_fence(connection, camera_id, token)


def test_two_nodes_racing_for_the_same_cameras_hold_disjoint_sets(url: str, engine: Engine) -> None:
    cameras = [f"cam-{i:04d}" for i in range(600)]
    engines = [db.create_db_engine(url) for _ in range(2)]  # a pool of its own per "node"
    stores = [ClusterStore(engine) for engine in engines]
    start = threading.Barrier(2)
    held: dict[str, set[str]] = {"a": set(), "b": set()}
    failures: list[BaseException] = []

    def node(name: str, store: ClusterStore, seed: int) -> None:
        order = cameras[:]
        random.Random(seed).shuffle(order)  # the store sorts: no deadlock from the order
        try:
            start.wait()
            for _ in range(5):
                held[name] = {lease.camera_id for lease in store.claim(name, order, LONG_S)}
        except BaseException as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=node, args=(name, store, seed))
        for seed, (name, store) in enumerate(zip(("a", "b"), stores, strict=True))
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_S)
        assert failures == []
        assert held["a"].isdisjoint(held["b"])
        assert held["a"] | held["b"] == set(cameras)
        rows = {lease.camera_id: lease for lease in stores[0].leases()}
        assert {c for c, lease in rows.items() if lease.node_id == "a"} == held["a"]
        # Nobody took a lease from the other (none expired): every generation is the first.
        assert {lease.generation for lease in rows.values()} == {1}
    finally:
        for engine in engines:
            engine.dispose()


def test_claim_takes_thousands_of_cameras_in_one_statement(
    engine: Engine, store: ClusterStore
) -> None:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    cameras = [f"cam-{i:05d}" for i in range(3000)]
    event.listen(engine, "before_cursor_execute", count)
    try:
        leases = store.claim("a", [*cameras, *cameras[:10]], LONG_S)  # repeats: one row each
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert [lease.camera_id for lease in leases] == cameras
    assert sum("camera_leases" in statement for statement in statements) == 1
    assert all(lease.node_id == "a" and lease.generation == 1 for lease in leases)
    assert all(0 < lease.remaining_s <= LONG_S for lease in leases)
    # Claiming again what is ours keeps the generation; another node gets none of it.
    assert {lease.generation for lease in store.claim("a", cameras, LONG_S)} == {1}
    assert store.claim("b", cameras, LONG_S) == []
    assert store.claim("a", [], LONG_S) == []


def test_expired_lease_is_taken_anew_and_never_revived(engine: Engine, store: ClusterStore) -> None:
    store.claim("a", ["cam-1", "cam-2"], SHORT_S)
    store.claim("a", ["cam-3"], LONG_S)
    wait_until(lambda: _expired(store, "cam-1"), WAIT_S, "cam-1's lease runs out")

    # Renewing keeps only what is still current: the expired ones stay expired.
    renewed = store.renew("a", LONG_S)
    assert [(lease.camera_id, lease.generation) for lease in renewed] == [("cam-3", 1)]
    assert _expired(store, "cam-1") and _expired(store, "cam-2")

    # Another node takes an expired lease with the next generation; the old token is dead.
    [taken] = store.claim("b", ["cam-1", "cam-3"], LONG_S)
    assert (taken.camera_id, taken.node_id, taken.generation) == ("cam-1", "b", 2)
    with pytest.raises(LeaseLost, match=r"cam-1.*node 'b' holds it now") as lost:
        _fence(engine, store, "cam-1", LeaseToken("a", 1))
    assert lost.value.camera_id == "cam-1" and lost.value.status_code == 503
    _fence(engine, store, "cam-1", LeaseToken("b", 2))

    # Its own expired lease, claimed again, is a new generation too (someone may have had it).
    with pytest.raises(LeaseLost, match="expired"):
        _fence(engine, store, "cam-2", LeaseToken("a", 1))
    [again] = store.claim("a", ["cam-2"], LONG_S)
    assert (again.node_id, again.generation) == ("a", 2)
    with pytest.raises(LeaseLost, match=r"generation 2, this write carries 1"):
        _fence(engine, store, "cam-2", LeaseToken("a", 1))
    _fence(engine, store, "cam-2", LeaseToken("a", 2))
    with pytest.raises(LeaseLost, match="no node holds"):
        _fence(engine, store, "cam-9", LeaseToken("a", 1))


def test_release_frees_a_lease_at_once_and_only_the_holders(
    engine: Engine, store: ClusterStore
) -> None:
    store.claim("a", ["cam-1", "cam-2"], LONG_S)
    store.release("b", ["cam-1"])  # not b's: nothing happens
    assert _held(store, "cam-1").remaining_s > 0
    store.release("a", ["cam-1"])
    assert _expired(store, "cam-1") and not _expired(store, "cam-2")
    with pytest.raises(LeaseLost):
        _fence(engine, store, "cam-1", LeaseToken("a", 1))
    [taken] = store.claim("b", ["cam-1", "cam-2"], LONG_S)
    assert (taken.camera_id, taken.node_id, taken.generation) == ("cam-1", "b", 2)
    assert [lease.camera_id for lease in store.renew("a", LONG_S)] == ["cam-2"]


def test_a_fenced_write_holds_off_a_takeover_of_its_camera_only(
    engine: Engine, store: ClusterStore
) -> None:
    store.claim("a", ["cam-1", "cam-2"], SHORT_S)
    with engine.begin() as writer:
        store.check_fence(writer, "cam-1", LeaseToken("a", 1))  # share-locks cam-1's row
        wait_until(lambda: _expired(store, "cam-2"), WAIT_S, "a's leases run out")
        # Both expired, but cam-1's write is still in flight: only cam-2 is taken, at once.
        taken = store.claim("b", ["cam-1", "cam-2"], LONG_S)
        assert [(lease.camera_id, lease.generation) for lease in taken] == [("cam-2", 2)]
    [taken_after] = store.claim("b", ["cam-1"], LONG_S)
    assert (taken_after.node_id, taken_after.generation) == ("b", 2)
    with engine.connect() as connection:  # the fence's idle limit was for that transaction only
        setting = "SHOW idle_in_transaction_session_timeout"
        assert connection.execute(text(setting)).scalar_one() == "0"


def test_the_stores_writes_give_up_on_a_lock_instead_of_hanging(
    engine: Engine, store: ClusterStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster_store, "LOCK_TIMEOUT_S", 0.2)
    store.claim("a", ["cam-1", "cam-2"], LONG_S)
    with engine.begin() as writer:
        store.check_fence(writer, "cam-1", LeaseToken("a", 1))
        with pytest.raises(DBAPIError, match="lock timeout"):
            store.renew("a", LONG_S)  # waits for cam-1's writer, not forever
        store.claim("b", ["cam-3"], LONG_S)  # what the writer does not hold goes on
    assert [lease.camera_id for lease in store.renew("a", LONG_S)] == ["cam-1", "cam-2"]


def test_a_writer_stopped_inside_a_fenced_transaction_is_ended_by_the_server(
    engine: Engine, store: ClusterStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster_store, "FENCED_IDLE_TIMEOUT_S", SHORT_S)
    store.claim("a", ["cam-1"], SHORT_S)
    stuck = engine.connect()  # a node stopped (SIGSTOP) between its fence and its commit
    try:
        stuck.begin()
        store.check_fence(stuck, "cam-1", LeaseToken("a", 1))
        taken = wait_until(
            lambda: store.claim("b", ["cam-1"], LONG_S), WAIT_S, "cam-1 taken from the stuck"
        )
        assert [(lease.node_id, lease.generation) for lease in taken] == [("b", 2)]
        with pytest.raises(DBAPIError, match="idle-in-transaction"):  # the write never lands
            stuck.execute(text("SELECT 1"))
    finally:
        stuck.close()


def test_join_refuses_a_live_id_and_takes_over_a_stopped_or_silent_one(
    store: ClusterStore,
) -> None:
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    joined = store.join("node-a", "http://a.example:8080", 2.0, first, LONG_S)
    assert (joined.id, joined.capacity, joined.incarnation, joined.stopped_at) == (
        "node-a", 2.0, first, None,
    )  # fmt: skip
    assert joined.live(LONG_S)
    again = store.join("node-a", "http://a.example:8080", 2.0, first, LONG_S)
    assert again.started_at == joined.started_at  # the same process: its start stays

    with pytest.raises(NodeIdTaken, match=r"'node-a'.*http://a\.example:8080") as taken:
        store.join("node-a", "http://other.example:8080", 1.0, second, LONG_S)
    assert taken.value.status_code == 409 and taken.value.url == "http://a.example:8080"

    # Silent for longer than the joiner's lease: taken over; the old process learns it.
    wait_until(lambda: _node(store, "node-a").age_s >= SHORT_S, WAIT_S, "node-a silent for a lease")
    assert not _node(store, "node-a").live(SHORT_S)
    joined = store.join("node-a", "http://other.example:8080", 1.0, second, SHORT_S)
    assert (joined.url, joined.incarnation, joined.age_s) == (
        "http://other.example:8080",
        second,
        0,
    )
    assert store.heartbeat("node-a", first, {"cameras": 3}) is False
    assert store.heartbeat("node-a", second, {"cameras": 3, "cpu": 0.25}) is True
    assert _node(store, "node-a").load == {"cameras": 3.0, "cpu": 0.25}

    # A clean stop frees the id at once.
    store.leave("node-a", second)
    stopped = _node(store, "node-a")
    assert stopped.stopped_at is not None and not stopped.live(LONG_S)
    assert store.heartbeat("node-a", second, {}) is False
    third = uuid.uuid4().hex
    assert store.join("node-a", "http://a.example:8080", 1.0, third, LONG_S).incarnation == third


def _node(store: ClusterStore, node_id: str) -> Any:
    return next(node for node in store.nodes() if node.id == node_id)


def test_times_are_the_databases_whatever_the_nodes_clock_and_time_zone(
    url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The session time zone of this "node" is 14 h ahead, and its wall clock 3 days fast:
    # neither may change a lease or an age, since only the database's clock is used.
    skewed = create_engine(url, connect_args={"options": "-c TimeZone=Pacific/Kiritimati"})
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3 * 86400)
    try:
        store = ClusterStore(skewed)
        joined = store.join("node-a", "http://a.example:8080", 1.0, uuid.uuid4().hex, LONG_S)
        now = store.db_now()
        assert abs(now - real_time()) < WAIT_S  # the database's clock: this host's, not ours
        assert now - WAIT_S < joined.started_at <= now
        assert 0 <= joined.age_s < WAIT_S
        [lease] = store.claim("node-a", ["cam-1"], LONG_S)
        assert LONG_S - WAIT_S < lease.remaining_s <= LONG_S
        assert [lease.camera_id for lease in store.renew("node-a", LONG_S)] == ["cam-1"]
        with skewed.begin() as connection:
            store.check_fence(connection, "cam-1", LeaseToken("node-a", 1))
    finally:
        skewed.dispose()


def test_status_of_a_stale_owner_does_not_overwrite_the_current_one(store: ClusterStore) -> None:
    store.publish_status("a", 1, {"cam-1": '{"state": "online"}', "cam-2": '{"state": "x"}'})
    store.publish_status("b", 2, {"cam-1": '{"state": "offline"}'})
    store.publish_status("a", 1, {"cam-1": '{"state": "stalled"}'})  # a lost cam-1 long ago
    store.publish_status("a", 1, {})
    assert store.statuses() == {
        "cam-1": ("b", '{"state": "offline"}'),
        "cam-2": ("a", '{"state": "x"}'),
    }


def test_the_store_refuses_sqlite_and_bad_lease_lengths(tmp_path: Any, store: ClusterStore) -> None:
    sqlite = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(ClusterNeedsPostgres, match="PostgreSQL, not sqlite"):
        ClusterStore(sqlite)
    sqlite.dispose()
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive"):
            store.claim("a", ["cam-1"], bad)
