"""The GB/T 28181 ingest worker over real sockets on loopback.

The platform here is a small opener in the test that plays the GB platform simulator's PS
file (simulator/ps_mux.py) as RTP, in real time, once per INVITE: it stands in for the
signalling side (services/gb_play.py with simulator/gb_platform.py), which the end-to-end
tests use. A played file that ends is a platform that stopped sending.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction

import pytest

from surveillance.media.backoff import Backoff
from surveillance.media.bitstream import codec_string, parameter_sets_annexb
from surveillance.media.connections import SocketIndex
from surveillance.media.decode import LiveDecoder, decode_packets, new_decoder
from surveillance.media.gb_worker import GbFeed, GbIngestWorker
from surveillance.media.health import ErrorKind, StreamState
from surveillance.media.packets import Packet, StreamInfo
from surveillance.media.rtp import RtpReceiver, tcp_passive_receiver, udp_receiver
from surveillance.media.source import SourceOptions, StreamOpenError
from surveillance.media.stream import Stream
from surveillance.services.ingest_sources import IngestSource
from surveillance.simulator.ps_mux import ps_file
from tests.conftest import CLIP_CACHE
from tests.media.ps_material import ffmpeg_units, rtp
from tests.waits import wait_until

pytestmark = pytest.mark.integration  # threads, sockets and gst-launch-1.0, seconds each

SSRC = 0x0100_0001
OPTIONS = SourceOptions("tcp", connect_timeout_s=8, read_timeout_s=1.5)
CLIP_S = 4.0  # SMALL_H264 and H265 last 4 s
PAYLOAD_BYTES = 1400
WAIT_S = 15.0  # generous: CI is a loaded machine


class PlayingOpener:
    """Answers each open() with a new feed whose packets a thread sends: the PS file, cut
    into RTP packets, paced over ``CLIP_S``, once; then silence."""

    def __init__(
        self,
        ps: bytes,
        transport: str,
        *,
        wrong_ssrc_every: int = 0,
        network: bool = False,
        sent_ssrc: int = SSRC,
    ) -> None:
        """``network``: packets swapped in pairs now and then, some sent twice, some lost,
        as UDP across a real network delivers them."""
        self.ps = ps
        self.transport = transport
        self.wrong_ssrc_every = wrong_ssrc_every
        self.network = network
        self.sent_ssrc = sent_ssrc  # what the platform sends with; the feed keeps SSRC
        # Wraps each feed's receiver (a test's hook into the worker's receive), if set.
        self.wrap: Callable[[RtpReceiver], RtpReceiver] | None = None
        self.dropped: list[int] = []  # sequence numbers never sent
        self.opens = 0
        self.closes: list[int] = []  # the feed (open number) of each close() call
        self.fail: StreamOpenError | None = None
        self._threads: list[threading.Thread] = []
        self._done = threading.Event()

    def open(self, camera_id: str, timeout_s: float) -> GbFeed:
        assert camera_id == "plat.34020000001320000001" and timeout_s > 0
        if self.fail is not None:
            raise self.fail
        self.opens += 1
        number = self.opens
        if self.transport == "udp":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            receiver = udp_receiver(sock)
            target = sock.getsockname()
        else:
            listener = socket.create_server(("127.0.0.1", 0))
            target = listener.getsockname()
            receiver = tcp_passive_receiver(listener)
        thread = threading.Thread(target=self._play, args=(target,), daemon=True)
        thread.start()
        self._threads.append(thread)

        def close() -> None:
            self.closes.append(number)
            receiver.close()

        if self.wrap is not None:
            receiver = self.wrap(receiver)
        return GbFeed(receiver, SSRC, close, f"34020000001320000001 {self.transport} {target[1]}")

    def _play(self, target: tuple[str, int]) -> None:
        packets = []
        for index, start in enumerate(range(0, len(self.ps), PAYLOAD_BYTES)):
            packets.append(
                rtp(self.ps[start : start + PAYLOAD_BYTES], 65_000 + index, ssrc=self.sent_ssrc)
            )
            if self.wrong_ssrc_every and index % self.wrong_ssrc_every == 0:
                packets.append(rtp(b"\x00\x00\x01\xba not ours", 7, ssrc=SSRC + 1))
        if self.network:
            packets = self._mess_up(packets)
        step = 40
        udp = self.transport == "udp"
        if udp:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        else:
            sock = socket.create_connection(target, timeout=5)

        def send(data: bytes) -> None:
            if udp:
                sock.sendto(data, target)
            else:  # RFC 4571 s.2 framing
                sock.sendall(len(data).to_bytes(2, "big") + data)

        try:
            started = time.monotonic()
            for index in range(0, len(packets), step):
                if self._done.is_set():
                    return
                for data in packets[index : index + step]:
                    send(data)
                due = started + CLIP_S * (index + step) / len(packets)
                time.sleep(max(0.0, due - time.monotonic()))
            self._done.wait(30)  # stopped sending; the TCP connection stays open
        except OSError:
            return  # the node closed its end
        finally:
            sock.close()

    def _mess_up(self, packets: list[bytes]) -> list[bytes]:
        out = []
        for index in range(0, len(packets) - 1, 2):
            first, second = packets[index], packets[index + 1]
            if index % 50 == 10:
                out += [second, first]  # reordered
            elif index % 80 == 20:
                out += [first, first, second]  # a duplicate
            elif index % 60 == 50:  # not in the first keyframe, which the test needs
                self.dropped.append(int.from_bytes(first[2:4], "big"))
                out.append(second)  # lost
            else:
                out += [first, second]
        return out

    def finish(self) -> None:
        self._done.set()
        for thread in self._threads:
            thread.join(10)


@pytest.fixture
def h264_ps() -> bytes:
    return ps_file("h264", CLIP_CACHE).read_bytes()


MakeWorker = Callable[..., tuple[GbIngestWorker, Stream]]


@pytest.fixture
def worker_for() -> Iterator[MakeWorker]:
    made: list[tuple[GbIngestWorker, PlayingOpener]] = []

    def make(
        opener: PlayingOpener, options: SourceOptions = OPTIONS
    ) -> tuple[GbIngestWorker, Stream]:
        stream = Stream("plat.34020000001320000001", ring_seconds=4, queue_packets=500,
                        stall_after_s=1.0)  # fmt: skip
        worker = GbIngestWorker(stream, "plat.34020000001320000001", opener, options,
                                Backoff(0.1, 0.2), str)  # fmt: skip
        made.append((worker, opener))
        return worker, stream

    yield make
    for worker, opener in made:
        worker.stop()
        assert worker.join(10)
        opener.finish()
        assert sorted(opener.closes) == list(range(1, opener.opens + 1)), "close once a feed"


def decoded(packets: list[Packet]) -> int:
    """How many pictures the packets decode to, from their first keyframe."""
    assert packets and packets[0].keyframe
    context = new_decoder(packets[0].info)
    count = 0
    for packet in packets:
        if decode_packets(context, [packet]) is not None:
            count += 1
    return count


def test_udp_feed_goes_online_decodes_and_reconnects_when_the_platform_stops(
    h264_ps: bytes, worker_for: MakeWorker, caplog: pytest.LogCaptureFixture
) -> None:
    opener = PlayingOpener(h264_ps, "udp", wrong_ssrc_every=25)
    worker, stream = worker_for(opener)
    subscription = stream.subscribe(from_cached_gop=False, max_packets=500)
    with caplog.at_level(logging.INFO, logger="surveillance.media.gb_worker"):
        worker.start()
        wait_until(lambda: stream.health.state is StreamState.ONLINE, 15, "online")
        health = stream.health
        assert (health.codec, health.width, health.height) == ("h264", 640, 360)
        # The file ends: the platform stopped sending. Offline with why, then a new INVITE.
        wait_until(lambda: stream.health.state is StreamState.OFFLINE, 15, "offline")
        assert health.last_error_kind is ErrorKind.TIMEOUT
        assert health.last_error == "the platform stopped sending video for 1.5 s"
        wait_until(lambda: opener.opens == 2 and opener.closes == [1], 10, "a second INVITE")
        wait_until(lambda: stream.health.state is StreamState.ONLINE, 15, "online again")
        assert health.reconnects >= 1 and health.failed_attempts == 0
    packets = []
    while (packet := subscription.get(0)) is not None:
        packets.append(packet)
    first = packets.index(next(p for p in packets if p.keyframe))
    session = [p for p in packets[first:] if p.info is packets[first].info]
    assert packets[0].keyframe  # nothing before a connection's first keyframe
    assert len(session) >= 90 and decoded(session) == len(session)
    info = session[0].info
    assert info.width == 640 and info.time_base.denominator == 90_000
    # The keyframe's parameter sets stand for an SDP's: the browser's codec string from them.
    assert codec_string("h264", parameter_sets_annexb("h264", info.extradata)) == "avc1.4d401e"
    # Another SSRC's packets (one in 25) were dropped, counted, logged once.
    assert worker.rtp_wrong_ssrc >= 10 and worker.rtp_packets > 300
    assert worker.rtp_lost == 0 and worker.ps_errors == 0
    messages = [r.getMessage() for r in caplog.records]
    online = [m for m in messages if " online: h264 640x360 (GB/T 28181 " in m]
    assert len(online) == 2  # once per connection
    assert sum("RTP from another SSRC" in m for m in messages) == 1


def test_tcp_passive_h265_feed_goes_online_as_hevc(worker_for: MakeWorker) -> None:
    opener = PlayingOpener(ps_file("h265", CLIP_CACHE).read_bytes(), "tcp")
    worker, stream = worker_for(opener)
    worker.start()
    wait_until(lambda: stream.health.state is StreamState.ONLINE, 15, "online")
    assert (stream.health.codec, stream.health.width, stream.health.height) == ("hevc", 640, 360)
    source: IngestSource = worker  # what the ingest service takes (mypy checks the fit)
    assert source.running and not source.end_if_hung(time.monotonic(), 1.0, SocketIndex())
    packets = stream.ring.latest_gop()
    assert packets and packets[0].info.codec == "hevc" and decoded(packets) == len(packets)
    extradata = packets[0].info.extradata
    assert (codec_string("hevc", parameter_sets_annexb("hevc", extradata)) or "").startswith(
        "hvc1.1."
    )


def test_an_open_that_fails_leaves_the_stream_offline_with_its_reason(
    worker_for: MakeWorker,
) -> None:
    opener = PlayingOpener(b"", "udp")
    opener.fail = StreamOpenError(ErrorKind.REFUSED, "the platform refused the INVITE (486 Busy)")
    worker, stream = worker_for(opener)
    worker.start()
    wait_until(lambda: stream.health.failed_attempts >= 2, 10, "retrying")
    health = stream.health
    assert health.state is StreamState.OFFLINE and health.last_error_kind is ErrorKind.REFUSED
    assert health.last_error == "the platform refused the INVITE (486 Busy)"
    assert opener.opens == 0 and opener.closes == []


def test_a_feed_without_a_keyframe_times_out_naming_it(
    worker_for: MakeWorker, caplog: pytest.LogCaptureFixture
) -> None:
    junk = b"\x00\x00\x01\xba" + bytes(2000)  # a platform that sends no video
    opener = PlayingOpener(junk * 50, "udp")
    worker, stream = worker_for(opener, SourceOptions("tcp", 2, 1.5))
    worker.start()
    wait_until(lambda: stream.health.state is StreamState.OFFLINE, 20, "offline")
    assert stream.health.last_error_kind is ErrorKind.TIMEOUT
    assert "no keyframe within 2 s of the INVITE" in (stream.health.last_error or "")
    assert worker.ps_errors > 0
    damaged = [r for r in caplog.records if "damaged program stream skipped" in r.getMessage()]
    assert len(damaged) == 1  # counted always, logged once a minute


def test_a_feed_of_another_ssrc_only_names_the_ssrcs(
    h264_ps: bytes, worker_for: MakeWorker
) -> None:
    """Review F13: every packet dropped for its SSRC: the reason names both SSRCs, not the
    keyframe interval (a good stream, only its SSRC differs)."""
    opener = PlayingOpener(h264_ps, "udp", sent_ssrc=SSRC + 5)
    worker, stream = worker_for(opener, SourceOptions("tcp", 2, 1.5))
    worker.start()
    wait_until(lambda: stream.health.state is StreamState.OFFLINE, 20, "offline")
    message = stream.health.last_error or ""
    assert f"sends SSRC {SSRC + 5}, expected {SSRC}" in message, message
    assert "keyframe" not in message and worker.rtp_wrong_ssrc > 10


def test_reordered_duplicated_and_lost_packets_deliver_only_whole_units(
    h264_ps: bytes, worker_for: MakeWorker
) -> None:
    opener = PlayingOpener(h264_ps, "udp", network=True)
    worker, stream = worker_for(opener)
    subscription = stream.subscribe(from_cached_gop=False, max_packets=500)
    worker.start()
    wait_until(lambda: stream.health.state is StreamState.ONLINE, 15, "online")
    wait_until(lambda: stream.health.state is StreamState.OFFLINE, 15, "the file played")
    assert len(opener.dropped) >= 4 and worker.rtp_lost == len(opener.dropped)
    whole = {unit.data for unit in ffmpeg_units(ps_file("h264", CLIP_CACHE))[1]}
    delivered = []
    while (packet := subscription.get(0)) is not None:
        delivered.append(packet)
    assert len(delivered) >= 100 - 2 * len(opener.dropped) - 2
    assert all(packet.data in whole for packet in delivered), "a damaged unit was delivered"


def test_nothing_is_delivered_once_the_worker_is_asked_to_stop(
    h264_ps: bytes, worker_for: MakeWorker
) -> None:
    """An on-demand stream parked while the worker waits in receive: the packet that wait
    returns (here one that starts a unit, which would complete the one before it) must not
    turn the parked stream online again."""
    opener = PlayingOpener(h264_ps, "udp")
    worker, stream = worker_for(opener)
    packets_at_stop: list[int] = []

    class StoppedWhileWaiting:
        def __init__(self, inner: RtpReceiver) -> None:
            self.inner = inner

        def receive(self, timeout_s: float) -> bytes | None:
            data = self.inner.receive(timeout_s)
            online = stream.health.state is StreamState.ONLINE
            if online and data and b"\x00\x00\x01\xe0" in data and not packets_at_stop:
                worker.stop()  # what the ingest service's parking does, from its thread
                stream.ring.clear()
                stream.health.set_state(StreamState.IDLE)
                packets_at_stop.append(stream.health.packets)
            return data

        def close(self) -> None:
            self.inner.close()

    opener.wrap = StoppedWhileWaiting
    worker.start()
    wait_until(lambda: packets_at_stop, 15, "parked while packets flow")
    assert worker.join(10)
    assert stream.health.packets == packets_at_stop[0]
    assert stream.health.state is StreamState.IDLE and opener.closes == [1]


def test_live_decoder_survives_a_codec_change_mid_stream(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Review F19: H.264 arriving while the stream's StreamInfo still says HEVC (a platform
    switching encoder, or a stream mixed up) makes FFmpeg's HEVC decoder raise
    PatchWelcomeError. The live decoder logs it, keeps its thread, and decodes the new
    codec with a new decoder once a keyframe with the new StreamInfo comes."""
    hevc_units = ffmpeg_units(ps_file("h265", CLIP_CACHE))[1]
    h264_units = ffmpeg_units(ps_file("h264", CLIP_CACHE))[1]

    def info(codec: str) -> StreamInfo:
        return StreamInfo(codec, 640, 360, Fraction(1, 90_000), None, None, None, time.time())

    stream = Stream("plat.34020000001320000001", ring_seconds=4, queue_packets=500,
                    stall_after_s=5.0)  # fmt: skip
    died: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: died.append(args.exc_value))
    live = LiveDecoder(stream, warm_s=30)
    hevc, h264 = info("hevc"), info("h264")
    for unit in hevc_units[:10]:
        stream.deliver(unit.data, unit.pts, unit.dts, unit.keyframe, hevc)
    first = live.wait_for(0, WAIT_S)
    assert first is not None and first.info is hevc
    for unit in h264_units[:10]:  # the codec changed, the info not yet
        stream.deliver(unit.data, unit.pts, unit.dts, unit.keyframe, hevc)
    wait_until(lambda: "decoder gave up" in caplog.text or died, WAIT_S, "the bad packets")
    for unit in h264_units[:40]:
        stream.deliver(unit.data, unit.pts, unit.dts, unit.keyframe, h264)
    wait_until(lambda: (f := live.wait_for(0, 1)) is not None and f.info is h264, WAIT_S, "H.264")
    live.stop()
    assert died == [] and "PatchWelcomeError" in caplog.text
