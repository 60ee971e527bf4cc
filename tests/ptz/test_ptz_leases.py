"""The ptz_leases store on SQLite and PostgreSQL: one holder per camera, renewals, take-over
by a strictly higher role only, release, the rows kept for the idle return home, and two
operators reaching for one camera at once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine

from surveillance.auth.roles import Role
from surveillance.services.ptz_leases import PtzLeaseHeld, PtzLeaseStore

LEASE_S = 30.0
T0 = 1_000_000.0


def test_one_holder_renewals_takeover_release_and_home(engine: Engine) -> None:
    store = PtzLeaseStore(engine)
    taken = store.take("cam", "alice", Role.OPERATOR, LEASE_S, now=T0)
    assert (taken.event, taken.lease.holder, taken.lease.expires_at) == ("taken", "alice", T0 + 30)
    assert taken.lease.last_command_at is None  # held, not steered yet
    renewed = store.take("cam", "alice", Role.OPERATOR, LEASE_S, command=True, now=T0 + 10)
    assert renewed.event == "renewed" and renewed.lease.taken_at == T0
    assert renewed.lease.last_command_at == T0 + 10

    # Another operator, with or without take-over: refused, naming the holder.
    for takeover in (False, True):
        with pytest.raises(PtzLeaseHeld, match=r"steered by alice \(operator\) for 30 s more"):
            store.take("cam", "bob", Role.OPERATOR, LEASE_S, takeover=takeover, now=T0 + 10)
    # A handler ranks above an operator, but takes it only when asking to.
    with pytest.raises(PtzLeaseHeld):
        store.take("cam", "hank", Role.HANDLER, LEASE_S, now=T0 + 11)
    over = store.take("cam", "hank", Role.HANDLER, LEASE_S, takeover=True, now=T0 + 11)
    assert (over.event, over.previous_holder, over.lease.role) == ("taken-over", "alice", "handler")
    # The operator may not release the handler's lease; the admin may.
    with pytest.raises(PtzLeaseHeld):
        store.release("cam", "alice", Role.OPERATOR, keep_for_home=True, now=T0 + 12)
    assert [lease.camera_id for lease in store.held(now=T0 + 12)] == ["cam"]
    ended = store.release("cam", "root", Role.ADMIN, keep_for_home=True, now=T0 + 12)
    assert ended is not None and ended.holder == "hank"
    assert store.held(now=T0 + 12) == []
    assert store.release("cam", "root", Role.ADMIN, keep_for_home=True, now=T0 + 12) is None

    # It was steered: the row stays for the return home, due idle_home_s after the command.
    assert store.idle(commanded_before=T0 + 9) == []
    [due] = store.idle(commanded_before=T0 + 10)
    # A command after the idle list was read keeps the camera where it is steered to.
    store.take("cam", "bob", Role.OPERATOR, LEASE_S, command=True, now=T0 + 13)
    assert not store.went_home(due)
    [due] = store.idle(commanded_before=T0 + 100)
    assert store.went_home(due)
    assert store.get("cam") is None

    # An expired lease is free for anyone; a lease without a command leaves no home due.
    store.take("cam2", "alice", Role.OPERATOR, LEASE_S, now=T0)
    later = store.take("cam2", "bob", Role.OPERATOR, LEASE_S, now=T0 + LEASE_S + 1)
    assert later.event == "taken" and later.lease.holder == "bob"
    store.release("cam2", "bob", Role.OPERATOR, keep_for_home=True, now=T0 + 40)
    assert store.get("cam2") is None
    store.forget("cam2")


def test_two_operators_reaching_at_once_one_gets_it(engine: Engine) -> None:
    store = PtzLeaseStore(engine)
    start = threading.Barrier(4)
    won: list[str] = []
    refused: list[str] = []

    def reach(name: str) -> None:
        start.wait()
        try:
            store.take("race", name, Role.OPERATOR, LEASE_S, command=True)
            won.append(name)
        except PtzLeaseHeld:
            refused.append(name)

    threads = [threading.Thread(target=reach, args=(f"op{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(won) == 1 and len(refused) == 3
    lease = store.get("race")
    assert lease is not None and lease.holder == won[0]
