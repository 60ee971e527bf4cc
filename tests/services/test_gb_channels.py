"""GB/T 28181 channels as cameras (name, tags by rule, overrides, WGS-84 positions), catalog
pages assembled by SN, the catalog schedule, REGISTER failures limited per address: no SIP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import pytest

from surveillance.catalog import Catalog
from surveillance.config.models import (
    AppConfig,
    Gb28181Config,
    GbCoordinates,
    GbPlatformConfig,
    IngestConfig,
)
from surveillance.db import create_db_engine, upgrade
from surveillance.gb28181.coords import gcj02_to_wgs84
from surveillance.gb28181.manscdp import CatalogAnswer, CatalogItem
from surveillance.gb28181.records import GbChannelRecord, GbOverride
from surveillance.gb28181.store import GbStore
from surveillance.services.gb_cameras import (
    GbChannelCameras,
    channel_camera,
    channel_record,
    channel_tags,
    is_video_channel,
    wgs84,
)
from surveillance.services.gb_catalog import CatalogAssembler, GbCatalogSync
from surveillance.services.gb_presence import RegisterFailures
from surveillance.services.ingest import IngestService

CAMERA = "34020000001320000001"  # type 132: IP camera
DOME = "34020000001310000002"  # type 131: camera
GROUP = "34020000002150000001"  # 215: business group
ORGANISATION = "34020000002160000003"  # 216: virtual organisation
NVR = "34020000001180000001"  # 118: an NVR itself (its channels are 131/132)


def platform(**changes: object) -> GbPlatformConfig:
    fields = {
        "id": "city",
        "name": "City platform",
        "device_id": "34020000002000000002",
        "password": "secret-pass",
        "tags": ["traffic"],
        "tag_rules": [
            {"civil_code": "3402", "tags": ["district-2"]},
            {"civil_code": "3499", "tags": ["elsewhere"]},
            {"business_group": GROUP, "tags": ["schools"]},
            {"civil_code": "340200", "business_group": ORGANISATION, "tags": ["gates", "traffic"]},
        ],
        **changes,
    }
    return GbPlatformConfig.model_validate(fields)


def item(device_id: str = CAMERA, **changes: object) -> CatalogItem:
    base = CatalogItem(
        device_id=device_id, name=" North gate ", status="ON", event=None,
        civil_code="340200", parent_id=None, business_group_id=None, manufacturer="Hik",
        model="DS-2CD", address="1 Gate Road", longitude=117.2, latitude=31.8, ptz_type=1,
        parental=False,
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_channel_becomes_an_on_demand_camera_with_tags_by_rule_and_a_wgs84_position() -> None:
    city = platform()
    record = channel_record(city, item(), at=5.0)
    assert (record.name, record.raw_longitude, record.raw_latitude) == ("North gate", 117.2, 31.8)
    assert (record.longitude, record.latitude) == pytest.approx(gcj02_to_wgs84(117.2, 31.8))
    # GCJ-02 moved it by hundreds of metres
    assert record.longitude is not None and abs(record.longitude - 117.2) > 1e-4
    camera = channel_camera(city, record, None)
    assert camera.id == f"city.{CAMERA}" and camera.runtime and camera.platform_id == "city"
    assert camera.stream_url() == f"gb28181://city/{CAMERA}" and camera.source_kind == "gb28181"
    assert camera.mode.value == "on-demand" and camera.recording is None
    assert camera.tags == ("traffic", "district-2")  # platform tags, then each matching rule
    assert camera.location is not None and camera.location.place == "1 Gate Road"
    # A group rule matches the business group or any parent on a "/" path; a rule with
    # both conditions needs both.
    in_group = replace(record, business_group_id=GROUP)
    assert channel_tags(city, in_group) == ("traffic", "district-2", "schools")
    nested = replace(record, parent_id=f"34020000002000000002/{ORGANISATION}")
    assert channel_tags(city, nested) == ("traffic", "district-2", "gates")
    assert channel_tags(city, replace(nested, civil_code="349900")) == ("traffic", "elsewhere")
    # Without a CivilCode, the division code the id starts with counts.
    assert "district-2" in channel_tags(city, replace(record, civil_code=None))


def test_overrides_win_and_an_empty_name_falls_back() -> None:
    city = platform(coordinates=GbCoordinates.WGS84)
    record = channel_record(city, item(name="  "), at=1.0)
    assert record.name == CAMERA and (record.longitude, record.latitude) == (117.2, 31.8)
    override = GbOverride(f"city.{CAMERA}", "Main gate", ("gates",), "ann", 2.0)
    camera = channel_camera(city, record, override)
    assert (camera.name, camera.tags) == ("Main gate", ("gates",))
    tags_only = replace(override, name=None)
    assert channel_camera(city, record, tags_only).name == CAMERA
    name_only = replace(override, tags=None)
    assert channel_camera(city, record, name_only).tags == ("traffic", "district-2")


def test_a_channel_shows_its_platforms_media_transport_and_no_bidi_controls() -> None:
    # "Gate\u202Egnp.exe" would be drawn reordered: it could pass for another camera.
    spoof = item(name="Gate \u202eetag htroN\u2066\u2069", address="\u202a1 Gate Road\u202c")
    for transport, shown in (("udp", "udp"), ("tcp-passive", "tcp"), ("tcp-active", "tcp")):
        city = platform(transport=transport)
        record = channel_record(city, spoof, at=1.0)
        assert (record.name, record.address) == ("Gate etag htroN", "1 Gate Road")
        assert channel_camera(city, record, None).transport.value == shown
    only_controls = channel_record(platform(), item(name="\u202e\u202c"), at=1.0)
    assert only_controls.name == CAMERA  # nothing left: the id, as for an empty name


def test_positions_that_mean_unknown_are_none_and_only_video_channels_are_cameras() -> None:
    for lon, lat in [(0.0, 0.0), (None, 31.8), (float("nan"), 31.8), (200.0, 31.8), (117.0, 95.0)]:
        assert wgs84(GbCoordinates.GCJ02, lon, lat) == (None, None)
    assert wgs84(GbCoordinates.GCJ02, 2.35, 48.85) == (2.35, 48.85)  # outside China: as is
    assert [is_video_channel(i) for i in (CAMERA, DOME, GROUP, ORGANISATION, NVR, "3402")] == [
        True, True, False, False, False, False,
    ]  # fmt: skip


def answer(sn: int, sum_num: int, ids: list[str], skipped: int = 0) -> CatalogAnswer:
    items = tuple(item(i) for i in ids)
    return CatalogAnswer(sn=sn, device_id="34020000002000000002", sum_num=sum_num, items=items,
                         skipped=skipped)  # fmt: skip


def channel(n: int) -> str:
    return f"340200000013200{n:05d}"


def test_catalog_pages_are_assembled_by_sn_until_sum_num_or_the_wait_ends() -> None:
    assembler = CatalogAssembler(lambda platform_id: 250, page_wait_s=30)
    assembler.expect("city", 1, now=0.0)
    first = [channel(n) for n in range(20)] + [GROUP]  # groups count toward SumNum, not kept
    assert assembler.add("city", answer(1, 42, first), now=1.0) is None
    # Another catalog (SN 2) interleaves and stays apart.
    assert assembler.add("city", answer(2, 300, [channel(500)]), now=1.5) is None
    second = [channel(n) for n in range(20, 40)] + [channel(5)]  # a repeat is kept once
    done = assembler.add("city", answer(1, 42, second), now=2.0)
    assert done is not None and done.complete and done.sn == 1 and done.sum_num == 42
    assert sorted(i.device_id for i in done.items) == [channel(n) for n in range(40)]
    # SN 2 stops coming: after the wait what came is handed over as incomplete.
    assert assembler.expire(now=31.0) == []
    expired = assembler.expire(now=31.6)
    assert [(r.sn, r.complete, len(r.items)) for r in expired] == [(2, False, 1)]
    # Items dropped by the parser (no valid DeviceID) count toward SumNum.
    done = assembler.add("city", answer(3, 3, [channel(1)], skipped=2), now=40.0)
    assert done is not None and done.complete
    # At most max_channels channels are kept of one catalog.
    many = [channel(n) for n in range(300)]
    done = assembler.add("city", answer(4, 300, many), now=50.0)
    assert done is not None and len(done.items) == 250 and done.beyond_max == 50
    assert expired[0].beyond_max == 0


def test_register_failures_block_an_address_for_a_minute() -> None:
    failures = RegisterFailures(max_failures=5, window_s=60, block_s=60)
    assert not any(failures.failed("10.0.0.1", now=float(t)) for t in range(4))
    assert failures.failed("10.0.0.2", now=1.0) is False  # another address counts apart
    assert failures.failed("10.0.0.1", now=10.0) is True
    assert failures.blocked("10.0.0.1", now=69.0) and not failures.blocked("10.0.0.2", now=69.0)
    assert not failures.blocked("10.0.0.1", now=70.0)
    # Failures older than the window are forgotten; a success forgets them all.
    for t in (100.0, 101.0, 102.0, 103.0):
        failures.failed("10.0.0.3", now=t)
    assert failures.failed("10.0.0.3", now=170.0) is False
    failures.succeeded("10.0.0.3")
    assert not any(failures.failed("10.0.0.3", now=171.0 + t) for t in range(4))


def test_a_channel_record_keeps_the_platform_and_time() -> None:
    record = channel_record(platform(), item(DOME, status="OFF", ptz_type=None), at=7.5)
    assert isinstance(record, GbChannelRecord)
    assert (record.platform_id, record.channel_id, record.status, record.updated_at) == (
        "city", DOME, "OFF", 7.5,
    )  # fmt: skip


async def test_catalog_queries_repeat_and_subscriptions_renew_on_schedule(tmp_path: Path) -> None:
    """Asked for at once when a platform comes online, again every catalog_refresh_s; the
    subscription renewed a minute before it ends, retried after a refusal; nothing once
    the platform is offline. Time is a fake clock; the loop ticks every 10 ms."""
    config = Gb28181Config.model_validate(
        {"catalog_refresh_s": 600, "platforms": [platform().model_dump(mode="json")]}
    )
    engine = create_db_engine(f"sqlite:///{tmp_path / 'node.db'}")
    upgrade(engine)
    catalog = Catalog.from_config(AppConfig(gb28181=config))
    cameras = GbChannelCameras(
        config.platforms, catalog, IngestService(catalog, IngestConfig(), str), GbStore(engine)
    )
    now = [1000.0]
    sent: list[str] = []
    subscribe_status = [200]

    async def request(
        platform_id: str, method: str, body: bytes, extra: Iterable[tuple[str, str]]
    ) -> int | None:
        sent.append(method)
        if method == "SUBSCRIBE":
            assert ("Expires", "3600") in list(extra) and b"<CmdType>Catalog" in body
            return subscribe_status[0]
        return 200

    async def after(seconds: float, wanted: list[str]) -> None:
        now[0] += seconds
        for _ in range(500):
            await asyncio.sleep(0.01)
            if sorted(sent) == sorted(wanted):
                return
        raise AssertionError(f"sent {sent}, wanted {wanted}")

    sync = GbCatalogSync(config, cameras, request, clock=lambda: now[0], tick_s=0.01)
    await sync.start()
    try:
        sync.platform_online("city", "34020000002000000002")
        await after(0, ["MESSAGE", "SUBSCRIBE"])
        await after(600, ["MESSAGE", "SUBSCRIBE", "MESSAGE"])  # the periodic refresh
        subscribe_status[0] = 489  # Bad Event: this time it is not taken
        # A minute before the subscription ends it is renewed (with the query due then).
        await after(2940, [*sent, "MESSAGE", "SUBSCRIBE"])
        # Refused: tried again a refresh interval later.
        await after(600, [*sent, "MESSAGE", "SUBSCRIBE"])
        sync.platform_offline("city")
        count = len(sent)
        now[0] += 10_000
        await asyncio.sleep(0.1)
        assert len(sent) == count
    finally:
        await sync.stop()
        engine.dispose()
