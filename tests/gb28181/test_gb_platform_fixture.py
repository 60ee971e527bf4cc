"""The ``gb_platform`` fixture's simulated platform on its own thread, against the tiny upper
platform of tests/simulator/gb_upper.py: subscription and catalog NOTIFY, alarms, PTZ control
received, a new source address, Chinese names in GB2312, BYE to running plays on stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.gb28181.conftest import (
    GB_DEVICE_ID,
    GB_DOMAIN,
    GB_PASSWORD,
    GB_SERVER_ID,
    StartGbPlatform,
    gb_channels,
)
from tests.simulator.gb_upper import Upper, offer, until

MANSCDP = "Application/MANSCDP+xml"


@pytest.fixture
async def upper() -> AsyncIterator[Upper]:
    server = Upper(password=GB_PASSWORD)
    await server.start()
    yield server
    server.close()


async def test_platform_on_its_thread_notifies_alarms_and_takes_ptz(
    upper: Upper, gb_platform: StartGbPlatform
) -> None:
    assert (GB_SERVER_ID, GB_DOMAIN) == ("34020000002000000001", "3402000000")
    running = await asyncio.to_thread(gb_platform, server_port=upper.port, keepalive_s=60)
    sim = running.simulator
    await until(lambda: sim.registered, "registered")
    target = ("127.0.0.1", sim.local_port)
    subscribed = await upper.request(
        "SUBSCRIBE", target, GB_DEVICE_ID, _query("Catalog"), MANSCDP, call_id="sub1"
    )
    assert subscribed.start == "SIP/2.0 200 OK" and ";tag=" in subscribed.headers["to"]

    new = gb_channels(1, first=9)
    await asyncio.to_thread(running.call, lambda: sim.notify_catalog("ADD", new))
    notify = next(r for r in upper.requests if r.start.startswith("NOTIFY"))
    assert notify.headers["call-id"] == "sub1", "in the subscription's dialog"
    text = notify.body.decode("gb18030")
    assert "<Event>ADD</Event>" in text and "通道 9" in text and len(sim.channels) == 5

    await asyncio.to_thread(running.call, lambda: sim.send_alarm(new[0].channel_id, 1, 5, "入侵"))
    alarm = upper.messages[-1].body.decode("gb18030")
    assert "<CmdType>Alarm</CmdType>" in alarm and "<AlarmPriority>1</AlarmPriority>" in alarm

    control = (
        '<?xml version="1.0" encoding="GB2312"?>\n<Control>\n<CmdType>DeviceControl</CmdType>\n'
        f"<SN>5</SN>\n<DeviceID>{new[0].channel_id}</DeviceID>\n"
        "<PTZCmd>A50F01081F1F00E3</PTZCmd>\n</Control>\n"
    ).encode()
    done = await upper.request("MESSAGE", target, new[0].channel_id, control, MANSCDP)
    assert done.start == "SIP/2.0 200 OK"
    assert sim.ptz_commands == [(new[0].channel_id, "A50F01081F1F00E3")]

    info = await upper.request("MESSAGE", target, GB_DEVICE_ID, _query("DeviceInfo"), MANSCDP)
    assert info.start == "SIP/2.0 200 OK"
    await until(lambda: b"<CmdType>DeviceInfo</CmdType>" in upper.messages[-1].body, "info")

    old_source = upper.registers[-1].source
    await asyncio.to_thread(running.call, lambda: sim.reregister_from(0))
    assert sim.registered and upper.registers[-1].source != old_source

    ok = await upper.request(
        "INVITE", ("127.0.0.1", sim.local_port), new[0].channel_id,
        offer(9, "0340200009", "udp"), "APPLICATION/SDP", call_id="play9",
    )  # fmt: skip
    assert ok.start == "SIP/2.0 200 OK" and set(sim.streams) == {"play9"}
    await asyncio.to_thread(running.stop)
    assert any(
        r.start.startswith("BYE") and r.headers["call-id"] == "play9" for r in upper.requests
    )
    assert upper.registered_expires == 0


def _query(cmd_type: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="GB2312"?>\n<Query>\n<CmdType>{cmd_type}</CmdType>\n'
        f"<SN>3</SN>\n<DeviceID>{GB_DEVICE_ID}</DeviceID>\n</Query>\n"
    ).encode()
