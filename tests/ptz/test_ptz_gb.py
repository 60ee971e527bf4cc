"""PtzControl over a GB/T 28181 channel: the scripted platform of the control's unit tests
(real SIP over loopback) and the real lease store and audit log on SQLite.

A channel's moves carry no timeout: the control's deadman sends the stop. Presets are
numbers; a fixed channel (PTZType 3) is refused; a channel has no home position, so the
idle return home only ends the lease (and says why in the audit log).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from surveillance import db
from surveillance.auth.audit import AuditLog, AuditQuery
from surveillance.auth.roles import Role
from surveillance.catalog import Catalog, runtime_camera
from surveillance.config.models import AppConfig, PtzConfig
from surveillance.errors import InvalidRequest
from surveillance.events.store import EventStore
from surveillance.gb28181 import ptz
from surveillance.onvif.errors import NoPtz
from surveillance.redact import Redactor
from surveillance.services.event_bus import EventBus
from surveillance.services.gb_control import GbControl
from surveillance.services.ingest import IngestService
from surveillance.services.ptz_control import Actor, Move, PresetOrder, PtzControl
from surveillance.services.ptz_drivers import PtzDrivers
from surveillance.services.ptz_leases import PtzLeaseStore
from tests.services.gb_scripted import (
    CHANNEL_ID,
    DEVICE_ID,
    PLATFORM,
    ScriptedPlatform,
    start_our_side,
    start_platform,
)

# Real SIP over loopback and waits of seconds (the deadman, the idle time): not the fast tier.
pytestmark = pytest.mark.integration

CAMERA = f"{PLATFORM}.{CHANNEL_ID}"
FIXED = f"{PLATFORM}.34020000001320000002"
WAIT_S = 15.0
CONFIG = AppConfig.model_validate(
    {
        "platforms": [{"id": "town", "name": "Town"}],
        "gb28181": {
            "enabled": True,
            "platforms": [
                {"id": PLATFORM, "name": "City", "device_id": DEVICE_ID, "password": "pw"}
            ],
        },
    }
)
# Margins for a loaded machine: a refresh comes well within the move's timeout, and the
# test's commands well within the idle time.
PTZ = PtzConfig(lease_s=30, idle_home_s=3.0, move_timeout_s=1.0)
OPERATOR = Actor("opa", Role.OPERATOR, "127.0.0.1")


def _commands(platform: ScriptedPlatform) -> list[str]:
    found = []
    for request in platform.requests:
        body = request.body.decode("gb18030")
        if "<PTZCmd>" in body:
            found.append(body.split("<PTZCmd>")[1].split("</PTZCmd>")[0])
    return found


async def _until(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if result := check():
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def rig(
    tmp_path: Path,
) -> AsyncIterator[tuple[PtzControl, ScriptedPlatform, AuditLog, Catalog]]:
    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'node.db'}")
    db.upgrade(engine)
    catalog = Catalog.from_config(CONFIG)
    catalog.upsert(
        [
            runtime_camera(
                id=camera_id, name="Gate", platform_id=PLATFORM, url=f"gb28181://{PLATFORM}/x"
            )
            for camera_id in (CAMERA, FIXED)
        ]
    )
    audit = AuditLog(engine)
    bus = EventBus(EventStore(engine), catalog, CONFIG.events, audit)
    platform = await start_platform()
    side = await start_our_side(platform.peer())
    gb_control = GbControl(CONFIG.gb28181, side, catalog, bus)
    ptz_types = {FIXED: 3, CAMERA: 1}
    drivers = PtzDrivers(gb_control, ptz_types.get, timeout_s=2.0)
    # An ingest that knows none of the channels (their streams are not this test's business:
    # no health, so none is offline).
    ingest = IngestService(Catalog.from_config(CONFIG), CONFIG.ingest, Redactor())
    control = PtzControl(PTZ, drivers, PtzLeaseStore(engine), audit, ingest, catalog)
    await control.start()
    try:
        yield control, platform, audit, catalog
    finally:
        await control.stop()
        await gb_control.stop()
        await side.transport.stop()
        assert platform.transport is not None
        platform.transport.close()
        engine.dispose()


async def test_deadman_presets_fixed_channels_and_no_home(
    rig: tuple[PtzControl, ScriptedPlatform, AuditLog, Catalog],
) -> None:
    control, platform, audit, catalog = rig
    camera = catalog.cameras[CAMERA]
    assert control.drivers.kind(camera) == "gb28181" and control.steerable(camera)

    await control.command(camera, OPERATOR, Move(0.5, 0.0, 0.0))
    await control.command(camera, OPERATOR, Move(0.5, 0.0, 0.0))  # a refresh
    move, stop = ptz.ptz_command(pan=0.5, tilt=0, zoom=0), ptz.ptz_command(pan=0, tilt=0, zoom=0)
    await _until(lambda: _commands(platform)[-1:] == [stop], "the deadman's stop")
    assert _commands(platform) == [move, move, stop]

    await control.command(camera, OPERATOR, PresetOrder("goto", "7"))
    assert _commands(platform)[-1] == ptz.preset_command("goto", 7)
    with pytest.raises(InvalidRequest, match=r"numbers 1\.\.255"):
        await control.command(camera, OPERATOR, PresetOrder("goto", "Gate"))
    fixed = catalog.cameras[FIXED]
    assert not control.steerable(fixed)
    with pytest.raises(NoPtz, match="fixed camera"):
        await control.command(fixed, OPERATOR, Move(1.0, 0.0, 0.0))

    # Left alone: no home position to go to, the lease ends all the same.
    sent = len(_commands(platform))
    await _until(lambda: control.leases.get(CAMERA) is None, "the lease ended by the idle time")
    assert len(_commands(platform)) == sent
    [home] = audit.query(AuditQuery(action="ptz.home"))
    assert home.user == "system" and home.detail["to"] is None
    assert "no home position" in home.detail["why"]
    entries = [
        (e.user, e.outcome, e.detail)
        for e in reversed(audit.query(AuditQuery(action="camera.ptz")))
    ]
    assert [(user, outcome) for user, outcome, _ in entries] == [
        ("opa", "ok"),  # the move, once: its refresh is not a command of its own
        ("system", "ok"),  # the deadman's stop
        ("opa", "ok"),  # goto 7
        ("opa", "failed"),  # a token that is not a number
        ("opa", "failed"),  # the fixed channel
    ]
    assert entries[1][2]["stop"] == "deadman"
