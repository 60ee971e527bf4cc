"""The GB/T 28181 store on a migrated SQLite database (and PostgreSQL in the full run)."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import Engine

from surveillance.gb28181.records import GbChannelRecord, GbRegistration, GbSessionRecord
from surveillance.gb28181.store import GbStore
from tests.cases.conftest import engine, postgres

__all__ = ["engine", "postgres"]

PLATFORM = "city"
DEVICE = "34020000002000000002"


def _channel(n: int, **changes: object) -> GbChannelRecord:
    channel = GbChannelRecord(
        platform_id=PLATFORM,
        channel_id=f"340200000013200{n:05d}",
        name=f"Gate {n}",
        status="ON",
        civil_code="340200",
        updated_at=1.0,
    )
    return replace(channel, **changes)  # type: ignore[arg-type]


def _register(store: GbStore, host: str = "127.0.0.1", at: float = 100.0) -> None:
    store.record_registration(
        GbRegistration(PLATFORM, DEVICE, host, 5070, "udp", at, at + 3600, "Sim/1" * 100)
    )


def test_platform_registration_keepalive_and_deregistration(engine: Engine) -> None:
    store = GbStore(engine)
    assert store.record_keepalive(PLATFORM, 101.0) is False  # never registered: no row
    _register(store)
    assert store.record_keepalive(PLATFORM, 150.0) is True
    record = store.platform(PLATFORM)
    assert record is not None
    assert (record.host, record.port, record.last_keepalive_at) == ("127.0.0.1", 5070, 150.0)
    assert record.user_agent is not None and len(record.user_agent) == 200  # cut to the column
    assert record.online(now=200.0, keepalive_timeout_s=180)
    assert not record.online(now=331.0, keepalive_timeout_s=180)  # keepalives missed
    store.replace_channels(PLATFORM, [_channel(1)], at=160.0)
    # Registering again from a new address keeps the catalog.
    _register(store, host="127.0.0.2", at=300.0)
    record = store.platform(PLATFORM)
    assert record is not None
    assert (record.host, record.channel_count, record.catalog_at) == ("127.0.0.2", 1, 160.0)
    assert record.online(now=331.0, keepalive_timeout_s=180)  # the REGISTER counts as heard
    store.record_unregistered(PLATFORM, at=340.0)
    record = store.platform(PLATFORM)
    assert record is not None and not record.online(now=341.0, keepalive_timeout_s=180)
    assert [p.platform_id for p in store.platforms()] == [PLATFORM]
    store.forget_platform(PLATFORM)
    assert store.platforms() == [] and store.channels(PLATFORM) == []


def test_channels_replace_upsert_delete_and_counts(engine: Engine) -> None:
    store = GbStore(engine)
    _register(store)
    long_name = "x" * 500
    count = store.replace_channels(
        PLATFORM, [_channel(n) for n in range(300)] + [_channel(300, name=long_name)], at=5.0
    )
    assert count == 301
    page = store.channels(PLATFORM, offset=100, limit=50)
    assert [c.channel_id for c in page] == [_channel(n).channel_id for n in range(100, 150)]
    assert store.channels(PLATFORM, offset=300)[0].name == "x" * 200
    # A refresh replaces the catalog as a whole.
    store.replace_channels(PLATFORM, [_channel(1), _channel(2, status="OFF")], at=6.0)
    counts = store.channel_counts()[PLATFORM]
    assert (counts.total, counts.online) == (2, 1)
    store.upsert_channels(PLATFORM, [_channel(2, status="ON", name="Renamed"), _channel(3)])
    assert [(c.name, c.status) for c in store.channels(PLATFORM)] == [
        ("Gate 1", "ON"),
        ("Renamed", "ON"),
        ("Gate 3", "ON"),
    ]
    store.delete_channels(PLATFORM, [_channel(1).channel_id])
    record = store.platform(PLATFORM)
    assert record is not None and record.channel_count == 2
    # Another platform's channel handed in by mistake is not stored under this one.
    store.upsert_channels(PLATFORM, [replace(_channel(9), platform_id="other")])
    assert len(store.channels()) == 2


def test_overrides_survive_a_catalog_refresh(engine: Engine) -> None:
    store = GbStore(engine)
    camera_id = f"{PLATFORM}.{_channel(1).channel_id}"
    assert store.override(camera_id) is None and store.clear_override(camera_id) is None
    saved = store.set_override(camera_id, name="North gate", tags=["gate"], user="ann", at=9.0)
    assert (saved.name, saved.tags, saved.updated_by) == ("North gate", ("gate",), "ann")
    store.replace_channels(PLATFORM, [_channel(1)], at=10.0)
    store.set_override(camera_id, name=None, tags=None, user="bob", at=11.0)
    override = store.overrides()[camera_id]
    assert (override.name, override.tags, override.updated_by) == (None, None, "bob")
    cleared = store.clear_override(camera_id)
    assert cleared is not None and cleared.updated_at == 11.0
    assert store.overrides() == {}


def test_sessions_add_list_remove_clear(engine: Engine) -> None:
    store = GbStore(engine)
    first = GbSessionRecord("call-1@x", "city.1", PLATFORM, "udp", 30000, "0200000001", 1.0)
    second = replace(first, call_id="call-2@x", platform_id="other", started_at=2.0)
    store.add_session(first)
    store.add_session(second)
    assert store.sessions() == [first, second]
    assert store.sessions(PLATFORM) == [first]
    assert store.remove_session("call-1@x") == first
    assert store.remove_session("call-1@x") is None
    assert store.clear_sessions() == [second]
    assert store.sessions() == []
