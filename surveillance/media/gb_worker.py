"""The ingest worker of a GB/T 28181 channel: INVITE, receive PS over RTP, deliver, repeat.

The GB twin of media/worker.py's :class:`IngestWorker`, with the same public interface and
the same health story (both are a media/worker_thread.py :class:`ReconnectingWorker`), so the
ingest service, the monitor and every consumer treat a GB channel like an RTSP camera. Where
the RTSP worker lets FFmpeg open a session and demux, this one asks a :class:`GbOpener` (the
signalling side: INVITE, SDP, the port) for a feed of RTP packets and demuxes the program
stream itself (media/rtp.py, media/ps.py).

A thread per channel, as for RTSP cameras: the receive is a blocking call that releases the
GIL, and a silent platform holds up no one. The per-packet work is a header unpack, an
order check and a list append; a unit costs one join and a short scan of its NAL headers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from surveillance.media.backoff import Backoff
from surveillance.media.bitstream import (
    H264_PPS,
    H264_SPS,
    H265_PPS,
    H265_SPS,
    H265_VPS,
    START_CODE,
    nal_type,
    split_annexb,
)
from surveillance.media.connections import SocketIndex
from surveillance.media.health import ErrorKind
from surveillance.media.packets import StreamInfo
from surveillance.media.ps import STREAM_TYPES, PsDemuxer
from surveillance.media.rtp import Reorderer, RtpReceiver, parse_rtp
from surveillance.media.source import SourceOptions, StreamOpenError
from surveillance.media.stream import Stream
from surveillance.media.worker import with_picture_size
from surveillance.media.worker_thread import ReconnectingWorker

log = logging.getLogger(__name__)

TIME_BASE = Fraction(1, 90_000)  # RTP and PS timestamps of video (RFC 3551 s.5, 13818-1)
# How often a thread waiting for packets looks whether it was asked to stop: the longest a
# stop waits on a silent platform.
STOP_POLL_S = 0.5
# Bad input is logged at most this often per channel (it is counted always).
BAD_INPUT_LOG_EVERY_S = 60.0


@dataclass
class GbFeed:
    """One play session as the opener set it up: where its packets come from."""

    receiver: RtpReceiver
    ssrc: int | None  # RTP with another SSRC is dropped and counted; None: the first one seen
    close: Callable[[], None]  # BYE and free the port; idempotent; called from the worker thread
    description: str  # for logs, no secrets: "34020000001320000001 udp 30002"


class GbOpener(Protocol):
    def open(self, camera_id: str, timeout_s: float) -> GbFeed:
        """Set a play session up (blocking, on the worker thread). Raises
        StreamOpenError: platform offline or not registered (UNREACHABLE), refused
        (REFUSED, NOT_FOUND for 404), no answer (TIMEOUT)."""
        ...


class GbIngestWorker(ReconnectingWorker):
    thread_name_prefix = "ingest-gb"

    def __init__(
        self,
        stream: Stream,
        camera_id: str,
        opener: GbOpener,
        options: SourceOptions,
        backoff: Backoff,
        redact: Callable[[str], str],
    ) -> None:
        super().__init__(stream, options, backoff, redact)
        self._camera_id = camera_id
        self._opener = opener
        # Counters for metrics, over the worker's life (written by its thread only).
        self.rtp_packets = 0
        self.rtp_wrong_ssrc = 0
        self.rtp_malformed = 0
        # The current session's reorderer and demuxer count for themselves (nothing to add
        # per packet); a session's counts move here when it ends.
        self._open_session: tuple[Reorderer, PsDemuxer] | None = None
        self._lost_before = 0
        self._ps_errors_before = 0
        self._bad_logged_at = float("-inf")

    @property
    def rtp_lost(self) -> int:
        """RTP packets given up as lost (media/rtp.py Reorderer)."""
        session = self._open_session
        return self._lost_before + (session[0].lost if session else 0)

    @property
    def ps_errors(self) -> int:
        """Program stream errors: bytes skipped to resync, bad PES, dropped units."""
        session = self._open_session
        return self._ps_errors_before + (session[1].errors if session else 0)

    # -- the IngestWorker interface (start, stop, join, running: ReconnectingWorker) ------
    def end_if_hung(self, now: float, stall_after_s: float, index: SocketIndex) -> bool:
        """Never needed: this worker's own read time-out ends a silent session (the RTSP
        worker needs the monitor because FFmpeg's does not while RTCP keeps coming)."""
        return False

    # -- the thread -------------------------------------------------------------------------
    def _session(self) -> None:
        started = time.monotonic()
        feed = self._opener.open(self._camera_id, self._options.connect_timeout_s)
        health = self.stream.health
        health.session_opened_at = time.monotonic()
        reorderer, demuxer = Reorderer(), PsDemuxer()
        self._open_session = (reorderer, demuxer)
        try:
            self._receive(feed, reorderer, demuxer, started)
        finally:
            self._lost_before += reorderer.lost
            self._ps_errors_before += demuxer.errors
            self._open_session = None
            health.session_opened_at = None
            try:
                feed.close()
            except Exception:
                log.exception("stream %s: closing %s failed", self.stream.key, feed.description)

    def _receive(
        self, feed: GbFeed, reorderer: Reorderer, demuxer: PsDemuxer, started: float
    ) -> None:
        """Deliver the feed's access units until it goes silent or the worker is stopped.
        ``started``: time.monotonic() before the INVITE, which the connect time-out covers
        together with the wait for the first keyframe."""
        stop = self._stop
        deliver = self.stream.deliver
        receive = feed.receiver.receive
        connect_timeout_s, read_timeout_s = (
            self._options.connect_timeout_s,
            self._options.read_timeout_s,
        )
        ssrc = feed.ssrc
        kept = 0  # packets of the session's SSRC
        wrong_ssrc: int | None = None  # the last other SSRC dropped
        info: StreamInfo | None = None
        online = False
        expected: int | None = None  # the sequence number after the last one demuxed
        last_unit_at = started
        ps_errors_seen = 0
        while True:
            data = receive(STOP_POLL_S)
            # Asked to stop while waiting (an on-demand stream parked as idle, its ring
            # cleared): nothing more may be delivered, or it would turn the stream online.
            if stop.is_set():
                return
            now = time.monotonic()
            if info is None and now - started >= connect_timeout_s:
                if kept == 0 and wrong_ssrc is not None:
                    raise StreamOpenError(
                        ErrorKind.PROTOCOL,
                        f"the platform sends SSRC {wrong_ssrc}, expected {ssrc}: all its "
                        "RTP was dropped",
                    )
                raise self._no_video(demuxer, connect_timeout_s)
            if info is not None and now - last_unit_at >= read_timeout_s:
                raise StreamOpenError(
                    ErrorKind.TIMEOUT,
                    f"the platform stopped sending video for {read_timeout_s:g} s",
                )
            if data is None:
                if not reorderer.held:
                    continue
                in_order = reorderer.drain()  # a silence with packets waiting for a lost one
            else:
                self.rtp_packets += 1
                try:
                    packet = parse_rtp(data)
                except ValueError as exc:
                    self.rtp_malformed += 1
                    self._bad_input(f"malformed RTP dropped: {exc}")
                    continue
                if packet.ssrc != ssrc:
                    if ssrc is None:
                        ssrc = packet.ssrc
                    else:
                        self.rtp_wrong_ssrc += 1
                        wrong_ssrc = packet.ssrc
                        self._bad_input(
                            f"RTP from another SSRC ({packet.ssrc}, expected {ssrc}) dropped"
                        )
                        continue
                kept += 1
                in_order = reorderer.push(packet)
            for ordered in in_order:
                if ordered.seq != expected and expected is not None:
                    demuxer.lost()
                expected = (ordered.seq + 1) & 0xFFFF
                for unit in demuxer.feed(ordered.payload):
                    if info is None or unit.codec != info.codec:
                        if not unit.keyframe:
                            continue  # a decoder starts at a keyframe; so does a connection
                        info = self._stream_info(unit.codec, unit.data, unit.pts, unit.dts)
                    if stop.is_set():
                        return
                    last_unit_at = now
                    deliver(unit.data, unit.pts, unit.dts, unit.keyframe, info)
                    if not online:
                        online = True
                        self._online(info, feed)
            if demuxer.errors != ps_errors_seen:
                ps_errors_seen = demuxer.errors
                self._bad_input(f"damaged program stream skipped ({ps_errors_seen} so far)")

    def _stream_info(self, codec: str, data: bytes, pts: int | None, dts: int | None) -> StreamInfo:
        """A connection's (or a codec change's) StreamInfo, sized from its first keyframe."""
        info = StreamInfo(
            codec=codec,
            width=0,
            height=0,
            time_base=TIME_BASE,
            # The parameter sets in band before the keyframe, as an RTSP camera's SDP gives
            # them: consumers read the browser codec string and muxer set-up from here.
            extradata=parameter_sets(codec, data),
            profile=None,
            average_fps=None,
            connected_at=time.time(),
        )
        info = with_picture_size(info, data, pts, dts)
        health = self.stream.health
        health.codec = codec
        health.width = info.width or None
        health.height = info.height or None
        return info

    def _online(self, info: StreamInfo, feed: GbFeed) -> None:
        health = self.stream.health
        self._backoff.reset()
        health.failed_attempts = 0
        health.set_retry(None, attempting=False)
        log.info(
            "stream %s online: %s %sx%s (GB/T 28181 %s)",
            self.stream.key, info.codec, info.width, info.height, feed.description,
        )  # fmt: skip

    @staticmethod
    def _no_video(demuxer: PsDemuxer, timeout_s: float) -> StreamOpenError:
        """Why a session set up gave no picture in time."""
        if demuxer.stream_type is not None and demuxer.stream_type not in STREAM_TYPES:
            return StreamOpenError(
                ErrorKind.UNSUPPORTED,
                f"the platform sends video of stream type 0x{demuxer.stream_type:02X}; "
                "supported: H.264 (0x1B), H.265 (0x24)",
            )
        return StreamOpenError(
            ErrorKind.TIMEOUT,
            f"the platform sent no keyframe within {timeout_s:g} s of the INVITE: keep "
            "ingest.connect_timeout_s above the channel's keyframe interval",
        )

    def _bad_input(self, message: str) -> None:
        """Log bad network input at most once a minute per channel; it is always counted."""
        now = time.monotonic()
        if now - self._bad_logged_at >= BAD_INPUT_LOG_EVERY_S:
            self._bad_logged_at = now
            log.warning("stream %s: %s (further ones counted, not logged, for a minute)",
                        self.stream.key, message)  # fmt: skip

    def _report(self, exc: BaseException) -> None:
        if isinstance(exc, EOFError):
            exc = StreamOpenError(ErrorKind.ENDED, "the platform closed the media connection")
        self._set_offline(exc)


_PARAMETER_SETS = {"h264": (H264_SPS, H264_PPS), "hevc": (H265_VPS, H265_SPS, H265_PPS)}


def parameter_sets(codec: str, keyframe: bytes) -> bytes | None:
    """The parameter sets a keyframe carries (Annex B), or None without an SPS among them."""
    wanted = _PARAMETER_SETS[codec]
    sps = wanted[-2]
    found = [nal for nal in split_annexb(keyframe) if nal_type(codec, nal) in wanted]
    if not any(nal_type(codec, nal) == sps for nal in found):
        return None
    return b"".join(START_CODE + nal for nal in found)
