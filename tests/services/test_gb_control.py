"""GbControl: PTZ commands to a scripted platform over the real SIP transport, and Alarm
notifications into the real EventBus on SQLite (severity, camera or platform, one event per
repeated alarm, its end a while after the last report)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from surveillance import db
from surveillance.auth.audit import AuditLog
from surveillance.catalog import Catalog, runtime_camera
from surveillance.config.models import AppConfig
from surveillance.events.records import EventFilter, EventRecord, Severity
from surveillance.events.store import EventStore
from surveillance.gb28181 import ptz
from surveillance.gb28181.manscdp import AlarmNotify
from surveillance.services import gb_control
from surveillance.services.event_bus import EventBus
from surveillance.services.gb_control import (
    ControlRefused,
    GbControl,
    NotControllable,
    PlatformUnavailable,
    PtzMove,
    PtzPreset,
)
from tests.services.gb_scripted import (
    CHANNEL_ID,
    DEVICE_ID,
    PLATFORM,
    OurSide,
    ScriptedPlatform,
    start_our_side,
    start_platform,
)

pytestmark = pytest.mark.unit

CAMERA = f"{PLATFORM}.{CHANNEL_ID}"
OTHER_DEVICE = "34020000001340000009"  # an alarm input of the platform, not a channel
WAIT_S = 10.0

CONFIG = AppConfig.model_validate(
    {
        "platforms": [{"id": "town", "name": "Town"}],
        "cameras": [
            {"id": "gate", "name": "Gate", "platform": "town", "url": "rtsp://127.0.0.1:1/gate"}
        ],
        "gb28181": {
            "enabled": True,
            "platforms": [
                {"id": PLATFORM, "name": "City", "device_id": DEVICE_ID, "password": "pw"}
            ],
        },
    }
)


@dataclass
class Rig:
    control: GbControl
    bus: EventBus
    catalog: Catalog
    platform: ScriptedPlatform
    side: OurSide

    def active(self) -> list[EventRecord]:
        query = EventFilter(active=True, include_children=True)
        return list(self.bus.search(query).events)

    def all(self) -> list[EventRecord]:
        return list(self.bus.search(EventFilter(include_children=True)).events)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'node.db'}")
    db.upgrade(engine)
    catalog = Catalog.from_config(CONFIG)
    catalog.upsert(
        [
            runtime_camera(
                id=CAMERA,
                name="North gate",
                platform_id=PLATFORM,
                url=f"gb28181://{PLATFORM}/{CHANNEL_ID}",
            )
        ]
    )
    bus = EventBus(EventStore(engine), catalog, CONFIG.events, AuditLog(engine))
    await bus.start()
    platform = await start_platform()
    side = await start_our_side(platform.peer())
    control = GbControl(CONFIG.gb28181, side, catalog, bus)
    try:
        yield Rig(control, bus, catalog, platform, side)
    finally:
        await control.stop()
        await side.transport.stop()
        assert platform.transport is not None
        platform.transport.close()
        bus.stop()
        engine.dispose()


def _alarm(device_id: str, priority: int, method: int = 5, description: str = "") -> AlarmNotify:
    return AlarmNotify(
        sn=1,
        device_id=device_id,
        priority=priority,
        method=method,
        alarm_type=2,
        time="2026-12-02T03:00:00",
        description=description or None,
        longitude=None,
        latitude=None,
    )


async def _until(check, what: str):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if result := check():
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_ptz_moves_and_presets_reach_the_platform(rig: Rig) -> None:
    platform = rig.platform
    camera = rig.catalog.cameras[CAMERA]
    await rig.control.ptz(camera, PtzMove(0.5, 0.0, 0.0))
    await rig.control.ptz(camera, PtzPreset("goto", 3))
    [move, preset] = platform.requests
    assert move.method == "MESSAGE" and move.uri == f"sip:{CHANNEL_ID}@{DEVICE_ID[:10]}"
    assert (move.headers.get("Content-Type") or "").lower() == "application/manscdp+xml"
    body = move.body.decode("gb18030")
    assert "<CmdType>DeviceControl</CmdType>" in body and f"<DeviceID>{CHANNEL_ID}<" in body
    assert f"<PTZCmd>{ptz.ptz_command(pan=0.5, tilt=0, zoom=0)}</PTZCmd>" in body
    assert f"<PTZCmd>{ptz.preset_command('goto', 3)}</PTZCmd>" in preset.body.decode("gb18030")

    platform.message_status = 403
    with pytest.raises(ControlRefused, match="403"):
        await rig.control.ptz(camera, PtzMove(0, 0, 0))
    with pytest.raises(NotControllable, match="not a GB/T 28181 channel"):
        await rig.control.ptz(rig.catalog.cameras["gate"], PtzMove(0, 0, 0))
    rig.side.platform = None  # not registered now
    with pytest.raises(PlatformUnavailable, match="not registered"):
        await rig.control.ptz(camera, PtzMove(0, 0, 0))
    assert len(platform.requests) == 3


async def test_alarms_become_events_and_end_after_the_hold(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gb_control, "ALARM_HOLD_S", 1.0)
    rig.control.on_alarm(PLATFORM, _alarm(CHANNEL_ID, 1, description="intruder\x1b[31m \u202e"))
    rig.control.on_alarm(PLATFORM, _alarm(OTHER_DEVICE, 2, method=2))
    rig.control.on_alarm(PLATFORM, _alarm(OTHER_DEVICE, 4, method=6))
    events = await _until(lambda: len(rig.active()) == 3 and rig.active(), "three events")
    by_device = {(e.detail["device_id"], e.severity): e for e in events}
    on_camera = by_device[(CHANNEL_ID, Severity.ALARM)]
    assert on_camera.type == "device.alarm" and on_camera.camera_id == CAMERA
    assert on_camera.platform_id == PLATFORM
    assert on_camera.summary == "North gate: video analysis alarm: intruder [31m"
    device = by_device[(OTHER_DEVICE, Severity.WARNING)]
    assert device.camera_id is None and device.platform_id == PLATFORM
    assert device.summary == f"device {OTHER_DEVICE}: device alarm"
    assert by_device[(OTHER_DEVICE, Severity.INFO)].summary.endswith("device fault")

    # The same alarm reported again: the same event, seen later, still active.
    first_seen = on_camera.last_seen_at
    await asyncio.sleep(0.6)
    rig.control.on_alarm(PLATFORM, _alarm(CHANNEL_ID, 1, description="intruder"))
    again = await _until(
        lambda: [e for e in rig.active() if e.id == on_camera.id and e.last_seen_at > first_seen],
        "the alarm seen again",
    )
    assert len(rig.all()) == 3 and again[0].ended_at is None
    # No more reports: each ends a hold after its last one; the alarm stays open to be
    # acknowledged, the warning and info close by themselves.
    await _until(lambda: not rig.active(), "alarms ended")
    ended = {e.id: e for e in rig.all()}
    assert ended[on_camera.id].state == "open" and ended[device.id].state == "closed"
    assert ended[on_camera.id].ended_at >= ended[device.id].ended_at


async def test_stop_ends_active_alarms(rig: Rig) -> None:
    rig.control.on_alarm(PLATFORM, _alarm(OTHER_DEVICE, 3))
    await _until(rig.active, "the event")
    await rig.control.stop()
    assert rig.active() == []
