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


@pytest.mark.parametrize("url", ["file:///etc/passwd", "/etc/passwd", "http://127.0.0.1:1/x"])
def test_non_rtsp_urls_never_open(url: str) -> None:
    # The RTSP demuxer is forced and the protocol whitelist names only what RTSP needs.
    with pytest.raises(av.FFmpegError):
        open_rtsp(url, OPTIONS)
