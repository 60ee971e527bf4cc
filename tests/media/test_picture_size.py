"""A connection opened before FFmpeg saw a picture learns its size from its first keyframe
(media/worker.py): a 0x0 size would reach the plan and size a transcoder to nothing."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from surveillance.media.packets import StreamInfo
from surveillance.media.worker import with_picture_size


def h264_keyframe(width: int, height: int) -> tuple[bytes, bytes | None]:
    """One encoded keyframe (Annex B) and the encoder's extradata."""
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = Fraction(1, 25)
    picture = av.VideoFrame.from_ndarray(
        np.full((height, width, 3), 90, dtype=np.uint8), format="rgb24"
    ).reformat(format="yuv420p")
    packets = list(encoder.encode(picture)) + list(encoder.encode(None))
    return bytes(packets[0]), bytes(encoder.extradata) if encoder.extradata else None


def test_an_unsized_connection_takes_its_first_keyframe_s_size() -> None:
    data, extradata = h264_keyframe(320, 240)
    unsized = StreamInfo("h264", 0, 0, Fraction(1, 90000), extradata, "High", None, 0.0)
    sized = with_picture_size(unsized, data, 0, 0)
    assert (sized.width, sized.height) == (320, 240)
    assert sized.codec == "h264" and sized.extradata == extradata


def test_a_keyframe_that_does_not_decode_leaves_the_info_as_it_was() -> None:
    unsized = StreamInfo("h264", 0, 0, Fraction(1, 90000), None, None, None, 0.0)
    assert with_picture_size(unsized, b"\x00\x00\x00\x01garbage", 0, 0) is unsized
