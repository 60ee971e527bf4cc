"""GbPlayer against a scripted platform: the INVITE it sends, the answers it takes or refuses,
the BYEs it sends and receives, its ports and its session rows.

Our side is real: the SIP transport and transaction client, the RTP port pool, the
receivers, a migrated SQLite database. The platform is tests/services/gb_scripted.py, scripted
per test; the simulator plays the platform in tests/services/test_gb_play_sim.py.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from surveillance import db
from surveillance.config.models import (
    Gb28181Config,
    GbPlatformConfig,
    GbTransport,
    RecordingMode,
    RecordingPolicyConfig,
)
from surveillance.gb28181.records import GbChannelRecord
from surveillance.gb28181.sip_message import (
    cseq,
    header_param,
)
from surveillance.gb28181.store import GbStore
from surveillance.gb28181.transport import Peer
from surveillance.media.health import ErrorKind
from surveillance.media.source import StreamOpenError
from surveillance.services.gb_play import GbPlayer, media_addresses
from surveillance.services.gb_ports import too_small_for
from tests.services.gb_scripted import (
    CHANNEL_ID,
    DEVICE_ID,
    OUR_ID,
    PEER_SSRC,
    PLATFORM,
    OurSide,
    ScriptedPlatform,
    answer_sdp,
    free_tcp_listener,
    offer_field,
    rtp_packet,
    start_our_side,
    start_platform,
)
from tests.waits import wait_until

pytestmark = pytest.mark.unit

CAMERA = f"{PLATFORM}.{CHANNEL_ID}"
WAIT_S = 10.0  # generous: CI is a loaded machine


@dataclass
class Rig:
    player: GbPlayer
    platform: ScriptedPlatform
    signalling: OurSide
    store: GbStore
    config: Gb28181Config

    def our_peer(self) -> Peer:
        return self.signalling.peer_of_ours()

    async def open(self, timeout_s: float = 5.0) -> object:
        return await asyncio.to_thread(self.player.open, CAMERA, timeout_s)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'node.db'}")
    db.upgrade(engine)
    yield engine
    engine.dispose()


def _config(
    transport: GbTransport, ports: tuple[int, int], invite_timeout_s: float
) -> Gb28181Config:
    return Gb28181Config(
        enabled=True,
        sip_id=OUR_ID,
        listen="127.0.0.1",
        sip_port=5060,
        rtp_port_min=ports[0],
        rtp_port_max=ports[1],
        invite_timeout_s=invite_timeout_s,
        platforms=[
            GbPlatformConfig(
                id=PLATFORM, name="City", device_id=DEVICE_ID, password="pw", transport=transport
            )
        ],
    )


def _free_port_range(size: int) -> tuple[int, int]:
    """An even-started range of ports nobody listens on now (UDP and TCP)."""
    for base in range(42000, 60000, 64):
        probes = []
        try:
            for port in range(base, base + size):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    probe = socket.socket(socket.AF_INET, kind)
                    probes.append(probe)
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
        return base, base + size - 1
    raise AssertionError("no free port range")


@pytest.fixture
async def make_rig(engine: Engine) -> AsyncIterator[object]:
    made: list[Rig] = []

    async def make(
        transport: GbTransport = GbTransport.UDP,
        *,
        ports: int = 8,
        invite_timeout_s: float = 5.0,
        **script: object,
    ) -> Rig:
        platform = await start_platform(**script)
        signalling = await start_our_side(platform.peer())
        store = GbStore(engine)
        config = _config(transport, _free_port_range(ports), invite_timeout_s)
        player = GbPlayer(config, signalling, store)
        signalling.on_bye = player.on_bye
        await player.start()
        rig = Rig(player, platform, signalling, store, config)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        await rig.player.stop()
        await rig.signalling.transport.stop()
        assert rig.platform.transport is not None
        rig.platform.transport.close()


async def test_udp_play_invite_ack_receive_and_bye(
    make_rig, caplog: pytest.LogCaptureFixture
) -> None:
    """The INVITE names the channel and offers an even port of the range and an SSRC; the
    2xx is ACKed; a differing y= is followed (logged once per camera); RTP reaches the
    feed; close() BYEs the dialog with its tags and frees the port; the row comes and goes."""
    caplog.set_level(logging.INFO, logger="surveillance.services.gb_play")
    rig: Rig = await make_rig(answer_ssrc=PEER_SSRC)
    feed = await rig.open()
    invite = rig.platform.requests[0]
    assert invite.method == "INVITE"
    assert invite.uri == f"sip:{CHANNEL_ID}@{DEVICE_ID[:10]}"
    offered = offer_field(invite, "y=")
    assert offered is not None and offered.startswith("0" + "3402000000"[3:8])
    media = offer_field(invite, "m=video ")
    assert media is not None
    port = int(media.split()[0])
    assert port % 2 == 0 and media.split()[1:] == ["RTP/AVP", "96"]
    assert invite.headers.get("Subject") == f"{CHANNEL_ID}:{offered},{OUR_ID}:0"
    assert offer_field(invite, "s=") == "Play"
    await asyncio.to_thread(wait_until, lambda: "ACK" in rig.platform.methods(), WAIT_S, "ACK")
    assert feed.ssrc == int(PEER_SSRC)
    [row] = rig.store.sessions()
    assert (row.camera_id, row.platform_id, row.local_port, row.transport) == (
        CAMERA,
        PLATFORM,
        port,
        "udp",
    )
    assert row.call_id == invite.headers.get("Call-ID")

    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.sendto(rtp_packet(1, int(PEER_SSRC)), ("127.0.0.1", port))
    sender.close()
    data = await asyncio.to_thread(feed.receiver.receive, WAIT_S)
    assert data == rtp_packet(1, int(PEER_SSRC))
    assert rig.player.ports_in_use == 1

    await asyncio.to_thread(feed.close)
    await asyncio.to_thread(feed.close)  # idempotent
    await asyncio.to_thread(wait_until, lambda: "BYE" in rig.platform.methods(), WAIT_S, "BYE")
    [bye] = [r for r in rig.platform.requests if r.method == "BYE"]
    invite_from = invite.headers.get("From") or ""
    assert header_param(bye.headers.get("From") or "", "tag") == header_param(invite_from, "tag")
    assert header_param(bye.headers.get("To") or "", "tag") == "platform-tag"
    assert bye.headers.get("Call-ID") == invite.headers.get("Call-ID")
    assert cseq(bye) == (cseq(invite)[0] + 1, "BYE")
    assert rig.player.ports_in_use == 0 and rig.store.sessions() == []
    assert rig.player.streams() == []

    # A second play of the same camera: another port, the differing SSRC not logged again.
    feed2 = await rig.open()
    assert [r.message for r in caplog.records].count(
        next(r.message for r in caplog.records if "was offered" in r.message)
    ) == 1
    await asyncio.to_thread(feed2.close)
    await asyncio.sleep(0.2)
    assert rig.platform.methods().count("BYE") == 2


async def test_answer_without_ssrc_keeps_ours(make_rig) -> None:
    rig: Rig = await make_rig(answer_ssrc=None)
    feed = await rig.open()
    assert feed.ssrc == int(offer_field(rig.platform.requests[0], "y=") or "")
    await asyncio.to_thread(feed.close)


async def test_refusals_name_why_and_free_the_port(make_rig) -> None:
    """404 -> not found, 486 -> refused, silence -> time-out, a malformed SDP or an SSRC out
    of 32 bits -> a protocol error and a BYE, an unregistered platform -> unreachable. No
    port or row stays taken by any of them."""
    cases: list[tuple[dict[str, object], ErrorKind, str]] = [
        ({"invite": "404"}, ErrorKind.NOT_FOUND, "404"),
        ({"invite": "486"}, ErrorKind.REFUSED, "486"),
        ({"invite": "silent", "invite_timeout_s": 1.0}, ErrorKind.TIMEOUT, "did not answer"),
        ({"invite": "sdp:v=0\r\nm=video x RTP/AVP 96\r\n"}, ErrorKind.PROTOCOL, "SDP"),
        (
            {"invite": "sdp:" + answer_sdp(port=15060, ssrc="9999999999")},
            ErrorKind.PROTOCOL,
            "32-bit",
        ),
        (
            {"invite": "sdp:" + answer_sdp(port=15060, ssrc=None, tcp=True)},
            ErrorKind.PROTOCOL,
            "TCP",
        ),
    ]
    for script, kind, words in cases:
        rig: Rig = await make_rig(**script)
        with pytest.raises(StreamOpenError) as caught:
            await rig.open()
        assert caught.value.kind is kind, (script, caught.value.message)
        assert words in caught.value.message, caught.value.message
        assert rig.player.ports_in_use == 0 and rig.store.sessions() == []
        if kind is ErrorKind.PROTOCOL:
            # A 2xx is ACKed, then its dialog ended: the platform must not stream on.
            await asyncio.to_thread(
                wait_until, lambda r=rig: "BYE" in r.platform.methods(), WAIT_S, "BYE"
            )
            assert "ACK" in rig.platform.methods()
    rig = await make_rig()
    rig.signalling.platform = None
    with pytest.raises(StreamOpenError) as caught:
        await rig.open()
    assert caught.value.kind is ErrorKind.UNREACHABLE and "not registered" in caught.value.message
    with pytest.raises(StreamOpenError) as caught:
        await asyncio.to_thread(rig.player.open, "rtsp-camera", 5.0)
    assert caught.value.kind is ErrorKind.NOT_FOUND
    assert rig.platform.requests == []


async def test_platform_bye_ends_the_feed_without_a_bye_back(make_rig) -> None:
    rig: Rig = await make_rig()
    feed = await rig.open()
    call_id = rig.platform.requests[0].headers.get("Call-ID") or ""
    rig.platform.send_bye(call_id, rig.our_peer(), as_call_id="not-a-call-of-ours")
    await asyncio.to_thread(wait_until, lambda: rig.platform.responses, WAIT_S, "481")
    assert rig.platform.responses[-1].status == 481
    rig.platform.send_bye(call_id, rig.our_peer())
    await asyncio.to_thread(
        wait_until, lambda: len(rig.platform.responses) == 2, WAIT_S, "BYE answered"
    )
    assert rig.platform.responses[-1].status == 200

    def ended() -> bool:
        try:
            feed.receiver.receive(0.2)
        except (EOFError, OSError):
            return True
        return False

    await asyncio.to_thread(wait_until, ended, WAIT_S, "the feed ends")
    await asyncio.to_thread(feed.close)
    await asyncio.sleep(0.3)
    assert "BYE" not in rig.platform.methods()
    assert rig.player.ports_in_use == 0 and rig.store.sessions() == []


async def test_stop_byes_every_session_and_clears_the_rows(make_rig) -> None:
    rig: Rig = await make_rig()
    await rig.open()
    await rig.open()
    assert len(rig.store.sessions()) == 2 and rig.player.ports_in_use == 2
    await rig.player.stop()
    assert rig.platform.methods().count("BYE") == 2
    assert rig.store.sessions() == [] and rig.player.ports_in_use == 0


async def test_ports_run_out_with_a_clear_error(make_rig, caplog: pytest.LogCaptureFixture) -> None:
    """Review F2: running out is loud (a WARNING naming the range and the streams holding
    it, once a minute) and visible in port_use() for gb status; a range too small for the
    continuously recorded channels is said at start."""
    caplog.set_level(logging.WARNING, logger="surveillance.services.gb_ports")
    rig: Rig = await make_rig(ports=2)  # one even port
    first = rig.config.rtp_port_min
    feed = await rig.open()
    use = rig.player.port_use()
    assert (use.range, use.total, use.used, use.free, use.refused) == (
        f"{first}..{first}", 1, 1, 0, 0,
    )  # fmt: skip
    for _ in range(2):
        with pytest.raises(StreamOpenError) as caught:
            await rig.open()
        assert caught.value.kind is ErrorKind.OTHER
        assert f"no free RTP port in {first}..{first} (1 streams play)" in caught.value.message
    [warning] = [r for r in caplog.records if "no free RTP port" in r.message]
    assert warning.levelno == logging.WARNING and "2 ports" in warning.message
    assert rig.player.port_use().refused == 2
    await asyncio.to_thread(feed.close)
    assert rig.player.port_use().free == 1
    feed = await rig.open()  # given back, taken again
    await asyncio.to_thread(feed.close)

    channels = [GbChannelRecord(PLATFORM, f"3402000000132000000{n}", f"C{n}", status="ON")
                for n in range(3)]  # fmt: skip
    rig.store.replace_channels(PLATFORM, channels, 0.0)
    [platform] = rig.config.platforms
    recorded = rig.config.model_copy(update={"platforms": [platform.model_copy(
        update={"recording": RecordingPolicyConfig(mode=RecordingMode.CONTINUOUS)})]})  # fmt: skip
    starting = GbPlayer(recorded, rig.signalling, rig.store)
    await starting.start()
    await starting.stop()
    said = [r.message for r in caplog.records if "continuously" in r.message]
    assert said == [
        f"gb28181: platforms {PLATFORM} record 3 channels continuously, but the RTP ports "
        f"{first}..{first} hold 1 streams (2 ports each): 2 recordings and every live view "
        "beyond them will be refused; widen gb28181.rtp_port_min..rtp_port_max to at least "
        "6 ports"
    ]
    assert too_small_for(250, 250, "platforms city", "30000..30498") is None
    said = too_small_for(300, 250, "platforms city", "30000..30498") or ""
    assert "record 300 channels" in said and "hold 250 streams" in said
    assert "50 recordings" in said and "at least 600 ports" in said


async def test_tcp_passive_and_active_media(make_rig) -> None:
    """tcp-passive: the platform connects to our port; tcp-active: we connect to the port
    its answer names. Either way RFC 4571 framed RTP reaches the feed."""
    packet = rtp_packet(7, 1234)
    framed = struct.pack("!H", len(packet)) + packet

    rig: Rig = await make_rig(GbTransport.TCP_PASSIVE, tcp=True, setup="active")
    feed = await rig.open()
    media = offer_field(rig.platform.requests[0], "m=video ") or ""
    assert media.split()[1] == "TCP/RTP/AVP"
    assert offer_field(rig.platform.requests[0], "a=setup:") == "passive"
    port = int(media.split()[0])
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as platform_side:
        platform_side.sendall(framed)
        data = await asyncio.to_thread(feed.receiver.receive, WAIT_S)
    assert data == packet
    await asyncio.to_thread(feed.close)

    listener = free_tcp_listener()
    rig = await make_rig(
        GbTransport.TCP_ACTIVE, tcp=True, setup="passive", media_port=listener.getsockname()[1]
    )
    feed = await rig.open()
    assert offer_field(rig.platform.requests[0], "a=setup:") == "active"
    platform_side, _ = await asyncio.to_thread(listener.accept)
    platform_side.sendall(framed)
    data = await asyncio.to_thread(feed.receiver.receive, WAIT_S)
    assert data == packet
    [row] = rig.store.sessions()
    assert row.transport == "tcp-active" and row.local_port == 0
    await asyncio.to_thread(feed.close)
    platform_side.close()
    listener.close()


async def test_rtp_only_from_the_platform_and_unpredictable_ssrc_and_port(
    make_rig, caplog: pytest.LogCaptureFixture
) -> None:
    """Review F16: a camera never takes another sender's RTP. UDP: a host that is neither
    the answer's c= nor the platform's is dropped (counted, logged); the first sender of the
    platform's host locks the session, another port of it is dropped too. tcp-passive: a
    stranger's connection is closed, the platform's is taken. A restarted player (a new
    one) starts its SSRC serials elsewhere, so it does not hand out the last run's."""
    caplog.set_level(logging.WARNING, logger="surveillance.media.rtp")
    rig: Rig = await make_rig(answer_ssrc=None)
    feed = await rig.open()
    port = int((offer_field(rig.platform.requests[0], "m=video ") or "").split()[0])
    ssrc = feed.ssrc
    assert ssrc is not None

    def send_from(host: str, seq: int) -> socket.socket:
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.bind((host, 0))
        sender.sendto(rtp_packet(seq, ssrc), ("127.0.0.1", port))
        return sender

    stranger = send_from("127.0.0.2", 1)  # right port and SSRC, wrong host
    assert await asyncio.to_thread(feed.receiver.receive, 1.0) is None
    assert any("127.0.0.2" in r.message for r in caplog.records)
    platform_side = send_from("127.0.0.1", 2)
    assert await asyncio.to_thread(feed.receiver.receive, WAIT_S) == rtp_packet(2, ssrc)
    other_port = send_from("127.0.0.1", 3)  # the platform's host, another sender
    assert await asyncio.to_thread(feed.receiver.receive, 1.0) is None
    platform_side.sendto(rtp_packet(4, ssrc), ("127.0.0.1", port))
    assert await asyncio.to_thread(feed.receiver.receive, WAIT_S) == rtp_packet(4, ssrc)
    for sock in (stranger, platform_side, other_port):
        sock.close()
    await asyncio.to_thread(feed.close)

    # A dual-stack socket reports IPv4 senders as IPv6-mapped; an SDP c= may be a name.
    assert media_addresses("127.0.0.1") == {"127.0.0.1", "::ffff:127.0.0.1"}
    assert media_addresses("::ffff:10.0.0.1") == {"::ffff:10.0.0.1", "10.0.0.1"}
    assert "127.0.0.1" in media_addresses("localhost")

    again: Rig = await make_rig(answer_ssrc=None)
    feed = await again.open()
    assert feed.ssrc != ssrc  # 1 in 10,000 to collide by chance
    await asyncio.to_thread(feed.close)

    packet = rtp_packet(7, 1234)
    framed = struct.pack("!H", len(packet)) + packet
    rig = await make_rig(GbTransport.TCP_PASSIVE, tcp=True, setup="active")
    feed = await rig.open()
    port = int((offer_field(rig.platform.requests[0], "m=video ") or "").split()[0])
    intruder = socket.create_connection(
        ("127.0.0.1", port), timeout=WAIT_S, source_address=("127.0.0.3", 0)
    )
    intruder.sendall(framed)
    assert await asyncio.to_thread(feed.receiver.receive, 1.0) is None
    try:
        closed = intruder.recv(10) == b""
    except ConnectionResetError:  # closed with our data unread
        closed = True
    intruder.close()
    assert closed, "the node must close a stranger's media connection"
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as platform_tcp:
        platform_tcp.sendall(framed)
        data = await asyncio.to_thread(feed.receiver.receive, WAIT_S)
    assert data == packet
    await asyncio.to_thread(feed.close)


async def test_bye_follows_the_platform_to_its_new_address_and_a_lost_one_warns(
    make_rig, caplog: pytest.LogCaptureFixture
) -> None:
    """Review F15: a platform that re-registered from another address since the INVITE gets
    the BYE there (the old address is gone), and may BYE from there itself; a BYE nobody
    answers is a WARNING naming the camera (the platform may stream on)."""
    caplog.set_level(logging.WARNING, logger="surveillance.services.gb_play")
    rig: Rig = await make_rig()
    feed = await rig.open()
    call_id = rig.platform.requests[0].headers.get("Call-ID")
    moved = await start_platform()
    try:
        rig.signalling.platform = Peer("127.0.0.1", moved.port, "udp")
        await asyncio.to_thread(feed.close)
        await asyncio.to_thread(wait_until, lambda: "BYE" in moved.methods(), WAIT_S, "BYE")
        [bye] = moved.requests
        assert bye.headers.get("Call-ID") == call_id and "BYE" not in rig.platform.methods()

        feed = await rig.open()  # INVITE to the new address
        gone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        gone.bind(("127.0.0.1", 0))
        rig.signalling.platform = Peer("127.0.0.1", gone.getsockname()[1], "udp")
        gone.close()  # the platform moved again, and is silent there
        await asyncio.to_thread(feed.close)
        await asyncio.to_thread(
            wait_until,
            lambda: any("not answered" in r.message for r in caplog.records),
            WAIT_S,
            "the lost BYE said",
        )
        [warning] = [r for r in caplog.records if "not answered" in r.message]
        assert warning.levelno == logging.WARNING and CAMERA in warning.message
    finally:
        assert moved.transport is not None
        moved.transport.close()


async def test_a_restarted_node_byes_the_sessions_a_killed_one_left(make_rig) -> None:
    """Review F7: a node killed while streams played left rows in gb_sessions; the next
    start sends each dialog a BYE (its Call-ID, tags and CSeq) and removes the rows: to the
    INVITE's address while the platform has not registered yet, else to where it is now."""
    rig: Rig = await make_rig()
    await rig.open()
    await rig.open()
    invites = [r for r in rig.platform.requests if r.method == "INVITE"]
    assert all(row.dialog for row in rig.store.sessions())
    config = rig.config  # the same node configuration, a new run
    rig.signalling.platform = None  # not registered again yet
    restarted = GbPlayer(config, rig.signalling, rig.store)
    await restarted.start()
    try:
        await asyncio.to_thread(
            wait_until, lambda: rig.platform.methods().count("BYE") == 2, WAIT_S, "2 BYEs"
        )
        byes = {r.headers.get("Call-ID"): r for r in rig.platform.requests if r.method == "BYE"}
        for invite in invites:
            bye = byes[invite.headers.get("Call-ID")]
            assert cseq(bye) == (cseq(invite)[0] + 1, "BYE")
            assert header_param(bye.headers.get("To") or "", "tag") == "platform-tag"
            assert bye.headers.get("From") == invite.headers.get("From")
        assert rig.store.sessions() == []
    finally:
        await restarted.stop()

    # Killed again with a session open; the platform re-registered from another address.
    rig.signalling.platform = rig.platform.peer()
    player = GbPlayer(config, rig.signalling, rig.store)
    await player.start()
    await asyncio.to_thread(player.open, CAMERA, 5.0)
    moved = await start_platform()
    try:
        rig.signalling.platform = Peer("127.0.0.1", moved.port, "udp")
        again = GbPlayer(config, rig.signalling, rig.store)
        await again.start()
        await asyncio.to_thread(wait_until, lambda: "BYE" in moved.methods(), WAIT_S, "BYE")
        await again.stop()
        assert rig.store.sessions() == []
    finally:
        await player.stop()
        assert moved.transport is not None
        moved.transport.close()
