"""Simulated ONVIF devices answer every operation they offer through onvif-zeep-async, with
zeep deserializing in strict mode against the WSDLs the library ships (an element out of
order or a required one missing would fail), and check WS-Security digests against their
own clock as cameras do."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterator

import onvif.settings
import pytest
import zeep.exceptions
from onvif import ONVIFCamera

from surveillance.simulator.onvif_fleet import OnvifFleet
from surveillance.simulator.onvif_ptz import PtzMechanics
from surveillance.simulator.onvif_specs import OnvifDeviceSpec
from tests.onvif_net import test_subnet
from tests.waits import eventually, wait_until

pytestmark = pytest.mark.integration

SUBNET = test_subnet()
PTZ_HOST = f"{SUBNET}.11"
SKEWED_HOST = f"{SUBNET}.12"
FIXED_HOST = f"{SUBNET}.13"
PORT = 8081
SKEW_S = 3600.0


@pytest.fixture(scope="module")
def fleet() -> Iterator[OnvifFleet]:
    specs = [
        OnvifDeviceSpec(
            PTZ_HOST,
            PORT,
            name="Gate <north> & yard",
            rtsp_main="rtsp://192.0.2.1/main",
            rtsp_sub="rtsp://192.0.2.1/sub",
        ),
        OnvifDeviceSpec(SKEWED_HOST, PORT, clock_offset_s=SKEW_S, rtsp_main="rtsp://x/m"),
        OnvifDeviceSpec(FIXED_HOST, PORT, ptz=False, events=False, rtsp_main="rtsp://y/m"),
    ]
    with OnvifFleet(specs, pictures=False, discovery=False) as running:
        yield running


@pytest.fixture(autouse=True)
def strict_zeep(monkeypatch: pytest.MonkeyPatch) -> None:
    """onvif-zeep-async parses leniently by default; the devices must pass strict parsing."""
    monkeypatch.setattr(onvif.settings.DEFAULT_SETTINGS, "strict", True)
    monkeypatch.setattr(onvif.settings.DEFAULT_SETTINGS, "xml_huge_tree", False)


async def connected(host: str, password: str = "admin-pass", adjust: bool = True) -> ONVIFCamera:
    camera = ONVIFCamera(host, PORT, "admin", password, adjust_time=adjust, no_cache=True)
    await camera.update_xaddrs()
    return camera


@pytest.fixture
async def ptz_camera(fleet: OnvifFleet) -> AsyncIterator[ONVIFCamera]:
    camera = await connected(PTZ_HOST)
    yield camera
    await camera.close()


def fault_subcode(error: zeep.exceptions.Fault) -> str:
    return str(error.subcodes[0].localname) if error.subcodes else ""


async def test_device_and_media_services_answer_with_the_spec_values(
    fleet: OnvifFleet, ptz_camera: ONVIFCamera
) -> None:
    device = await ptz_camera.create_devicemgmt_service()
    clock = await device.GetSystemDateAndTime()
    assert clock.DateTimeType == "Manual" and clock.UTCDateTime.Date.Year >= 2024
    info = await device.GetDeviceInformation()
    assert (info.Manufacturer, info.Model, info.FirmwareVersion) == (
        "Surveillance Sim",
        "SimPTZ",
        "1.0.0",
    )
    assert info.SerialNumber == fleet.device(PTZ_HOST).spec.serial != ""
    capabilities = await device.GetCapabilities({"Category": "All"})
    assert capabilities.PTZ.XAddr == f"http://{PTZ_HOST}:{PORT}/onvif/ptz_service"
    assert capabilities.Events.WSPullPointSupport is True
    services = await device.GetServices({"IncludeCapability": False})
    assert {s.Namespace for s in services} == {
        "http://www.onvif.org/ver10/device/wsdl",
        "http://www.onvif.org/ver10/media/wsdl",
        "http://www.onvif.org/ver20/ptz/wsdl",
        "http://www.onvif.org/ver10/events/wsdl",
    }
    scopes = [s.ScopeItem for s in await device.GetScopes()]
    assert "onvif://www.onvif.org/name/Gate%20%3Cnorth%3E%20%26%20yard" in scopes
    assert "onvif://www.onvif.org/hardware/SimPTZ" in scopes
    assert (await device.GetHostname()).Name == "sim-" + PTZ_HOST.replace(".", "-")
    with pytest.raises(zeep.exceptions.Fault) as refused:
        await device.GetUsers()
    assert fault_subcode(refused.value) == "ActionNotSupported"

    media = await ptz_camera.create_media_service()
    profiles = await media.GetProfiles()
    assert [(p.token, p.Name) for p in profiles] == [("Profile_1", "main"), ("Profile_2", "sub")]
    main, sub = profiles
    assert (
        main.VideoEncoderConfiguration.Resolution.Width,
        main.VideoEncoderConfiguration.Encoding,
    ) == (1280, "H264")
    assert sub.VideoEncoderConfiguration.Resolution.Height == 360
    assert main.PTZConfiguration.token == "PTZConfig_1"
    uris = []
    for token in ("Profile_1", "Profile_2"):
        answer = await media.GetStreamUri(
            {
                "ProfileToken": token,
                "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
            }
        )
        uris.append(answer.Uri)
    assert uris == ["rtsp://192.0.2.1/main", "rtsp://192.0.2.1/sub"]
    sources = await media.GetVideoSources()
    assert sources[0].token == "VideoSource_1" and sources[0].Resolution.Width == 1280
    assert await ptz_camera.get_snapshot_uri("Profile_1") is None  # ActionNotSupported
    with pytest.raises(zeep.exceptions.Fault) as no_profile:
        await media.GetStreamUri(
            {
                "ProfileToken": "Nope",
                "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
            }
        )
    assert fault_subcode(no_profile.value) == "InvalidArgVal"


async def test_ptz_service_moves_and_keeps_presets(
    fleet: OnvifFleet, ptz_camera: ONVIFCamera
) -> None:
    device = fleet.device(PTZ_HOST)
    ptz = await ptz_camera.create_ptz_service()
    node = (await ptz.GetNodes())[0]
    assert node.token == "PTZNode_1" and node.HomeSupported is True
    assert node.SupportedPTZSpaces.ContinuousPanTiltVelocitySpace[0].XRange.Max == 1.0
    assert [c.token for c in await ptz.GetConfigurations()] == ["PTZConfig_1"]
    config = await ptz.GetConfiguration({"PTZConfigurationToken": "PTZConfig_1"})
    assert config.NodeToken == "PTZNode_1" and config.ZoomLimits.Range.XRange.Min == 0.0

    profile = {"ProfileToken": "Profile_1"}
    await ptz.AbsoluteMove({**profile, "Position": {"PanTilt": {"x": 0, "y": 0}, "Zoom": {"x": 0}}})
    assert device.position() == (0.0, 0.0, 0.0)
    # Right and up at half speed for 0.4 s: 0.5 * 0.5 units/s * 0.4 s = 0.1, then it stops by
    # itself (the Timeout), as a camera does when its controller goes away.
    await ptz.ContinuousMove(
        {**profile, "Velocity": {"PanTilt": {"x": 0.5, "y": 0.5}}, "Timeout": "PT0.4S"}
    )
    assert device.moving()
    wait_until(lambda: not device.moving(), 5, "the move ends at its timeout")
    pan, tilt, zoom = device.position()
    assert pan == pytest.approx(0.1, abs=0.03) and tilt == pytest.approx(0.1, abs=0.03)
    assert zoom == 0.0
    status = await ptz.GetStatus(profile)
    assert status.Position.PanTilt.x == pytest.approx(pan, abs=1e-4)
    assert status.MoveStatus.PanTilt == "IDLE"

    await ptz.ContinuousMove({**profile, "Velocity": {"Zoom": {"x": 1.0}}})
    assert (await ptz.GetStatus(profile)).MoveStatus.Zoom == "MOVING"
    wait_until(lambda: device.position()[2] > 0.05, 5, "zooming in")
    await ptz.Stop({**profile, "PanTilt": True, "Zoom": True})
    assert not device.moving()
    stopped_at = device.position()

    token = await ptz.SetPreset({**profile, "PresetName": "Gate"})  # zeep unwraps it
    assert token == "1" and device.presets() == {"1": "Gate"}
    await ptz.RelativeMove({**profile, "Translation": {"PanTilt": {"x": -0.5, "y": 0}}})
    assert device.position()[0] == pytest.approx(stopped_at[0] - 0.5)
    await ptz.AbsoluteMove({**profile, "Position": {"PanTilt": {"x": 2.0, "y": -0.25}}})
    assert device.position()[:2] == (1.0, -0.25)  # clamped to the generic space
    presets = await ptz.GetPresets(profile)
    assert [(p.token, p.Name) for p in presets] == [("1", "Gate")]
    assert presets[0].PTZPosition.Zoom.x == pytest.approx(stopped_at[2], abs=1e-4)
    await ptz.GotoPreset({**profile, "PresetToken": "1"})
    assert device.position() == pytest.approx(stopped_at, abs=1e-5)
    await ptz.SetHomePosition(profile)
    await ptz.AbsoluteMove({**profile, "Position": {"PanTilt": {"x": -1, "y": -1}}})
    await ptz.GotoHomePosition(profile)
    assert device.position() == pytest.approx(stopped_at, abs=1e-5)
    await ptz.RemovePreset({**profile, "PresetToken": "1"})
    assert device.presets() == {}
    with pytest.raises(zeep.exceptions.Fault):
        await ptz.GotoPreset({**profile, "PresetToken": "1"})

    with pytest.raises(zeep.exceptions.Fault) as not_finite:  # would poison the position
        await ptz.ContinuousMove({**profile, "Velocity": {"PanTilt": {"x": float("nan"), "y": 0}}})
    assert fault_subcode(not_finite.value) == "InvalidArgVal" and not device.moving()

    operations = [c.operation for c in device.commands()]
    for name in ("ContinuousMove", "Stop", "SetPreset", "GotoPreset", "GotoHomePosition"):
        assert name in operations
    move = next(c for c in device.commands() if c.operation == "ContinuousMove")
    assert move.args["pan"] == 0.5 and move.args["timeout_s"] == pytest.approx(0.4)


async def test_auth_is_checked_against_the_device_clock(fleet: OnvifFleet) -> None:
    skewed = await connected(SKEWED_HOST)  # adjust_time: signs with the device's clock
    try:
        assert skewed.dt_diff is not None
        assert skewed.dt_diff.total_seconds() == pytest.approx(SKEW_S, abs=5)
        info = await (await skewed.create_devicemgmt_service()).GetDeviceInformation()
        assert info.Model == "SimPTZ"
    finally:
        await skewed.close()

    unadjusted = ONVIFCamera(SKEWED_HOST, PORT, "admin", "admin-pass", no_cache=True)
    try:
        service = await unadjusted.create_devicemgmt_service()
        clock = await service.GetSystemDateAndTime()  # pre-auth: answered anyway
        device_hour = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=SKEW_S)
        assert clock.UTCDateTime.Time.Hour == device_hour.hour
        with pytest.raises(zeep.exceptions.Fault) as stale:
            await service.GetDeviceInformation()
        assert fault_subcode(stale.value) == "NotAuthorized"
    finally:
        await unadjusted.close()

    wrong = ONVIFCamera(PTZ_HOST, PORT, "admin", "wrong", adjust_time=True, no_cache=True)
    try:
        await wrong.update_xaddrs()  # GetServices is allowed before authentication
        with pytest.raises(zeep.exceptions.Fault) as refused:
            await (await wrong.create_media_service()).GetProfiles()
        assert fault_subcode(refused.value) == "NotAuthorized"
    finally:
        await wrong.close()


async def test_a_fixed_camera_has_no_ptz_service(fleet: OnvifFleet) -> None:
    camera = await connected(FIXED_HOST)
    try:
        assert "http://www.onvif.org/ver20/ptz/wsdl" not in camera.xaddrs
        info = await (await camera.create_devicemgmt_service()).GetDeviceInformation()
        assert info.Model == "SimFixed"
        profiles = await (await camera.create_media_service()).GetProfiles()
        assert [p.token for p in profiles] == ["Profile_1"] and profiles[0].PTZConfiguration is None
    finally:
        await camera.close()


def test_ptz_mechanics_report_every_change_of_view() -> None:
    views: list[tuple[float, float, float]] = []
    mechanics = PtzMechanics(lambda *view: views.append(view))
    mechanics.jump(0.5, 0.0, 2.0)
    assert views == [(0.5, 0.0, 1.0)]
    mechanics.jump(0.5, 0.0, 1.0)  # no change, no report
    mechanics.continuous(-1.0, 0.0, 0.0, timeout_s=0.2)
    wait_until(lambda: (mechanics.advance(), not mechanics.moving())[1], 5, "move ends")
    assert len(views) >= 2 and views[-1][0] == pytest.approx(0.4, abs=0.02)


def states(messages: list) -> list[tuple[str, str, str]]:
    """(topic, property operation, State) of each notification."""
    found = []
    for message in messages:
        body = message.Message._value_1  # zeep read it as a tt:Message
        state = body.Data.SimpleItem[0].Value
        found.append((message.Topic._value_1, body.PropertyOperation, state))
    return found


async def test_events_pull_point_delivers_raised_events(
    fleet: OnvifFleet, ptz_camera: ONVIFCamera
) -> None:
    device = fleet.device(PTZ_HOST)
    events = await ptz_camera.create_events_service()
    properties = await events.GetEventProperties()
    assert properties.FixedTopicSet is True
    assert properties.TopicExpressionDialect == [
        "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
    ]

    lost: list[bool] = []
    manager = await ptz_camera.create_pullpoint_manager(
        dt.timedelta(seconds=60), lambda: lost.append(True)
    )
    try:
        assert device.events.subscriptions() == 1
        pullpoint = manager.get_service()
        first = await pullpoint.PullMessages({"Timeout": "PT1S", "MessageLimit": 10})
        assert states(first.NotificationMessage) == [
            ("tns1:VideoSource/MotionAlarm", "Initialized", "false"),
            ("tns1:VideoSource/GlobalSceneChange/ImagingService", "Initialized", "false"),
        ]
        assert first.TerminationTime > first.CurrentTime

        # A long poll waiting when the event is raised returns with it (the timeout is long).
        waiting = asyncio.create_task(
            pullpoint.PullMessages({"Timeout": "PT30S", "MessageLimit": 10})
        )
        await eventually(lambda: device.events.waiting_polls() == 1, "the poll waits")
        device.raise_event("motion", True)
        pulled = await asyncio.wait_for(waiting, 10)
        assert states(pulled.NotificationMessage) == [
            ("tns1:VideoSource/MotionAlarm", "Changed", "true")
        ]
        message = pulled.NotificationMessage[0].Message._value_1
        assert message.Source.SimpleItem[0].Name == "Source"
        assert message.Source.SimpleItem[0].Value == "VideoSource_1"
        assert message.UtcTime.tzinfo is not None

        device.raise_event("tamper", True)
        device.raise_event("motion", False)
        limited = await pullpoint.PullMessages({"Timeout": "PT5S", "MessageLimit": 1})
        rest = await pullpoint.PullMessages({"Timeout": "PT5S", "MessageLimit": 10})
        assert states(limited.NotificationMessage + rest.NotificationMessage) == [
            ("tns1:VideoSource/GlobalSceneChange/ImagingService", "Changed", "true"),
            ("tns1:VideoSource/MotionAlarm", "Changed", "false"),
        ]
        await pullpoint.SetSynchronizationPoint()
        synced = await pullpoint.PullMessages({"Timeout": "PT5S", "MessageLimit": 10})
        assert [s[1:] for s in states(synced.NotificationMessage)] == [
            ("Initialized", "false"),
            ("Initialized", "true"),
        ]
        subscription = manager._subscription
        renewed = await subscription.Renew({"TerminationTime": "PT120S"})
        assert (renewed.TerminationTime - renewed.CurrentTime).total_seconds() == pytest.approx(
            120, abs=2
        )
    finally:
        await manager.shutdown()  # Unsubscribe
    assert device.events.subscriptions() == 0 and lost == []
    with pytest.raises(zeep.exceptions.Fault):
        await pullpoint.PullMessages({"Timeout": "PT1S", "MessageLimit": 1})
