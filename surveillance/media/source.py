"""Opening an RTSP stream with PyAV, safely, and naming why it failed when it does."""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from surveillance.media.health import ErrorKind
from surveillance.media.packets import StreamInfo

SUPPORTED_CODECS = {"h264": "H.264", "hevc": "H.265"}

# The RTSP demuxer only ever needs these protocols (TCP-interleaved, UDP, TLS for rtsps).
# Naming them stops a hostile SDP or redirect from making FFmpeg open file:, http: or
# concat: URLs on the server.
RTSP_PROTOCOL_WHITELIST = "rtsp,rtsps,tcp,tls,udp,rtp"


@dataclass(frozen=True)
class SourceOptions:
    transport: str  # "tcp" or "udp"
    connect_timeout_s: float
    read_timeout_s: float


class StreamOpenError(Exception):
    def __init__(self, kind: ErrorKind, message: str, *, credentials_exposed: bool = False) -> None:
        """``credentials_exposed``: FFmpeg reached a host other than the camera's, and may
        have sent it the camera's credentials (the stream's most serious warning)."""
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.credentials_exposed = credentials_exposed


def open_rtsp(url: str, options: SourceOptions) -> Any:
    """Open ``url`` with the RTSP demuxer forced; returns a PyAV input container."""
    ffmpeg_options = {
        "rtsp_transport": options.transport,
        "protocol_whitelist": RTSP_PROTOCOL_WHITELIST,
        # Socket I/O timeout, microseconds: ends a read on a camera that went silent.
        # FFmpeg checks it without calling back into Python, so it costs nothing per packet
        # (PyAV's own read timeout takes the GIL at every network poll).
        "timeout": str(int(options.read_timeout_s * 1_000_000)),
        # Only set up the video track: audio would cost bandwidth and demux work for nothing.
        "allowed_media_types": "video",
        # The SDP usually gives everything; don't wait 5 s probing (FFmpeg's default).
        "analyzeduration": "1000000",
        "probesize": "1000000",
    }
    return av.open(
        url,
        format="rtsp",
        options=ffmpeg_options,
        # PyAV's timeout covers the whole open (DNS, TCP, DESCRIBE/SETUP/PLAY, probing).
        timeout=(options.connect_timeout_s, None),
    )


def stream_info(stream: Any) -> StreamInfo:
    """Describe the video stream of a just-opened container, or raise for unsupported codecs."""
    ctx = stream.codec_context
    name = ctx.name
    if name not in SUPPORTED_CODECS:
        supported = ", ".join(SUPPORTED_CODECS.values())
        raise StreamOpenError(
            ErrorKind.UNSUPPORTED, f"unsupported video codec {name!r}; supported: {supported}"
        )
    rate = stream.average_rate or stream.guessed_rate
    return StreamInfo(
        codec=name,
        width=ctx.width,
        height=ctx.height,
        time_base=Fraction(stream.time_base) if stream.time_base else Fraction(1, 90_000),
        extradata=bytes(ctx.extradata) if ctx.extradata else None,
        profile=ctx.profile,
        average_fps=float(rate) if rate else None,
        connected_at=time.time(),
    )


def describe_error(exc: BaseException, *, while_opening: bool, timeout_s: float) -> StreamOpenError:
    """Turn an FFmpeg/PyAV/OS error into a kind and a message an operator can act on.

    The message may still contain the URL; callers pass it through the redactor.
    """
    if isinstance(exc, StreamOpenError):
        return exc
    if isinstance(exc, av.HTTPUnauthorizedError | av.HTTPForbiddenError):
        status = "401 Unauthorized" if isinstance(exc, av.HTTPUnauthorizedError) else "403"
        return StreamOpenError(
            ErrorKind.AUTH,
            f"authentication failed ({status}): check the user name and password of the "
            "camera or its platform",
        )
    if isinstance(exc, av.HTTPNotFoundError):
        return StreamOpenError(ErrorKind.NOT_FOUND, "stream not found on the server (404)")
    if isinstance(exc, av.HTTPError):
        return StreamOpenError(
            ErrorKind.PROTOCOL, f"server answered with an error: {_ffmpeg_text(exc)}"
        )
    if isinstance(exc, av.ConnectionRefusedError):
        return StreamOpenError(ErrorKind.REFUSED, "connection refused")
    if isinstance(exc, av.ExitError | av.TimeoutError):
        what = "opening the stream" if while_opening else "waiting for packets"
        return StreamOpenError(ErrorKind.TIMEOUT, f"no answer within {timeout_s:g} s while {what}")
    if isinstance(exc, av.EOFError):
        return StreamOpenError(ErrorKind.ENDED, "the server closed the stream")
    if isinstance(exc, av.ConnectionResetError):
        return StreamOpenError(ErrorKind.ENDED, "the connection was reset by the server")
    if isinstance(exc, av.InvalidDataError):
        return StreamOpenError(
            ErrorKind.PROTOCOL, f"invalid data from the server: {_ffmpeg_text(exc)}"
        )
    if isinstance(exc, OSError) and exc.errno in (
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EADDRNOTAVAIL,
    ):
        return StreamOpenError(ErrorKind.UNREACHABLE, f"host unreachable: {exc.strerror}")
    if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        return StreamOpenError(ErrorKind.REFUSED, "connection refused")
    if isinstance(exc, OSError) and exc.errno == errno.ETIMEDOUT:
        return StreamOpenError(ErrorKind.TIMEOUT, f"no answer within {timeout_s:g} s")
    text = _ffmpeg_text(exc)
    if "resolve" in text.lower() or "name or service" in text.lower():
        return StreamOpenError(ErrorKind.UNREACHABLE, f"host name not found: {text}")
    return StreamOpenError(ErrorKind.OTHER, text)


def _ffmpeg_text(exc: BaseException) -> str:
    """An error's words without FFmpeg's decoration: PyAV's str() of its errors is
    "[Errno 1094995529] Invalid data found ...: 'rtsp://...'", a negative-tag error number
    that means nothing to an operator, and the URL the camera's row shows anyway."""
    if isinstance(exc, av.FFmpegError) and exc.strerror:
        return str(exc.strerror)
    return str(exc) or type(exc).__name__
