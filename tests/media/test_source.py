"""Opening sources: unsupported codecs are named, errors are classified, files are refused."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from surveillance.media.health import ErrorKind
from surveillance.media.source import (
    SourceOptions,
    StreamOpenError,
    describe_error,
    open_rtsp,
    stream_info,
)

OPTIONS = SourceOptions("tcp", connect_timeout_s=2, read_timeout_s=2)


def write_mpeg4_clip(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for _ in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_unsupported_codec_is_named(tmp_path: Path) -> None:
    path = tmp_path / "mpeg4.mp4"
    write_mpeg4_clip(path)
    with av.open(str(path)) as container, pytest.raises(StreamOpenError) as info:
        stream_info(container.streams.video[0])
    assert info.value.kind is ErrorKind.UNSUPPORTED
    assert "mpeg4" in info.value.message and "H.264" in info.value.message


def test_refused_connection_is_classified() -> None:
    with pytest.raises(Exception) as info:
        open_rtsp("rtsp://127.0.0.1:1/stream", OPTIONS)
    assert describe_error(info.value, while_opening=True, timeout_s=2).kind is ErrorKind.REFUSED


def test_ffmpeg_errors_are_told_in_words_without_its_error_number(tmp_path: Path) -> None:
    """PyAV's str() of an FFmpeg error is "[Errno 1094995529] ...: 'url'": not for people."""
    path = tmp_path / "garbage.h264"
    path.write_bytes(b"not a video at all" * 100)
    with pytest.raises(av.InvalidDataError) as info:
        av.open(str(path), format="rtsp")
    error = describe_error(info.value, while_opening=True, timeout_s=2)
    assert error.kind is ErrorKind.PROTOCOL
    assert error.message == "invalid data from the server: Invalid data found when processing input"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "/etc/passwd", "http://127.0.0.1:1/x"])
def test_non_rtsp_urls_never_open(url: str) -> None:
    # The RTSP demuxer is forced and the protocol whitelist names only what RTSP needs.
    with pytest.raises(av.FFmpegError):
        open_rtsp(url, OPTIONS)


def test_mdns_host_candidates_are_dropped_from_offers() -> None:
    from surveillance.media.webrtc import without_mdns_candidates

    offer = (
        "v=0\r\n"
        "a=candidate:1 1 udp 2122260223 3f1e8c2a-9b1d-4c55-a0f1-0d9c9d1c1e11.local 50123 typ host"
        " generation 0\r\n"
        "a=candidate:2 1 udp 2122260223 192.0.2.7 50124 typ host generation 0\r\n"
        "a=end-of-candidates\r\n"
    )
    kept = without_mdns_candidates(offer)
    assert ".local" not in kept
    assert "192.0.2.7 50124" in kept and kept.endswith("a=end-of-candidates\r\n")
