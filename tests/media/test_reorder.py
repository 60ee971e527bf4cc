"""Whether a stream has B-frames is judged from what its connection sent, never from a sample.

The packets are real H.264 from libx264 (through PyAV), with and without B-frames, so the
slice headers read are the ones an encoder writes.
"""

from __future__ import annotations

import asyncio
import threading
from fractions import Fraction

import av
import numpy as np

from surveillance.media.bitstream import nal_type, split_annexb
from surveillance.media.packets import StreamInfo
from surveillance.media.reorder import SETTLE_AFTER_FRAMES, BFrameWatch
from surveillance.media.stream import Stream


def h264_packets(frames: int, b_frames: int) -> list[tuple[bytes, bool]]:
    """(Annex B bytes, keyframe) of ``frames`` encoded pictures, in decoding order."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = 128, 96, "yuv420p"
    codec.time_base = Fraction(1, 25)
    # FFmpeg's names for x264's settings; b-adapt=0 makes x264 use the B-frames it is
    # allowed even where its look-ahead would judge them not worth it (uncorrelated noise).
    codec.options = {"bf": str(b_frames), "g": "25", "sc_threshold": "0",
                     "x264-params": "b-adapt=0"}  # fmt: skip
    packets = []
    rng = np.random.default_rng(7)
    for index in range(frames):
        image = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        packets += [(bytes(p), p.is_keyframe) for p in codec.encode(frame)]
    packets += [(bytes(p), p.is_keyframe) for p in codec.encode(None)]
    return packets


def verdicts(packets: list[tuple[bytes, bool]]) -> list[bool | None]:
    watch = BFrameWatch("h264")
    seen = []
    for data, keyframe in packets:
        watch.feed(data, keyframe)
        seen.append(watch.verdict)
    return seen


def test_a_b_frame_source_is_known_within_its_first_frames() -> None:
    seen = verdicts(h264_packets(20, b_frames=2))
    assert seen[-1] is True
    assert seen.index(True) <= 3  # the keyframe, then a P-frame, then its B-frames
    assert None in seen[: seen.index(True)]  # nothing is claimed before the B slice


def test_a_source_without_b_frames_is_known_after_a_few_frames_not_at_its_keyframe() -> None:
    seen = verdicts(h264_packets(40, b_frames=0))
    assert seen[0] is None  # a keyframe alone proves nothing
    assert seen[SETTLE_AFTER_FRAMES - 1] is None
    assert seen[SETTLE_AFTER_FRAMES] is False
    assert seen[-1] is False


def test_frames_before_the_first_keyframe_do_not_count() -> None:
    packets = h264_packets(40, b_frames=0)
    joined_mid_gop = packets[5:25] + packets[:1]  # P-frames first, then a keyframe
    assert verdicts(joined_mid_gop)[-1] is None


def h265_packets(frames: int, b_frames: int) -> list[tuple[bytes, bool]]:
    """(Annex B bytes, keyframe) of ``frames`` pictures from libx265, in decoding order;
    the keyframes carry the parameter sets."""
    codec = av.CodecContext.create("libx265", "w")
    codec.width, codec.height, codec.pix_fmt = 128, 96, "yuv420p"
    codec.time_base = Fraction(1, 25)
    codec.options = {"x265-params": f"bframes={b_frames}:b-adapt=0:keyint=25:log-level=error"}
    packets = []
    rng = np.random.default_rng(7)
    for index in range(frames):
        image = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        packets += [(bytes(p), p.is_keyframe) for p in codec.encode(frame)]
    packets += [(bytes(p), p.is_keyframe) for p in codec.encode(None)]
    return packets


def h265_verdicts(packets: list[tuple[bytes, bool]], extradata: bytes | None) -> list[bool | None]:
    watch = BFrameWatch("hevc", extradata)
    seen = []
    for data, keyframe in packets:
        watch.feed(data, keyframe)
        seen.append(watch.verdict)
    return seen


def test_an_h265_b_frame_source_is_known_within_its_first_frames() -> None:
    seen = h265_verdicts(h265_packets(20, b_frames=3), None)
    assert seen[-1] is True
    assert seen.index(True) <= 4
    assert None in seen[: seen.index(True)]


def test_an_h265_source_without_b_frames_is_known_after_a_few_frames() -> None:
    seen = h265_verdicts(h265_packets(40, b_frames=0), None)
    assert seen[SETTLE_AFTER_FRAMES - 1] is None
    assert seen[-1] is False


def test_h265_frames_whose_pps_is_unknown_tell_nothing() -> None:
    """Slice types need the PPS: frames read without it are not counted as "no B"."""
    packets = h265_packets(40, b_frames=0)
    without_parameter_sets = [
        (b"".join(b"\x00\x00\x00\x01" + nal for nal in split_annexb(data)
                  if nal_type("hevc", nal) not in (32, 33, 34)), keyframe)
        for data, keyframe in packets
    ]  # fmt: skip
    assert h265_verdicts(without_parameter_sets, None)[-1] is None
    # The same frames with the parameter sets from the SDP (Annex B there) are judged.
    extradata = b"".join(
        b"\x00\x00\x00\x01" + nal
        for nal in split_annexb(packets[0][0])
        if nal_type("hevc", nal) in (32, 33, 34)
    )
    assert extradata
    assert h265_verdicts(without_parameter_sets, extradata)[-1] is False


INFO = StreamInfo("h264", 128, 96, Fraction(1, 90000), None, "High", 25.0, 0.0)


def test_the_stream_keeps_a_verdict_per_connection_and_wakes_waiters() -> None:
    stream = Stream("cam", ring_seconds=10, queue_packets=100)
    b_packets = h264_packets(20, b_frames=2)
    for data, keyframe in b_packets[:1]:
        stream.deliver(data, None, None, keyframe, INFO)
    assert stream.b_frames(INFO) is None

    def rest() -> None:
        for data, keyframe in b_packets[1:]:
            stream.deliver(data, None, None, keyframe, INFO)

    async def wait() -> bool | None:
        thread = threading.Thread(target=rest)
        thread.start()
        verdict = await stream.wait_b_frames_known(INFO, 5.0)
        thread.join()
        return verdict

    assert asyncio.run(wait()) is True
    # A reconnect is a new connection (a new info): its verdict starts afresh.
    reconnected = StreamInfo("h264", 128, 96, Fraction(1, 90000), None, "High", 25.0, 0.0)
    data, keyframe = b_packets[0]
    stream.deliver(data, None, None, keyframe, reconnected)
    assert stream.b_frames(reconnected) is None
    assert stream.b_frames(INFO) is None  # the old connection's verdict is gone with it


def test_waiting_for_a_verdict_that_never_comes_times_out() -> None:
    stream = Stream("cam", ring_seconds=10, queue_packets=100)
    data, keyframe = h264_packets(1, b_frames=0)[0]
    stream.deliver(data, None, None, keyframe, INFO)
    assert asyncio.run(stream.wait_b_frames_known(INFO, 0.2)) is None
