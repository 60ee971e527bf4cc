"""The ingest worker: one thread per camera stream, demux only, reconnect forever.

Why a thread and not a coroutine: PyAV's demux is a blocking C call that releases the GIL;
one thread per connection keeps a slow or silent camera from ever holding up another, and
the event loop never waits on a camera. The per-packet Python work is a copy of the bytes
and a few attribute updates: no decode, no allocation beyond the packet itself. The thread's
life cycle (start, stop, reconnect with back-off) is media/worker_thread.py's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import av

from surveillance.media.backoff import Backoff
from surveillance.media.connections import (
    CLAIMS,
    ConnectionWatch,
    Peer,
    SessionSockets,
    SocketIndex,
    addresses_of,
    established,
    socket_inodes,
)
from surveillance.media.decode import decode_keyframe
from surveillance.media.health import ErrorKind
from surveillance.media.packets import Packet, StreamInfo
from surveillance.media.preflight import Endpoint, RedirectPolicy, preflight
from surveillance.media.source import (
    SourceOptions,
    StreamOpenError,
    describe_error,
    open_rtsp,
    stream_info,
)
from surveillance.media.stream import Stream
from surveillance.media.worker_thread import ReconnectingWorker

log = logging.getLogger(__name__)

# A hung session's socket may still carry RTCP reports and keep-alive answers (tens of
# bytes a second); a socket that received more than this a second while the stream was
# silent carries video, another camera's perhaps, and is never shut down.
QUIET_BYTES_PER_S = 2000
# A stopped worker shuts down a socket another session claimed too only once nothing
# arrived on it for this long: a camera's video comes many times a second.
STOP_QUIET_MS = 500


@dataclass
class _Silence:
    """A silence of the open session, as :meth:`IngestWorker.end_if_hung` follows it."""

    since: float  # time.monotonic() of the last live packet, or of the session's opening
    counted_at: float  # time.monotonic() when ``received`` was read
    received: dict[int, int]  # bytes each of the session's sockets had received, by inode
    tried: bool = False  # a shutdown was tried in this silence


@dataclass(frozen=True)
class _Attempt:
    """One attempt at a session, as :meth:`IngestWorker._interrupt` finds its connections
    before the session has claimed them: those that appeared since it began and reach
    where it connects."""

    before: set[int]  # inodes of the process's sockets when the attempt began
    targets: frozenset[Peer]  # the camera's addresses (and an allowed redirect's)


class IngestWorker(ReconnectingWorker):
    thread_name_prefix = "ingest"

    def __init__(
        self,
        stream: Stream,
        url: str,
        options: SourceOptions,
        backoff: Backoff,
        redact: Callable[[str], str],
        redirects: RedirectPolicy | None = None,
    ) -> None:
        super().__init__(stream, options, backoff, redact)
        self._url = url  # may carry credentials: never log it unredacted
        self._redirects = redirects or RedirectPolicy()  # default: follow none
        # The open session's sockets (None without /proc or while closed), for end_if_hung.
        self._sockets: SessionSockets | None = None
        self._silence: _Silence | None = None  # the open session's current silence
        self._ended_because: str | None = None  # set when end_if_hung shut the session down
        self._attempt: _Attempt | None = None  # the attempt under way (None without /proc)

    def end_if_hung(self, now: float, stall_after_s: float, index: SocketIndex) -> bool:
        """Called by the monitor about twice a second (``now``: time.monotonic()). Shut the
        session's connection down once no live packet came for ``read_timeout_s`` (since
        the session opened, if none came in it), whether FFmpeg's own time-out fires or not
        (it does not while the server sends RTCP or keep-alive answers). The worker then
        reconnects as after any failure. ``index`` finds the sockets (one per monitor round).
        True if it shut a connection down."""
        if self._stop.is_set():
            # Stopped and still running: stop() may have looked before the opening
            # connected (the monitor calls this for a camera let go until its worker ends).
            return self._shut_down_attempt(index) > 0
        health = self.stream.health
        opened_at, sockets = health.session_opened_at, self._sockets
        if opened_at is None or not sockets or self._ended_because is not None:
            return False
        last = health.last_packet_at
        silent_since = opened_at if last is None or last < opened_at else last
        silent_s = now - silent_since
        if silent_s < stall_after_s:
            self._silence = None
            return False
        silence = self._silence
        if silence is None or silence.since != silent_since:
            # What the sockets had received when the silence began (near enough): a socket
            # that receives video meanwhile is not this session's, or not hung.
            self._silence = _Silence(silent_since, now, sockets.received(index))
            return False
        if silent_s < self._options.read_timeout_s or silence.tried:
            return False
        silence.tried = True  # once per silence: a socket that was not quiet stays not quiet
        reason = (
            f"no video for {self._options.read_timeout_s:g} s while the connection stayed "
            "open: closed by the node, to be re-opened"
        )
        self._ended_because = reason
        allowed = int(QUIET_BYTES_PER_S * max(1.0, now - silence.counted_at))
        if sockets.shut_down_quiet(silence.received, allowed, index):
            # The reason as set, not read back: the worker thread, woken by the shut-down
            # socket, may have taken it into its report (and cleared it) already; that
            # logged "stream h1: None".
            log.warning("stream %s: %s", self.stream.key, reason)
            return True
        self._ended_because = None
        return False

    def _interrupt(self) -> None:
        """Shut down the connections of the attempt under way, in whatever phase: the
        pre-flight, FFmpeg's open (TCP, DESCRIBE/SETUP/PLAY, waiting for the first
        keyframe), or reading. FFmpeg's blocked call returns at once (end of stream), and
        its own close frees the sockets: the thread then ends, and with it reading()."""
        self._shut_down_attempt(None)

    def _shut_down_attempt(self, index: SocketIndex | None) -> int:
        others = CLAIMS.of_others(self)
        sockets = self._sockets
        if sockets:  # the open session's
            return sockets.shut_down(others, STOP_QUIET_MS, index)
        attempt = self._attempt
        if attempt is None:
            return 0
        now = socket_inodes()
        if now is None:
            return 0
        outgoing, _ = established(now - attempt.before, now)
        # Another camera of the same host and port still opening is among them too: its
        # open fails and retries after its back-off. An open session's is left if it
        # carries video (the shut_down's rule).
        mine = {inode for inode, peer in outgoing.items() if peer in attempt.targets}
        return SessionSockets(mine).shut_down(others, STOP_QUIET_MS, index)

    def _shut_down_if_stopped(self) -> None:
        if self._stop.is_set():
            self._shut_down_attempt(None)

    def _report(self, exc: BaseException) -> None:
        if self._stop.is_set():
            # Ended by stop() (its own shut-down reads as "the server ended"): no failure
            # of the camera's; whoever stopped it says what the stream is now.
            self._ended_because = None
            return
        ended_because, self._ended_because = self._ended_because, None
        if ended_because is not None:
            exc = StreamOpenError(ErrorKind.TIMEOUT, ended_because)
        self._set_offline(exc)

    def _begin_attempt(self) -> None:
        before = socket_inodes()
        if before is not None:
            endpoint = Endpoint.of(self._url)
            targets = addresses_of(endpoint.host, endpoint.port)
            self._attempt = _Attempt(before, frozenset(targets))

    def _redirected(self, url: str) -> None:
        attempt = self._attempt
        if attempt is not None and url != self._url:
            endpoint = Endpoint.of(url)
            targets = attempt.targets | addresses_of(endpoint.host, endpoint.port)
            self._attempt = _Attempt(attempt.before, targets)

    def _open(self) -> Any | None:
        """The open container, or None when the worker was stopped meanwhile."""
        timeout_s = self._options.connect_timeout_s
        started = time.monotonic()
        answered = False  # the camera accepted the node's own DESCRIBE
        try:
            # FFmpeg follows RTSP redirects by itself: ask first (media/preflight.py).
            checked = preflight(self._url, self._redirects, timeout_s)
            answered = checked.accepted
            url = checked.url
            self._redirected(url)
            if self._stop.is_set():
                return None
            started = time.monotonic()
            sockets_before = socket_inodes()
            # Stopped while FFmpeg opens: the watch's thread shuts down what the opening
            # connects, even what connected after stop() looked.
            watch = ConnectionWatch(sockets_before, after_sample=self._shut_down_if_stopped).start()
            try:
                container = open_rtsp(url, self._options)
            except Exception as exc:
                peers = watch.stop()
                # A camera that refused the pre-flight too has plainly refused the password.
                if checked.accepted:
                    self._check_failed_open(url, peers, exc)
                raise
            watch.stop()
        except StreamOpenError:
            raise
        except Exception as exc:
            # When PyAV's open timeout interrupts FFmpeg, the RTSP demuxer reports whatever
            # it was doing ("Invalid data", "Immediate exit"); the clock tells the truth.
            if time.monotonic() - started >= timeout_s * 0.95:
                # A camera that answered the node's own DESCRIBE is there: what it did not
                # send in time is video, which starts at its next keyframe.
                message = (
                    f"the camera answered but sent no video within {timeout_s:g} s while "
                    "opening: a camera's video starts at its next keyframe, so keep "
                    "ingest.connect_timeout_s above its keyframe interval"
                    if answered
                    else f"no answer within {timeout_s:g} s while opening"
                )
                raise StreamOpenError(ErrorKind.TIMEOUT, message) from exc
            if isinstance(exc, av.InvalidDataError) and not answered:
                # FFmpeg's RTSP demuxer says "Invalid data" when the DESCRIBE answer has no
                # SDP (libavformat/rtsp.c, ff_rtsp_setup_input_streams), which is also what
                # a connection closed before any answer gives. The pre-flight got no RTSP
                # answer either (a 4xx would have made FFmpeg fail with its HTTP error):
                # whatever accepted the connection is not the camera talking. Seen when
                # the link to the camera is down and a gateway accepts and closes.
                raise StreamOpenError(
                    ErrorKind.UNREACHABLE,
                    "the connection was accepted but closed without an RTSP answer: the "
                    "camera is unreachable behind a gateway or proxy, or this port is not "
                    "an RTSP server",
                ) from exc
            raise
        try:
            self._sockets = self._check_peer(url, sockets_before)
        except BaseException:
            container.close()
            raise
        return container

    def _check_failed_open(self, url: str, peers: set[Peer], exc: Exception) -> None:
        """Name the redirect when FFmpeg failed for credentials after connecting elsewhere.

        FFmpeg keeps the credentials across a redirect it follows by itself, so a camera
        that answered the pre-flight honestly can send FFmpeg to a host that asks for them;
        FFmpeg then fails with 401 and, without this, the camera would only show ``auth``.
        (A connection another stream opened at the same moment counts too: only an
        authentication failure is renamed, never another.)
        """
        error = describe_error(exc, while_opening=True, timeout_s=self._options.connect_timeout_s)
        if error.kind is not ErrorKind.AUTH:
            return
        endpoint = Endpoint.of(url)
        expected = addresses_of(endpoint.host, endpoint.port)
        elsewhere = sorted(peer for peer in peers if peer not in expected)
        if expected and elsewhere:
            host, port = elsewhere[0]
            raise StreamOpenError(
                ErrorKind.REDIRECT,
                f"FFmpeg was redirected to {host}:{port}, which refused the credentials: the "
                "camera redirected it after answering the node's own check; it may have "
                "sent the credentials there",
                credentials_exposed=True,
            ) from exc

    def _check_peer(self, url: str, sockets_before: set[int] | None) -> SessionSockets | None:
        """Refuse a session FFmpeg opened somewhere else than ``url``'s host; else the
        session's sockets to that host (None without /proc).

        A camera can answer the pre-flight with 200 and FFmpeg's own DESCRIBE with a 302,
        which FFmpeg follows. FFmpeg keeps the session's control connection open, so among
        the sockets that appeared while it opened, one must reach the expected host.
        (Another stream opening at the same moment to the same host and port could hide
        such a redirect. An honest camera fails it only if it closed the connection before
        the check and, in that instant, another connection elsewhere appeared: one retry.)
        """
        sockets_after = socket_inodes()
        if sockets_before is None or sockets_after is None:
            return None  # no /proc: the pre-flight is the only check
        new = sockets_after - sockets_before
        by_inode, _ = established(new, sockets_after)
        peers = set(by_inode.values())
        endpoint = Endpoint.of(url)
        expected = addresses_of(endpoint.host, endpoint.port)
        if peers and expected and not peers & expected:
            raise StreamOpenError(
                ErrorKind.REDIRECT,
                f"FFmpeg's connection did not go to {endpoint.host}:{endpoint.port}: the camera "
                "redirected it after answering the node's own check; refused",
                credentials_exposed=True,  # FFmpeg set the session up there before this check
            )
        sockets = SessionSockets(
            {inode for inode, peer in by_inode.items() if not expected or peer in expected}
        )
        CLAIMS.claim(self, sockets.inodes)
        return sockets

    def _session(self) -> None:
        self._begin_attempt()
        try:
            container = self._open()
        except BaseException:
            self._attempt = None
            raise
        if container is None:
            self._attempt = None
            return
        self.stream.health.session_opened_at = time.monotonic()
        try:
            if self._stop.is_set():
                return  # stopped while opening (FFmpeg may return what it had by then)
            if not container.streams.video:
                raise StreamOpenError(ErrorKind.UNSUPPORTED, "the stream has no video track")
            video = container.streams.video[0]
            info = stream_info(video)
            health = self.stream.health
            health.codec = info.codec
            health.profile = info.profile
            health.width = info.width or None
            health.height = info.height or None
            deliver = self.stream.deliver
            stop = self._stop
            read_timeout_s = self._options.read_timeout_s
            got_first = False
            sized = bool(info.width and info.height)
            previous_at: float | None = None
            for packet in container.demux(video):
                if stop.is_set():
                    return
                if packet.size == 0:
                    continue  # PyAV's flush marker at end of stream
                now = time.monotonic()
                if previous_at is not None and now - previous_at >= read_timeout_s:
                    # FFmpeg's read timed out: libavformat's read_frame_internal
                    # (libavformat/demux.c, "flush the parsers") then returns the access
                    # unit its parser held, sent before the silence, and only the next
                    # read, a whole time-out later, fails. Take the packet for the
                    # time-out it is, and re-open now.
                    raise StreamOpenError(
                        ErrorKind.TIMEOUT,
                        f"no packets within {read_timeout_s:g} s while waiting for packets",
                    )
                previous_at = now
                data = bytes(packet)
                if not sized and packet.is_keyframe:
                    sized = True
                    info = with_picture_size(info, data, packet.pts, packet.dts)
                    health.width = info.width or None
                    health.height = info.height or None
                deliver(data, packet.pts, packet.dts, packet.is_keyframe, info)
                if not got_first:
                    got_first = True
                    self._backoff.reset()
                    health.failed_attempts = 0
                    health.set_retry(None, attempting=False)
                    log.info(
                        "stream %s online: %s %sx%s",
                        self.stream.key, info.codec, info.width, info.height,
                    )  # fmt: skip
            if stop.is_set():
                return  # stop() shut the connection down
            raise StreamOpenError(ErrorKind.ENDED, "the server ended the stream")
        finally:
            self.stream.health.session_opened_at = None
            self._silence = None
            container.close()
            # Only now: stop() shuts these down until the container has closed them.
            self._sockets = None
            self._attempt = None
            CLAIMS.release(self)


def with_picture_size(
    info: StreamInfo, data: bytes, pts: int | None, dts: int | None
) -> StreamInfo:
    """``info`` with the picture size of the connection's first keyframe, when opening gave
    none: FFmpeg's probe ends before a camera whose keyframes are far apart has sent one, and
    a size of 0x0 would reach the plan and size a transcoder to nothing. One keyframe's
    decode, once per such connection; the connection's packets carry the sized info from
    this keyframe on (consumers start at a keyframe anyway)."""
    frame = decode_keyframe(Packet(0, data, pts, dts, True, time.monotonic(), info))
    if frame is None:
        return info
    return replace(info, width=frame.width, height=frame.height)
