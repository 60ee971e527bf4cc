"""The simulated GB/T 28181 lower platform against a tiny upper platform written in the test
(tests/simulator/gb_upper.py): register with a digest, keepalive, catalog pages, INVITE and
real PS over RTP (UDP, TCP passive, TCP active) that FFmpeg demuxes and decodes, BYE, faults.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import socket
import struct
from collections.abc import AsyncIterator

import av
import pytest

from surveillance.simulator import gb_cli
from surveillance.simulator.gb_platform import GbChannelSpec, GbPlatformSimulator
from tests.conftest import CLIP_CACHE
from tests.simulator.gb_upper import REALM, SERVER_ID, Upper, offer, read_rtp, until

DEVICE_ID = "34020000001110000001"
PASSWORD = "sim-Pa55word"
WAIT_S = 20.0  # generous: CI is a loaded 2-core machine

pytestmark = pytest.mark.integration  # real sockets and real-time RTP, seconds per test


def channel(n: int, clip: str = "h264") -> GbChannelSpec:
    return GbChannelSpec(
        channel_id=f"340200000013200{n:05d}",
        name=f"通道 {n}",
        clip=clip,
        civil_code="340200",
        business_group_id="34020000002150000001",
        longitude=120.1,
        latitude=30.2,
    )


@pytest.fixture
async def upper() -> AsyncIterator[Upper]:
    server = Upper(password=PASSWORD)
    await server.start()
    yield server
    server.close()


def make_sim(upper: Upper, **options: object) -> GbPlatformSimulator:
    settings: dict[str, object] = {
        "device_id": DEVICE_ID,
        "password": PASSWORD,
        "server_host": "127.0.0.1",
        "server_port": upper.port,
        "server_id": SERVER_ID,
        "domain": REALM,
        "channels": [channel(1), channel(2, "h265")],
        "keepalive_s": 0.2,
        "clip_dir": CLIP_CACHE,
    }
    settings.update(options)
    return GbPlatformSimulator(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_registers_with_digest_keeps_alive_and_deregisters(
    upper: Upper, transport: str
) -> None:
    sim = make_sim(upper, transport=transport)
    await sim.start()
    try:
        assert sim.registered and upper.registered_expires == 3600 and upper.auth_failures == 0
        first, second = upper.registers
        assert "authorization" not in first.headers, "the first REGISTER is unauthenticated"
        assert 'username="34020000001110000001"' in second.headers["authorization"]
        assert PASSWORD not in second.headers["authorization"]
        assert second.headers["call-id"] == first.headers["call-id"]
        if transport == "udp":  # garbage at its SIP port is dropped, counted, and survived
            for junk in (b"\x00\xff" * 40, b"INVITE nonsense\r\n\r\n", b"SIP/2.0 200\r\n"):
                upper.send(junk.decode("latin-1"), b"", ("127.0.0.1", sim.local_port))
            await until(lambda: sim.sip_dropped == 3, "junk dropped")
        await until(lambda: len(upper.messages) >= 2, "keepalives")
        body = upper.messages[0].body
        assert body.startswith(b'<?xml version="1.0" encoding="GB2312"?>')
        assert b"<CmdType>Keepalive</CmdType>" in body
        sim.fault("stop-keepalive")
        await asyncio.sleep(0.05)  # one in flight may still land
        count = len(upper.messages)
        await asyncio.sleep(0.6)
        assert len(upper.messages) == count, "stop-keepalive stops them"
        sim.fault("resume-keepalive")
        await until(lambda: len(upper.messages) > count, "keepalives again")
    finally:
        await sim.stop()
    assert upper.registered_expires == 0 and not sim.registered


async def test_a_wrong_password_or_no_qop(upper: Upper) -> None:
    upper.qop = False  # an RFC 2069-style challenge is answered without qop
    sim = make_sim(upper)
    await sim.start()
    assert sim.registered
    await sim.stop()
    sim = make_sim(upper, password="wrong")
    await sim.start()
    try:
        assert not sim.registered and sim.register_status == 401 and upper.auth_failures == 1
    finally:
        await sim.stop()


@pytest.mark.parametrize("encoding", ["GB2312", "UTF-8"])
async def test_answers_a_catalog_query_in_pages(upper: Upper, encoding: str) -> None:
    channels = [channel(n) for n in range(45)]
    sim = make_sim(upper, channels=channels, page_size=20, encoding=encoding, keepalive_s=60)
    await sim.start()
    try:
        query = (
            '<?xml version="1.0" encoding="GB2312"?>\n<Query>\n<CmdType>Catalog</CmdType>\n'
            f"<SN>17</SN>\n<DeviceID>{DEVICE_ID}</DeviceID>\n</Query>\n"
        ).encode()
        target = ("127.0.0.1", sim.local_port)
        answer = await upper.request("MESSAGE", target, DEVICE_ID, query, "Application/MANSCDP+xml")
        assert answer.start == "SIP/2.0 200 OK"
        await until(lambda: len(upper.messages) == 3, "three catalog pages")
        codec = "gb18030" if encoding == "GB2312" else "utf-8"
        pages = [m.body.decode(codec) for m in upper.messages]
        assert all(f'encoding="{encoding}"' in page for page in pages)
        assert all("<SumNum>45</SumNum>" in p and "<SN>17</SN>" in p for p in pages)
        assert [p.count("<Item>") for p in pages] == [20, 20, 5]
        assert "<Name>通道 44</Name>" in pages[2] and "<Status>ON</Status>" in pages[2]
    finally:
        await sim.stop()


@pytest.mark.parametrize(
    ("transport", "clip", "codec"),
    [("udp", "h264", "h264"), ("tcp-passive", "h265", "hevc"), ("tcp-active", "h264", "h264")],
)
async def test_invite_sends_ps_over_rtp_that_ffmpeg_decodes(
    upper: Upper, transport: str, clip: str, codec: str
) -> None:
    sim = make_sim(upper, channels=[channel(1, clip)], keepalive_s=60)
    await sim.start()
    media = socket.socket(
        socket.AF_INET, socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    )
    media.bind(("127.0.0.1", 0))
    if transport == "tcp-passive":
        media.listen(1)
    port = media.getsockname()[1]
    target = ("127.0.0.1", sim.local_port)
    try:
        ok = await upper.request(
            "INVITE",
            target,
            channel(1).channel_id,
            offer(port, "0340200001", transport),
            "APPLICATION/SDP",
            call_id="play1",
        )
        assert ok.start == "SIP/2.0 200 OK" and sim.invites == 1
        sdp = ok.body.decode()
        assert "y=0340200001" in sdp and "a=rtpmap:96 PS/90000" in sdp and "s=Play" in sdp
        await upper.request("ACK", target, channel(1).channel_id, b"", "", call_id="play1")
        if transport == "tcp-active":
            assert "a=setup:passive" in sdp
            answer_port = int(sdp.split("m=video ")[1].split()[0])
            media.connect(("127.0.0.1", answer_port))
        elif transport == "tcp-passive":
            assert "a=setup:active" in sdp
            media, _ = await asyncio.to_thread(media.accept)
        packets = await asyncio.to_thread(read_rtp, media, transport != "udp", 150, WAIT_S)
        frames = _check_rtp_and_decode(packets, 340200001, codec)
        assert frames >= 10
        assert sim.streams["play1"].packets_sent >= 150
        bye = await upper.request(
            "BYE", target, channel(1).channel_id, b"", "", call_id="play1", cseq=2
        )
        assert bye.start == "SIP/2.0 200 OK" and sim.byes == 1 and not sim.streams
    finally:
        media.close()
        await sim.stop()


def _check_rtp_and_decode(packets: list[bytes], ssrc: int, codec: str) -> int:
    """RTP rules the sender keeps, then the payloads as one PS stream into FFmpeg."""
    payload = io.BytesIO()
    stamps: list[int] = []
    seqs = []
    markers = 0
    marked = True
    for packet in packets:
        first, second, seq, stamp, their_ssrc = struct.unpack(">BBHII", packet[:12])
        assert first == 0x80 and second & 0x7F == 96 and their_ssrc == ssrc
        assert len(packet) - 12 <= 1400
        if stamps and stamp != stamps[-1]:
            assert marked, "a unit's last packet carries the marker"
        marked = bool(second & 0x80)
        markers += marked
        seqs.append(seq)
        stamps.append(stamp)
        payload.write(packet[12:])
    assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(seqs))
    steps = {(b - a) % 2**32 for a, b in itertools.pairwise(stamps)} - {0}
    assert steps == {3600}, "90 kHz timestamps one 25 fps frame apart"
    assert markers == len(set(stamps)) - (not marked), "one marker per unit"
    payload.seek(0)
    with av.open(payload, format="mpeg", mode="r") as container:
        assert container.streams.video[0].codec_context.name == codec
        return len(list(container.decode(video=0)))


async def test_invite_faults(upper: Upper) -> None:
    sim = make_sim(upper, keepalive_s=60)
    await sim.start()
    target = ("127.0.0.1", sim.local_port)
    media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    media.bind(("127.0.0.1", 0))
    port = media.getsockname()[1]
    try:
        unknown = await upper.request(
            "INVITE",
            target,
            "34020000001320099999",
            offer(port, "0340200002", "udp"),
            "APPLICATION/SDP",
        )
        assert unknown.start.startswith("SIP/2.0 404")
        sim.fault("refuse-invite")
        refused = await upper.request(
            "INVITE",
            target,
            channel(1).channel_id,
            offer(port, "0340200002", "udp"),
            "APPLICATION/SDP",
        )
        assert refused.start.startswith("SIP/2.0 486")
        sim.fault("reset")
        sim.fault("drop-invite")
        with pytest.raises(TimeoutError):
            await upper.request(
                "INVITE",
                target,
                channel(1).channel_id,
                offer(port, "0340200002", "udp"),
                "APPLICATION/SDP",
                timeout_s=1.0,
            )
        sim.fault("reset")
        for name in ("wrong-ssrc", "garbage-rtp", "no-psm"):
            sim.fault(name)
        ok = await upper.request(
            "INVITE",
            target,
            channel(1).channel_id,
            offer(port, "0340200002", "udp"),
            "APPLICATION/SDP",
            call_id="bad",
        )
        assert "y=0340200002" in ok.body.decode()
        await upper.request("ACK", target, channel(1).channel_id, b"", "", call_id="bad")
        packets = await asyncio.to_thread(read_rtp, media, False, 60, WAIT_S)
        rtp = [p for p in packets if p[0] == 0x80]
        garbage = [p for p in packets if p[0] >> 6 != 2]
        assert garbage and rtp, "junk between real packets"
        assert {struct.unpack(">I", p[8:12])[0] for p in rtp} == {340200003}, "not the y= SSRC"
        ps = b"".join(p[12:] for p in rtp)
        assert b"\x00\x00\x01\xba" in ps and b"\x00\x00\x01\xbc" not in ps, "no PSM"
        sim.fault("stop-media")
        await asyncio.sleep(0.2)
        sent = sim.streams["bad"].packets_sent
        await asyncio.sleep(0.5)
        assert sim.streams["bad"].packets_sent == sent, "stop-media: the dialog stays, no RTP"
    finally:
        media.close()
        await sim.stop()


def test_cli_channels_are_gb_ids_of_both_codecs() -> None:
    args = gb_cli.parse_args(["--channels", "6", "--h265-every", "3"])
    made = gb_cli.channels(args)
    assert [c.channel_id for c in made][:2] == ["34020000001320000001", "34020000001320000002"]
    assert all(len(c.channel_id) == 20 and c.channel_id[10:13] == "132" for c in made)
    assert [c.clip for c in made] == ["h264", "h264", "h265", "h264", "h264", "h265"]
