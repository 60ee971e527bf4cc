"""The GB/T 28181 registry over real UDP on loopback, with a real catalog, ingest and SQLite
database: REGISTER with digest, refusals and their limit, the catalog read in pages and
kept up to date by notifications, keepalive loss and recovery, a new address, de-registration,
and the channels and overrides that outlive a restart and a catalog refresh.

The lower platform is ``tests/services/gb_peer.py`` (this project's SIP code, client side),
so a test sends exactly the message it is about, and the simulator
(``simulator/gb_platform.py``, its own SIP code) for a platform as a whole.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from surveillance.catalog import Catalog
from surveillance.config.models import AppConfig
from surveillance.db import create_db_engine, upgrade
from surveillance.gb28181.digest import authorization, digest_params
from surveillance.gb28181.store import GbStore
from surveillance.gb28181.transport import Peer
from surveillance.media.gb_worker import GbFeed, GbIngestWorker
from surveillance.media.health import StreamState
from surveillance.redact import Redactor
from surveillance.services.gb_cameras import CHANNEL_OFF, NOT_REGISTERED
from surveillance.services.gb_presence import GbPlatformStatus, offline_reason
from surveillance.services.gb_registry import GbRegistry, build_gb_registry
from surveillance.services.ingest import IngestService
from surveillance.simulator.gb_platform import GbChannelSpec, GbPlatformSimulator
from tests.services.gb_peer import TestPlatform, catalog_body, item_xml
from tests.waits import eventually

pytestmark = pytest.mark.integration

DEVICE = "34020000002000000002"
PASSWORD = "gb-Secret-4711"
GROUP = "34020000002150000001"
TCP_DEVICE = "34020000001180000003"  # an NVR that speaks SIP over TCP


def channel(n: int) -> str:
    return f"340200000013200{n:05d}"


def gb_config(tmp_path: Path) -> AppConfig:
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(tmp_path / "data")},
            "tags": [{"id": "schools", "name": "Schools"}, {"id": "north", "name": "North"}],
            "gb28181": {
                "enabled": True,
                "keepalive_interval_s": 1,
                "keepalive_missed": 2,
                "platforms": [
                    {
                        "id": "city",
                        "name": "City platform",
                        "device_id": DEVICE,
                        "password": PASSWORD,
                        "coordinates": "wgs84",
                        "tag_rules": [{"business_group": GROUP, "tags": ["schools"]}],
                    },
                    {
                        "id": "depot",
                        "name": "Depot NVR",
                        "device_id": TCP_DEVICE,
                        "password": PASSWORD,
                    },
                ],
            },
        }
    )
    # Port 0 (a free one, both UDP and TCP): below the configuration's range on purpose.
    gb = config.gb28181.model_copy(update={"sip_port": 0})
    return config.model_copy(update={"gb28181": gb})


@dataclass
class Parts:
    registry: GbRegistry
    catalog: Catalog
    ingest: IngestService
    engine: Engine


class NobodyPlays:
    """The opener of channels nobody watches here (playing is the player's, tested with
    it): a GbIngestWorker that is never started never calls it."""

    def open(self, camera_id: str, timeout_s: float) -> GbFeed:
        raise AssertionError(f"{camera_id} was not to be played")


async def start_parts(config: AppConfig, engine: Engine) -> Parts:
    catalog = Catalog.from_config(config)
    ingest = IngestService(catalog, config.ingest, Redactor())
    ingest.register_source(
        "gb28181",
        lambda stream, camera, sub: GbIngestWorker(
            stream, camera.id, NobodyPlays(), ingest.source_options(camera), ingest.backoff(), str
        ),
    )
    registry = build_gb_registry(config.gb28181, catalog, ingest, engine, Redactor())
    assert registry is not None
    await ingest.start()
    await registry.start()
    return Parts(registry, catalog, ingest, engine)


async def stop_parts(parts: Parts) -> None:
    await parts.registry.stop()
    await parts.ingest.stop()


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'node.db'}")
    upgrade(engine)
    started = await start_parts(gb_config(tmp_path), engine)
    yield started
    await stop_parts(started)
    engine.dispose()


def last_error(parts: Parts, camera_id: str) -> str | None:
    return parts.ingest.camera_health(camera_id).main.last_error


async def send_catalog(platform: TestPlatform, sn: int, pages: list[list[str]], total: int) -> None:
    for page in pages:
        answered = await platform.request(
            "MESSAGE", body=catalog_body("Response", sn, DEVICE, total, page)
        )
        assert answered.status == 200


async def test_register_catalog_notify_keepalive_loss_new_address_and_deregistration(
    parts: Parts, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    registry, catalog = parts.registry, parts.catalog
    platform = TestPlatform(DEVICE, registry.transport.port)
    await platform.start()
    try:
        # Wrong password: challenged again, nothing registered, no catalog asked for.
        assert (await platform.register("not-the-password")).status == 401
        assert registry.status()[0].online is False
        registered = await platform.register(PASSWORD, expires=100_000)
        assert registered.status == 200
        assert registered.headers.get("Expires") == "3600"  # cut to register_expires_max_s
        contact = f"<sip:{DEVICE}@127.0.0.1:{platform.port}>;expires=3600"
        assert registered.headers.get("Contact") == contact  # RFC 3261 s.10.3 step 8
        date = registered.headers.get("Date") or ""
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", date)  # s.9.10.2
        status = registry.status()[0]
        assert (status.online, status.host, status.port, status.transport) == (
            True, "127.0.0.1", platform.port, "udp",
        )  # fmt: skip
        # The catalog is asked for and subscribed to; it comes in two pages.
        queries = await eventually(platform.catalog_queries, "a catalog query")
        await eventually(platform.subscriptions, "a catalog subscription")
        sn = int(re.search(rb"<SN>(\d+)</SN>", queries[0].body).group(1))  # type: ignore[union-attr]
        first = [
            item_xml(channel(1), "North gate", Status="ON", BusinessGroupID=GROUP,
                     Longitude="117.2", Latitude="31.8"),
            item_xml(GROUP, "Schools"),  # a business group: tags by rule, no camera
        ]  # fmt: skip
        second = [item_xml(channel(2), "Yard", Status="OFF")]
        await send_catalog(platform, sn, [first, second], total=3)
        gate, yard = f"city.{channel(1)}", f"city.{channel(2)}"
        await eventually(lambda: yard in catalog.cameras and gate in catalog.cameras, "cameras")
        assert len([c for c in catalog.cameras.values() if c.platform_id == "city"]) == 2
        assert catalog.cameras[gate].tags == ("schools",)
        assert catalog.cameras[gate].name == "North gate"
        assert catalog.cameras[gate].location is not None
        assert last_error(parts, yard) == CHANNEL_OFF  # reported OFF: unreachable, and why
        assert parts.ingest.camera_health(gate).state is StreamState.IDLE
        status = registry.status()[0]
        assert (status.channels, status.channels_online) == (2, 1)

        # Notifications: ON/OFF change reachability; ADD and DEL change the cameras.
        notify = [item_xml(channel(2), "Yard", Event="ON"), item_xml(channel(1), "x", Event="DEL"),
                  item_xml(channel(3), "Gate 3", Event="ADD", Status="ON")]  # fmt: skip
        answered = await platform.request(
            "NOTIFY", body=catalog_body("Notify", 77, DEVICE, 3, notify),
            extra=[("Event", "Catalog")],
        )  # fmt: skip
        assert answered.status == 200
        third = f"city.{channel(3)}"
        await eventually(lambda: third in catalog.cameras and gate not in catalog.cameras, "DEL")
        await eventually(lambda: parts.ingest.camera_health(yard).state is StreamState.IDLE, "ON")

        # Keepalives keep it online; without them it goes offline after 2 x 1 s.
        assert (await platform.keepalive()).status == 200
        store = GbStore(parts.engine)
        await eventually(lambda: _keepalive_at(store), "the keepalive stored")
        offline = "platform offline: no keepalive for 2 s"
        await eventually(lambda: registry.status()[0].reason == offline, "offline")
        assert last_error(parts, third) == offline and registry.peer("city") is None
        assert registry.status()[0].channels_online == 0
        assert (await platform.keepalive()).status == 200  # back
        await eventually(lambda: registry.status()[0].online, "online again")
        await eventually(lambda: parts.ingest.camera_health(third).state is StreamState.IDLE, "ok")
    finally:
        await platform.stop()

    # The same platform from a new address: registered there, its cameras kept.
    moved = TestPlatform(DEVICE, registry.transport.port)
    await moved.start()
    try:
        assert (await moved.register(PASSWORD)).status == 200
        peer = registry.peer("city")
        assert peer is not None and peer.port == moved.port
        assert {yard, third} <= catalog.cameras.keys()
        # De-registration: offline at once, with its reason; the cameras stay.
        assert (await moved.register(PASSWORD, expires=0)).status == 200
        assert registry.status()[0].reason == "platform unregistered"
        assert last_error(parts, yard) == "platform unregistered" and yard in catalog.cameras
        # A keepalive from a platform that is not registered is refused.
        assert (await moved.keepalive()).status == 403
    finally:
        await moved.stop()
    text = caplog.text
    assert "city" in text and "127.0.0.1" in text  # log lines name platform and address
    assert PASSWORD not in text and "response=" not in text  # never a password or digest


def _keepalive_at(store: GbStore) -> float | None:
    record = store.platform("city")
    return None if record is None else record.last_keepalive_at


async def test_unknown_ids_and_repeated_wrong_passwords_are_refused(parts: Parts) -> None:
    registry = parts.registry
    stranger = TestPlatform("34020000002000000099", registry.transport.port)
    guesser = TestPlatform(DEVICE, registry.transport.port)
    await stranger.start()
    await guesser.start()
    try:
        assert (await stranger.register(PASSWORD)).status == 403
        # Failures counted per address: the stranger's one and the guesser's wrong passwords
        # share 127.0.0.1; after five in a minute even the right password is refused.
        answers = [(await guesser.register(f"guess-{n}")).status for n in range(4)]
        assert answers[:3] == [401, 401, 401] and answers[3] == 403
        assert (await guesser.register(PASSWORD)).status == 403
        dropped = registry.dropped()
        assert dropped["unknown_device"] == 1 and dropped["bad_credentials"] == 4
        assert dropped["blocked_address"] >= 1
        assert registry.status()[0].online is False
    finally:
        await stranger.stop()
        await guesser.stop()


async def test_channels_and_overrides_outlive_a_restart_and_a_catalog_refresh(
    tmp_path: Path,
) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'node.db'}")
    upgrade(engine)
    config = gb_config(tmp_path)
    parts = await start_parts(config, engine)
    platform = TestPlatform(DEVICE, parts.registry.transport.port)
    await platform.start()
    gate = f"city.{channel(1)}"
    try:
        assert (await platform.register(PASSWORD)).status == 200
        queries = await eventually(platform.catalog_queries, "a catalog query")
        sn = int(re.search(rb"<SN>(\d+)</SN>", queries[0].body).group(1))  # type: ignore[union-attr]
        items = [item_xml(channel(1), "Gate", Status="ON"), item_xml(channel(2), "Yard")]
        await send_catalog(platform, sn, [items], total=2)
        await eventually(lambda: gate in parts.catalog.cameras, "cameras")
        await parts.registry.cameras.set_override(
            gate, name="Main gate", tags=["north"], user="ann", at=time.time()
        )
        assert parts.catalog.cameras[gate].name == "Main gate"
        assert parts.catalog.cameras[gate].tags == ("north",)
    finally:
        await platform.stop()
        await stop_parts(parts)

    # A new start: the stored channels are cameras before the platform registers again.
    # Its registration from before the restart is still valid (a platform does not
    # register again until it expires): online at once, pending its next keepalive; the
    # depot never registered. No keepalive within keepalive_missed intervals: offline.
    parts = await start_parts(config, engine)
    # The platform keeps its socket (and port) across our restart, as a real one does.
    platform = TestPlatform(DEVICE, parts.registry.transport.port, port=platform.port)
    await platform.start()
    try:
        assert parts.catalog.cameras[gate].name == "Main gate"
        assert parts.ingest.camera_health(gate).state is StreamState.IDLE
        status = {s.platform_id: s for s in parts.registry.status()}
        assert (status["city"].online, status["city"].host) == (True, "127.0.0.1")
        assert (status["depot"].online, status["depot"].reason) == (False, NOT_REGISTERED)
        # Its keepalives, from where it registered before the restart, are taken.
        assert (await platform.keepalive()).status == 200
        await eventually(lambda: last_error(parts, gate) == offline_reason(2.0), "offline")
        # Registrations that expired (or were ended) are not taken over.
        await stop_parts(parts)
        GbStore(engine).record_unregistered("city", time.time())
        parts = await start_parts(config, engine)
        await platform.stop()
        platform = TestPlatform(DEVICE, parts.registry.transport.port)
        await platform.start()
        assert last_error(parts, gate) == NOT_REGISTERED
        assert (await platform.register(PASSWORD)).status == 200
        queries = await eventually(platform.catalog_queries, "a catalog query")
        sn = int(re.search(rb"<SN>(\d+)</SN>", queries[0].body).group(1))  # type: ignore[union-attr]
        # The refreshed catalog renames the channel and drops the yard: the override stays.
        await send_catalog(platform, sn, [[item_xml(channel(1), "Gate renamed")]], total=1)
        yard = f"city.{channel(2)}"
        await eventually(lambda: yard not in parts.catalog.cameras, "the yard removed")
        camera = parts.catalog.cameras[gate]
        assert (camera.name, camera.tags) == ("Main gate", ("north",))
        await eventually(lambda: parts.ingest.camera_health(gate).state is StreamState.IDLE, "ok")
        # "Not registered" is no longer so: not a warning left on the camera.
        assert parts.ingest.camera_health(gate).main.warning is None
        await parts.registry.cameras.clear_override(gate)
        assert parts.catalog.cameras[gate].name == "Gate renamed"
    finally:
        await platform.stop()
        await stop_parts(parts)
        engine.dispose()


async def test_the_simulated_platform_registers_and_hands_over_hundreds_of_channels(
    parts: Parts,
) -> None:
    """The simulator (its own SIP code) against the registry: 300 channels in pages of 20,
    keepalive loss and recovery, notifications, a new address, de-registration."""
    registry, catalog = parts.registry, parts.catalog
    channels = [
        GbChannelSpec(
            channel_id=channel(n), name=f"通道 {n}", clip="h264", civil_code="340200",
            business_group_id=GROUP if n % 2 else None, longitude=117.2, latitude=31.8,
        )
        for n in range(300)
    ]  # fmt: skip
    simulator = GbPlatformSimulator(
        device_id=DEVICE, password=PASSWORD, server_host="127.0.0.1",
        server_port=registry.transport.port, server_id="34020000002000000001",
        domain="3402000000", channels=channels, keepalive_s=0.3, page_size=20,
    )  # fmt: skip
    await simulator.start()
    try:
        await eventually(lambda: registry.status()[0].channels == 300, "300 channels")
        assert simulator.registered
        first = catalog.cameras[f"city.{channel(1)}"]
        assert first.name == "通道 1" and first.tags == ("schools",)  # GB2312 names
        assert catalog.cameras[f"city.{channel(2)}"].tags == ()
        assert registry.status()[0].channels_online == 300

        simulator.fault("stop-keepalive")
        offline = "platform offline: no keepalive for 2 s"
        await eventually(lambda: registry.status()[0].reason == offline, "offline")
        assert last_error(parts, f"city.{channel(7)}") == offline
        simulator.fault("resume-keepalive")
        await eventually(lambda: registry.status()[0].online, "online again")

        gone, off = channels[0], channels[1]
        await simulator.notify_catalog("DEL", [gone])
        await simulator.notify_catalog("OFF", [off])
        await eventually(lambda: f"city.{gone.channel_id}" not in catalog.cameras, "DEL")
        await eventually(lambda: last_error(parts, f"city.{off.channel_id}") == CHANNEL_OFF, "OFF")

        await simulator.reregister_from(0)
        await eventually(
            lambda: (registry.peer("city") or _nowhere()).port == simulator.local_port, "moved"
        )
        assert registry.status()[0].channels == 299
    finally:
        await simulator.stop()
    await eventually(lambda: registry.status()[0].reason == "platform unregistered", "gone")

    # SIP over TCP on the same port: registered over its connection, answered on it, while
    # another address tries to hold every TCP connection: only 8 of its 300 are kept
    # (256 idle connections from one address used to lock every TCP platform out).
    hoarded = [
        await asyncio.open_connection(
            "127.0.0.1", registry.transport.port, local_addr=("127.0.0.2", 0)
        )
        for _ in range(300)
    ]
    await eventually(lambda: registry.dropped()["tcp_connections"] >= 292, "hoarding refused")
    nvr = GbPlatformSimulator(
        device_id=TCP_DEVICE, password=PASSWORD, server_host="127.0.0.1",
        server_port=registry.transport.port, server_id="34020000002000000001",
        domain="3402000000", transport="tcp", channels=channels[:3],
    )  # fmt: skip
    await nvr.start()
    try:
        await eventually(lambda: registry.status()[1].channels == 3, "the NVR's channels")
        depot = registry.status()[1]
        assert (depot.platform_id, depot.online, depot.transport) == ("depot", True, "tcp")
    finally:
        await nvr.stop()
        for _, writer in hoarded:
            writer.close()


def _nowhere() -> Peer:
    return Peer("", 0, "udp")


async def test_a_platforms_requests_are_taken_only_from_where_it_registered(
    parts: Parts, caplog: pytest.LogCaptureFixture
) -> None:
    """The device id in From is the sender's word: a keepalive or catalog notification with a
    registered platform's id from another address is refused (403, logged with the address)
    and changes nothing, until that address registers with the password."""
    caplog.set_level(logging.WARNING)
    registry, catalog = parts.registry, parts.catalog
    platform = TestPlatform(DEVICE, registry.transport.port)
    stranger = TestPlatform(DEVICE, registry.transport.port, host="127.0.0.2")
    neighbour = TestPlatform(DEVICE, registry.transport.port)  # same host, another port
    for peer in (platform, stranger, neighbour):
        await peer.start()
    try:
        assert (await platform.register(PASSWORD)).status == 200
        queries = await eventually(platform.catalog_queries, "a catalog query")
        sn = int(re.search(rb"<SN>(\d+)</SN>", queries[0].body).group(1))  # type: ignore[union-attr]
        await send_catalog(platform, sn, [[item_xml(channel(1), "Gate", Status="ON")]], total=1)
        gate = f"city.{channel(1)}"
        await eventually(lambda: gate in catalog.cameras, "the camera")

        delete = catalog_body("Notify", 5, DEVICE, 1, [item_xml(channel(1), "x", Event="DEL")])
        for spoofer in (stranger, neighbour):
            assert (await spoofer.keepalive()).status == 403
            answer = await spoofer.request("NOTIFY", body=delete, extra=[("Event", "Catalog")])
            assert answer.status == 403
        assert registry.dropped()["wrong_address"] == 4
        assert (await platform.keepalive()).status == 200
        await asyncio.sleep(0.5)  # a follow-up (the DEL) would have run by now: none was queued
        assert gate in catalog.cameras
        assert "127.0.0.2" in caplog.text and "claims platform city" in caplog.text

        # A platform that moved registers again (with the password): from then on it is
        # taken from its new address, and no longer from the old one.
        assert (await stranger.register(PASSWORD)).status == 200
        assert (await stranger.keepalive()).status == 200
        assert (await platform.keepalive()).status == 403
    finally:
        for peer in (platform, stranger, neighbour):
            await peer.stop()


async def test_a_captured_register_cannot_be_replayed(parts: Parts) -> None:
    """RFC 2617 s.3.2.2: the Authorization of a REGISTER, replayed from another address or
    from the same one, is challenged again (401) and moves nothing. A bad Expires: 400."""
    registry = parts.registry
    platform = TestPlatform(DEVICE, registry.transport.port)
    listener = TestPlatform(DEVICE, registry.transport.port, host="127.0.0.2")
    for peer in (platform, listener):
        await peer.start()
    try:
        expires = [("Expires", "3600")]
        first = await platform.request("REGISTER", extra=expires)
        challenge = digest_params(first.headers.get("WWW-Authenticate") or "")
        credentials = authorization(
            username=DEVICE, password=PASSWORD, realm=challenge["realm"],
            nonce=challenge["nonce"], method="REGISTER", uri="sip:34020000002000000001@x",
            qop="auth", cnonce="c0ffee",
        )  # fmt: skip
        authorized = [*expires, ("Authorization", credentials)]
        assert (await platform.request("REGISTER", extra=authorized)).status == 200
        # Each a new transaction (new Call-ID). From elsewhere the nonce is not one it was
        # sent; from the platform's own address it was used: a fresh nonce, stale=TRUE.
        replayed = await listener.request("REGISTER", extra=authorized)
        assert replayed.status == 401
        assert "stale" not in (replayed.headers.get("WWW-Authenticate") or "")
        replayed = await platform.request("REGISTER", extra=authorized)
        assert replayed.status == 401
        assert "stale=TRUE" in (replayed.headers.get("WWW-Authenticate") or "")
        peer = registry.peer("city")
        assert peer is not None and (peer.host, peer.port) == ("127.0.0.1", platform.port)
        assert (await listener.register(PASSWORD)).status == 200  # with the password: fine
        # RFC 3261 s.20.19: Expires is a number of seconds; anything else is refused, named.
        negative = await listener.register(PASSWORD, expires=-5)
        assert (negative.status, negative.reason) == (400, "Bad Expires: -5")
        word = await listener.request("REGISTER", extra=[("Expires", "soon")])
        assert (word.status, word.reason) == (400, "Bad Expires: soon")
        assert registry.status()[0].online  # still registered as it was
    finally:
        for peer in (platform, listener):
            await peer.stop()


async def test_the_simulator_over_tcp_registers_again_after_the_node_restarts(
    tmp_path: Path,
) -> None:
    """A restart closes the platform's SIP connection: the simulated platform (as a device
    does) connects again and registers at once, not at its registration's expiry."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'node.db'}")
    upgrade(engine)
    config = gb_config(tmp_path)
    parts = await start_parts(config, engine)
    port = parts.registry.transport.port
    simulator = GbPlatformSimulator(
        device_id=TCP_DEVICE, password=PASSWORD, server_host="127.0.0.1", server_port=port,
        server_id="34020000002000000001", domain="3402000000", transport="tcp", channels=[],
        keepalive_s=0.3,
    )  # fmt: skip

    def depot() -> GbPlatformStatus:
        return {s.platform_id: s for s in parts.registry.status()}["depot"]

    await simulator.start()
    try:
        await eventually(lambda: depot().online, "registered over TCP")
        first_port = simulator.local_port
        await stop_parts(parts)
        restarted = time.time()
        same_port = config.gb28181.model_copy(update={"sip_port": port})
        parts = await start_parts(config.model_copy(update={"gb28181": same_port}), engine)
        await eventually(
            lambda: (registered := depot().registered_at) is not None and registered > restarted,
            "registered again after the restart",
        )
        assert depot().online and depot().port == simulator.local_port != first_port
        assert simulator.registered
    finally:
        await simulator.stop()
        await stop_parts(parts)
        engine.dispose()
