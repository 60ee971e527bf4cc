"""What travels between nodes, read back strictly: a camera's health (services/health_wire.py,
services/remote_health.py), a revoked session (services/session_revocation.py) and payloads
split under PostgreSQL's NOTIFY limit (services/cluster_notify.py). In-process, quick."""

from __future__ import annotations

import dataclasses
import json

import pytest

from surveillance.auth.store import AccessChange
from surveillance.media.health import ErrorKind, StreamHealth, StreamState
from surveillance.services.cluster_notify import (
    MAX_PAYLOAD_BYTES,
    PayloadTooLarge,
    encoded,
    libpq_conninfo,
    split_payloads,
)
from surveillance.services.health_wire import MAX_TEXT, from_wire, to_wire
from surveillance.services.remote_health import read_status, status_json
from surveillance.services.session_revocation import from_payload, to_payload

pytestmark = pytest.mark.unit


def test_health_survives_the_trip_and_junk_is_refused() -> None:
    health = StreamHealth()
    health.set_error(ErrorKind.AUTH, "401 from the camera", StreamState.OFFLINE)
    health.set_retry(123.5, attempting=False)
    snapshot = health.snapshot(10, 1.5, 2, 0)
    status = json.loads(json.dumps(status_json(snapshot, None, 99.0)))
    read = read_status("node-a", status)
    assert (read.node_id, read.at, read.main, read.sub) == ("node-a", 99.0, snapshot, None)

    wire = to_wire(snapshot)
    for field, junk in [("state", "exploded"), ("packets", 1.5), ("packets", True),
                        ("fps", "fast"), ("attempting", 1), ("state", None)]:  # fmt: skip
        with pytest.raises(ValueError):
            from_wire({**wire, field: junk})
    with pytest.raises(ValueError, match="without 'codec'"):
        from_wire({k: v for k, v in wire.items() if k != "codec"})
    assert from_wire({**wire, "from_a_newer_node": 1}) == snapshot
    long = dataclasses.replace(snapshot, last_error="x" * (MAX_TEXT * 3))
    assert len(from_wire(to_wire(long)).last_error or "") == MAX_TEXT
    for junk in ([], {"main": None, "at": 1.0}, {"main": wire}, {"main": wire, "at": "now"}):
        with pytest.raises(ValueError):
            read_status("node-a", junk)


def test_revocations_name_a_session_a_token_or_a_user() -> None:
    for change in (AccessChange(user_id=4, session_hash="abc"), AccessChange(token_id="t1"),
                   AccessChange(user_id=9)):  # fmt: skip
        assert from_payload({**to_payload(change), "node": "a"}) == change
    for junk in ({}, {"user": "4"}, {"user": True}, {"session": ""}, {"token": "x" * 500}):
        assert from_payload({**junk, "node": "a"}) is None


def test_payloads_are_split_to_fit_and_the_url_loses_its_driver() -> None:
    ids = [f"camera-{i:05d}" for i in range(3000)]
    parts = split_payloads({"kind": "x"}, "cameras", ids)
    assert len(parts) > 1 and [i for part in parts for i in part["cameras"]] == ids
    assert all(len(encoded({**p, "node": "n" * 64})) < MAX_PAYLOAD_BYTES for p in parts)
    assert split_payloads({}, "cameras", []) == []
    with pytest.raises(PayloadTooLarge):
        split_payloads({}, "statuses", {"big": "y" * MAX_PAYLOAD_BYTES})
    assert libpq_conninfo("postgresql+psycopg://u:p@h:5433/db") == "postgresql://u:p@h:5433/db"
    with pytest.raises(ValueError, match="PostgreSQL"):
        libpq_conninfo("sqlite:///x.db")
