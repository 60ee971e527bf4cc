"""ONVIF notifications as zeep reads them against the WSDL onvif-zeep-async ships, into
what the service acts on, and what a flood of them may write; a camera's device health
across the cluster's wire. In-process, quick (no device: the PullPoint loop itself is
tests/onvif/test_events.py, on simulated ones)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from zeep import Client, Settings
from zeep.loader import parse_xml

from surveillance.catalog import Catalog
from surveillance.config.models import AppConfig
from surveillance.events.records import EventSpec
from surveillance.media.health import StreamHealth
from surveillance.onvif.events import (
    EVENTS_NS,
    MAX_MESSAGES,
    MAX_TOPIC,
    OnvifNotification,
    parse_notifications,
)
from surveillance.services.device_health import NO_DEVICE, DeviceHealth, node_device_health
from surveillance.services.health_wire import device_from_wire, device_to_wire
from surveillance.services.onvif_events import MAX_CONDITIONS, OnvifEvents
from surveillance.services.remote_health import read_status, status_json

pytestmark = pytest.mark.unit

ONVIF_PACKAGE = importlib.util.find_spec("onvif")
assert ONVIF_PACKAGE is not None and ONVIF_PACKAGE.origin is not None
EVENTS_WSDL = Path(ONVIF_PACKAGE.origin).parent / "wsdl" / "events.wsdl"
# zeep is untyped here: its calls go through Any.
ZEEP_CLIENT: Any = Client
PARSE_XML: Any = parse_xml
SETTINGS = Settings(forbid_dtd=True, forbid_entities=True, forbid_external=True,
                    xml_huge_tree=False, strict=False)  # fmt: skip

ENVELOPE = """<?xml version="1.0"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"
  xmlns:tev="http://www.onvif.org/ver10/events/wsdl" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"
  xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:tns1="http://www.onvif.org/ver10/topics">
<env:Body><tev:PullMessagesResponse>
<tev:CurrentTime>2026-12-02T09:00:00Z</tev:CurrentTime>
<tev:TerminationTime>2026-12-02T09:01:00Z</tev:TerminationTime>
{messages}
</tev:PullMessagesResponse></env:Body></env:Envelope>"""

MESSAGE = """<wsnt:NotificationMessage>
<wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">{topic}</wsnt:Topic>
<wsnt:Message><tt:Message UtcTime="2026-12-02T09:00:07Z" PropertyOperation="{operation}">
<tt:Source><tt:SimpleItem Name="{source_name}" Value="{source}"/></tt:Source>
<tt:Data><tt:SimpleItem Name="{item}" Value="{value}"/></tt:Data>
</tt:Message></wsnt:Message></wsnt:NotificationMessage>"""


def message(topic: str, item: str, value: str, **extra: str) -> dict[str, str]:
    base = {"operation": "Changed", "source_name": "VideoSourceToken", "source": "VideoSource_1"}
    return base | {"topic": topic, "item": item, "value": value} | extra


def pulled(*messages: dict[str, str]) -> Any:
    """A PullMessagesResponse as onvif-zeep-async's pull-point service hands it over."""
    client = ZEEP_CLIENT(str(EVENTS_WSDL), settings=SETTINGS)
    binding = client.wsdl.bindings[f"{{{EVENTS_NS}}}PullPointSubscriptionBinding"]
    body = "".join(MESSAGE.format(**m) for m in messages)
    xml = ENVELOPE.format(messages=body).encode()
    envelope = PARSE_XML(xml, client.transport, settings=SETTINGS)
    return binding.get("PullMessages").process_reply(envelope)


def test_motion_tamper_and_other_topics_read_as_the_service_acts_on_them() -> None:
    notes = parse_notifications(
        pulled(
            message("tns1:VideoSource/MotionAlarm", "State", "true"),
            message("tns1:VideoSource/MotionAlarm", "State", "false", operation="Initialized"),
            message("tns1:RuleEngine/CellMotionDetector/Motion", "IsMotion", "1"),
            message("tns1:VideoSource/GlobalSceneChange/ImagingService", "State", "True"),
            message("tns1:RuleEngine/TamperDetector/Tamper/", "IsTamper", "0"),
            message("tns1:Device/Trigger/DigitalInput", "LogicalState", "true"),
            message("tns1:VideoSource/MotionAlarm", "State", "maybe"),
        )
    )
    got = [(n.topic, n.kind, n.state, n.source) for n in notes]
    assert got == [
        ("VideoSource/MotionAlarm", "motion", True, "VideoSource_1"),
        ("VideoSource/MotionAlarm", "motion", False, "VideoSource_1"),
        ("RuleEngine/CellMotionDetector/Motion", "motion", True, "VideoSource_1"),
        ("VideoSource/GlobalSceneChange/ImagingService", "tamper", True, "VideoSource_1"),
        ("RuleEngine/TamperDetector/Tamper", "tamper", False, "VideoSource_1"),
        ("Device/Trigger/DigitalInput", None, None, "VideoSource_1"),  # kept, not acted on
        ("VideoSource/MotionAlarm", "motion", None, "VideoSource_1"),  # not a boolean
    ]
    # The camera's own time, by its clock, in UTC.
    assert notes[0].at == datetime(2026, 12, 2, 9, 0, 7, tzinfo=UTC)


def test_a_hostile_device_s_messages_are_bounded_and_printable() -> None:
    long_topic = "tns1:" + "A/" * 5000 + "MotionAlarm"
    hostile = "evil&#10;&#9;[31m" + "x" * 500
    many = [message("tns1:VideoSource/MotionAlarm", "State", "true", source=hostile)]
    notes = parse_notifications(
        pulled(message(long_topic, "State", "1"), *many * (MAX_MESSAGES + 5))
    )
    assert len(notes) == MAX_MESSAGES
    assert len(notes[0].topic) <= MAX_TOPIC and notes[0].kind is None
    source = notes[1].source or ""
    assert source.startswith("evil") and source.isprintable() and len(source) <= 64
    assert parse_notifications(None) == [] and parse_notifications(object()) == []


def test_device_health_travels_to_other_nodes_and_junk_is_refused() -> None:
    snapshot = StreamHealth().snapshot(10, 1.5, 2, 0)
    device = DeviceHealth(clock_offset_s=7.03, clock_flagged=True, onvif_events="subscribed")
    status = json.loads(json.dumps(status_json(snapshot, None, 99.0, device)))
    assert read_status("node-a", status).device == device
    # A status from a node without device health (older) reads as nothing known.
    del status["device"]
    assert read_status("node-a", status).device == NO_DEVICE
    wire = device_to_wire(device)
    assert device_from_wire(wire) == device
    junks = [("clock_offset_s", "7"), ("clock_offset_s", True), ("clock_flagged", 1),
             ("onvif_events", "exploded"), ("clock_offset_s", float("nan"))]  # fmt: skip
    for field, junk in junks:
        with pytest.raises(ValueError):
            device_from_wire({**wire, field: junk})
    with pytest.raises(ValueError):
        device_from_wire([1, 2])
    # NaN never leaves the owner (JSON has none).
    assert device_to_wire(DeviceHealth(float("inf"), True, None))["clock_offset_s"] is None


def test_a_node_shows_its_own_measurements_for_its_cameras_and_the_owner_s_for_others() -> None:
    mine, theirs = DeviceHealth(1.0, False, "subscribed"), DeviceHealth(9.0, True, "failing")
    holds = {"held": True, "other": False}.__getitem__
    of = node_device_health(holds, lambda camera_id: mine, lambda camera_id: theirs)
    assert (of("held"), of("other")) == (mine, theirs)
    # One node (no cluster): nothing from elsewhere.
    assert node_device_health(holds, lambda camera_id: mine, None)("other") == NO_DEVICE


class RecordedWrites:
    """Stands in for the event bus, recording what would be written: no simulated device
    can flood like this (a new video source in every message, states flapping)."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, str]] = []

    def raise_event(self, spec: EventSpec) -> None:
        self.writes.append(("raise", spec.key))

    def end_event(self, key: str, at: float | None = None) -> None:
        self.writes.append(("end", key))


def test_a_flood_of_notifications_makes_few_writes_and_a_bounded_number_of_events() -> None:
    config = AppConfig.model_validate(
        {
            "platforms": [{"id": "site", "name": "Site"}],
            "cameras": [{"id": "gate", "name": "Gate", "platform": "site",
                         "url": "rtsp://192.0.2.1/x",
                         "onvif": {"url": "http://192.0.2.1/onvif/device_service"}}],
        }
    )  # fmt: skip
    catalog = Catalog.from_config(config)
    sink = RecordedWrites()
    events = OnvifEvents(catalog, lambda camera_id: True, sink, config.onvif, lambda c: None)
    camera = catalog.cameras["gate"]
    at = datetime.now(UTC)

    def note(state: bool, source: str = "VideoSource_1") -> OnvifNotification:
        return OnvifNotification("VideoSource/MotionAlarm", "motion", state, at, source)

    open_keys: set[str] = set()
    flapping = [note(True), note(False), note(True), note(False), note(True), note(False)]
    asyncio.run(events._apply(camera, flapping, open_keys))
    assert sink.writes == [("raise", "device.motion:gate:VideoSource_1"),
                           ("end", "device.motion:gate:VideoSource_1")]  # fmt: skip
    assert open_keys == set()

    sink.writes.clear()
    many = [note(True, f"source-{i}") for i in range(3 * MAX_CONDITIONS)]
    asyncio.run(events._apply(camera, many, open_keys))
    assert len(sink.writes) == len(open_keys) == MAX_CONDITIONS
    assert all(kind == "raise" for kind, _ in sink.writes)
