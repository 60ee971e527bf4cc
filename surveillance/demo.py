"""The demo: simulated cameras from the built-in simulator, served by a real node.

The demo's configuration is built in code (not read from a file) so that ``surveillance
demo`` runs on a fresh machine with no cameras and no config at all. There is no default
account either: each run makes (or resets) the demo's admin with a new random password.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from surveillance.auth.audit import AuditEntry, AuditLog
from surveillance.auth.roles import Role
from surveillance.auth.store import AuthStore
from surveillance.config.models import AppConfig
from surveillance.db import create_db_engine, database_url, upgrade
from surveillance.simulator import (
    GbChannelSpec,
    GbPlatformSimulator,
    GbPlatformThread,
    MountSpec,
    Simulator,
    ps_file,
)

DEMO_ADMIN = "admin"
DEMO_ACTOR = "demo"  # who the audit log says made the demo's admin
DEMO_RECORDING_MAX_BYTES = 1_000_000_000  # the demo's footage; the oldest goes past it

DEMO_PLATFORMS = (
    ("town-cctv", "Town CCTV platform"),
    ("safe-city", "Police safe-city platform"),
    ("forest-watch", "Forestry lookout platform"),
)
DEMO_TAG_SETS = (
    ["traffic"],
    ["school-gate", "public-order"],
    ["forest-fire"],
    ["geological-hazard"],
    ["sanitation", "public-order"],
    ["traffic", "public-order"],
)
DEMO_PLACE_NAMES = (
    "Main St / River Rd intersection",
    "No. 1 Primary School gate",
    "North ridge lookout",
    "Landslide slope K12",
    "Market square",
    "Bridge approach",
)


def demo_config(
    simulator: Simulator,
    mounts: list[MountSpec],
    data_dir: Path,
    gb: DemoGb | None = None,
    extra_cameras: Sequence[dict[str, Any]] = (),
) -> AppConfig:
    """A config with one camera per main mount, its ``-sub`` mount as sub-stream; with
    ``gb``, also the GB/T 28181 server the demo's county platform registers to; then
    ``extra_cameras`` (the ONVIF PTZ cameras: :func:`demo_onvif_cameras`)."""
    data = demo_config_data(simulator, mounts, data_dir, gb)
    data["cameras"].extend(extra_cameras)
    return AppConfig.model_validate(data)


def demo_config_data(
    simulator: Simulator, mounts: list[MountSpec], data_dir: Path, gb: DemoGb | None = None
) -> dict[str, Any]:
    """:func:`demo_config` as plain data (what a config file holds: the many-node demo
    writes it to files, one per node)."""
    paths = {mount.path for mount in mounts}
    cameras = []
    main_mounts = [m for m in mounts if not m.path.endswith("-sub")]
    for index, mount in enumerate(main_mounts):
        platform_id, _ = DEMO_PLATFORMS[index % len(DEMO_PLATFORMS)]
        sub_path = f"{mount.path}-sub"
        cameras.append(
            {
                "id": mount.path,
                "name": f"{DEMO_PLACE_NAMES[index % len(DEMO_PLACE_NAMES)]} ({mount.path})",
                "platform": platform_id,
                "url": simulator.url(mount.path),
                "sub_url": simulator.url(sub_path) if sub_path in paths else None,
                "tags": DEMO_TAG_SETS[index % len(DEMO_TAG_SETS)],
            }
        )
    return {
        "server": {"data_dir": str(data_dir)},
        # Every demo camera records (a real node decides per tag, platform and camera),
        # capped so a demo left running does not fill its machine's disk.
        "recording": {
            "default": {"mode": "continuous", "retain_days": 1},
            "max_bytes": DEMO_RECORDING_MAX_BYTES,
        },
        "platforms": [{"id": i, "name": n} for i, n in DEMO_PLATFORMS],
        "cameras": cameras,
        **({"gb28181": demo_gb_config(gb)} if gb else {}),
    }


def demo_admin(config: AppConfig) -> str:
    """Make the demo's admin, or give it back its role and a new password, in the demo's
    database; returns the password, made for this run only (no two runs share one)."""
    password = secrets.token_urlsafe(12)
    engine = create_db_engine(database_url(config))
    try:
        upgrade(engine)
        store, audit = AuthStore(engine), AuditLog(engine)
        if store.user(DEMO_ADMIN) is None:
            store.add_user(DEMO_ADMIN, Role.ADMIN, password)
            detail: dict[str, object] = {"role": Role.ADMIN.value}
            action = "user.add"
        else:
            store.update_user(DEMO_ADMIN, role=Role.ADMIN, platforms=(), cameras=(), disabled=False)
            store.set_password(DEMO_ADMIN, password)  # also ends the last run's sessions
            detail = {"role": Role.ADMIN.value, "password_reset": True}
            action = "user.update"
        audit.record(
            AuditEntry(
                user=DEMO_ACTOR,
                action=action,
                client="local",
                detail={"target": DEMO_ADMIN, **detail},
            )
        )
    finally:
        engine.dispose()
    return password


# -- the demo's GB/T 28181 lower platform ---------------------------------------------------
# A county's video platform (Anji county, Zhejiang: civil code 330523) registers to the demo
# node as a GB/T 28181 lower platform and serves six channels. Ids follow GB/T 28181-2016
# Annex D: 8-digit region + 2-digit industry, a 3-digit type, a 7-digit serial.
DEMO_GB_PLATFORM = "anji-gb"
DEMO_GB_DOMAIN = "3305230000"
DEMO_GB_SERVER_ID = "33052300002000000001"  # type 200: the demo node, the upper platform
DEMO_GB_DEVICE_ID = "33052300002000000002"  # type 200: the county platform, a lower one
# Business groups (type 215) the county files its channels under; tag rules key on them.
DEMO_GB_TRAFFIC_GROUP = "33052300002150000001"
DEMO_GB_FORESTRY_GROUP = "33052300002150000002"
DEMO_GB_CAMPUS_GROUP = "33052300002150000003"
DEMO_GB_LANDSLIDE_AREA = "33052307"  # civil code of the mountain township with the slope
# A range of its own, away from the service's default 30000-30499, so a node already
# running on this machine keeps its ports; busy ports in it are skipped (gb_ports).
DEMO_GB_RTP_PORTS = (35000, 35031)
DEMO_GB_KEEPALIVE_S = 15.0
DEMO_GB_CLIPS = ("h264", "h265")


def _gb_channel(
    serial: int, kind: int, name: str, clip: str, civil_code: str, group: str | None,
    lon_lat: tuple[float, float], ptz_type: int | None = None,
) -> GbChannelSpec:  # fmt: skip
    return GbChannelSpec(
        channel_id=f"{DEMO_GB_DOMAIN}{kind}{serial:07d}",
        name=name,
        clip=clip,
        civil_code=civil_code,
        business_group_id=group,
        longitude=lon_lat[0],
        latitude=lon_lat[1],
        ptz_type=ptz_type,
    )


# Names as a county platform gives them (GB2312 text), with English after; coordinates are
# GCJ-02, as Chinese map systems give them (the node converts them to WGS-84).
DEMO_GB_CHANNELS = (
    _gb_channel(1, 132, "安吉大道昌硕路口 Anji Ave / Changshuo Rd", "h264", "33052301",
                DEMO_GB_TRAFFIC_GROUP, (119.6842, 30.6389)),
    _gb_channel(2, 132, "递铺收费站 Dipu toll station", "h265", "33052301",
                DEMO_GB_TRAFFIC_GROUP, (119.7035, 30.6551)),
    _gb_channel(3, 131, "龙王山防火塔 Longwang Mountain fire tower", "h264", "33052305",
                DEMO_GB_FORESTRY_GROUP, (119.4321, 30.4063), ptz_type=1),
    _gb_channel(4, 132, "天荒坪林区东坡 Tianhuangping forest, east slope", "h265", "33052306",
                DEMO_GB_FORESTRY_GROUP, (119.5912, 30.4759)),
    _gb_channel(5, 132, "第一小学校门 No. 1 Primary School gate", "h264", "33052301",
                DEMO_GB_CAMPUS_GROUP, (119.6798, 30.6322)),
    _gb_channel(6, 132, "山川乡滑坡监测点 Shanchuan landslide watch", "h265",
                DEMO_GB_LANDSLIDE_AREA, None, (119.6450, 30.4920)),
)  # fmt: skip


@dataclass(frozen=True)
class DemoGb:
    """Where the demo node takes GB/T 28181 registrations, and the lower platform's password
    (made for this run; kept out of repr so no log line or traceback shows it)."""

    sip_port: int
    password: str = field(repr=False)


def demo_gb() -> DemoGb:
    """A free SIP port (UDP and TCP both: the node binds the pair) and a new password."""
    return DemoGb(sip_port=_free_sip_port(), password=secrets.token_urlsafe(18))


def _free_sip_port(host: str = "127.0.0.1", attempts: int = 20) -> int:
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue  # the UDP twin is taken: try another
                return port
    raise OSError(f"no port free for both UDP and TCP on {host}")


def demo_gb_config(gb: DemoGb) -> dict[str, object]:
    """The node's gb28181 section: one platform, tags by business group and civil code."""
    return {
        "enabled": True,
        "sip_id": DEMO_GB_SERVER_ID,
        "domain": DEMO_GB_DOMAIN,
        "listen": "127.0.0.1",
        "sip_port": gb.sip_port,
        "media_host": "127.0.0.1",
        "rtp_port_min": DEMO_GB_RTP_PORTS[0],
        "rtp_port_max": DEMO_GB_RTP_PORTS[1],
        "keepalive_interval_s": DEMO_GB_KEEPALIVE_S,
        "platforms": [
            {
                "id": DEMO_GB_PLATFORM,
                "name": "Anji county video platform (GB/T 28181)",
                "device_id": DEMO_GB_DEVICE_ID,
                "password": gb.password,
                "coordinates": "gcj02",
                # Not recorded: its channels play on demand (INVITE when a wall tile or a
                # snapshot asks, BYE once nobody watches), which is what a GB platform shows.
                "recording": {"mode": "off"},
                "tag_rules": [
                    {"business_group": DEMO_GB_TRAFFIC_GROUP, "tags": ["traffic"]},
                    {"business_group": DEMO_GB_FORESTRY_GROUP, "tags": ["forest-fire"]},
                    {
                        "business_group": DEMO_GB_CAMPUS_GROUP,
                        "tags": ["school-gate", "public-order"],
                    },
                    {"civil_code": DEMO_GB_LANDSLIDE_AREA, "tags": ["geological-hazard"]},
                ],
            }
        ],
    }


def demo_gb_platform(gb: DemoGb, clip_dir: Path) -> GbPlatformThread:
    """The county platform, not started: it registers once started (see with_gb_platform)."""
    simulator = GbPlatformSimulator(
        device_id=DEMO_GB_DEVICE_ID,
        password=gb.password,
        server_host="127.0.0.1",
        server_port=gb.sip_port,
        server_id=DEMO_GB_SERVER_ID,
        domain=DEMO_GB_DOMAIN,
        channels=list(DEMO_GB_CHANNELS),
        keepalive_s=DEMO_GB_KEEPALIVE_S,
        clip_dir=clip_dir,
    )
    return GbPlatformThread(simulator)


def prepare_gb_clips(clip_dir: Path) -> None:
    """Make the platform's PS files before the node serves (a few seconds, the first run
    only), so that the first play is not kept waiting for them."""
    for clip in DEMO_GB_CLIPS:
        ps_file(clip, clip_dir)


def with_gb_platform(app: FastAPI, platform: GbPlatformThread) -> None:
    """Run ``platform`` inside the app's lifespan: started once the node listens for SIP,
    stopped (BYE to its plays, REGISTER with Expires: 0) before the node stops, so the node
    hears it leave. Ctrl-C ends uvicorn's lifespan, so it runs then too."""
    node_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running_app: FastAPI) -> AsyncIterator[None]:
        async with node_lifespan(running_app):
            # In a thread: its REGISTER must find this loop free to answer it.
            await asyncio.to_thread(platform.start)
            try:
                yield
            finally:
                await asyncio.to_thread(platform.stop)

    app.router.lifespan_context = lifespan
