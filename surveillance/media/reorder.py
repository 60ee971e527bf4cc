"""Whether a stream carries B-frames, judged from what it has sent since it connected.

WebRTC cannot reorder frames, so a B-frame source must take another browser path
(docs/architecture.md, "Browser delivery facts"). Looking at a sample of the ring when a
viewer asks is a lucky draw: right after a reconnect the ring may hold a keyframe and
nothing else, and a B-frame camera would pass as one without. So the ingest thread looks
at each connection's first frames itself: one B slice settles it (yes), and
``SETTLE_AFTER_FRAMES`` frames after the first keyframe without one settle it (no). Until
then the answer is "not known yet", and the delivery choice plays safe.

H.265 is read from the first slice segment of each picture (media/bitstream.py says why
only that one): encoders (x265, camera SoCs) code a picture's slices with one type, so a
picture whose first segment is not B is taken as without B slices. A frame whose type
cannot be read (its PPS not seen yet) tells nothing and is not counted.

The cost is bounded: a slice-header read of at most ``SETTLE_AFTER_FRAMES`` packets per
connection, none after.
"""

from __future__ import annotations

from surveillance.media.bitstream import (
    H265_B_SLICE,
    H265_PPS,
    h265_pps_extra_slice_header_bits,
    h265_slice_type,
    nal_type,
    packet_has_b_slices,
    parameter_sets_annexb,
    split_annexb,
)

# Frames after the first keyframe without a B slice before a source counts as without
# B-frames. Encoders that use B-frames put one within the first few frames after every
# keyframe (x264 and camera SoCs use 1-3 consecutive B-frames); 12 is half a second at 25 fps.
SETTLE_AFTER_FRAMES = 12


class BFrameWatch:
    """The B-frame verdict of one connection (one :class:`StreamInfo`)."""

    def __init__(self, codec: str, extradata: bytes | None = None) -> None:
        """``extradata``: the connection's parameter sets from the SDP, if any (H.265
        slice headers need their PPS)."""
        self._codec = codec
        self._frames_after_keyframe: int | None = None  # None: no keyframe seen yet
        self.verdict: bool | None = None if codec in ("h264", "hevc") else False
        # H.265: num_extra_slice_header_bits of each PPS seen, by pps id.
        self._extra_bits_by_pps: dict[int, int] = {}
        if codec == "hevc":
            self._has_b_slices(parameter_sets_annexb(codec, extradata))

    def feed(self, data: bytes, keyframe: bool) -> None:
        if self.verdict is not None:
            return
        has_b = self._has_b_slices(data)
        if has_b:
            self.verdict = True
            return
        if has_b is None:
            return  # a frame whose slice type could not be read tells nothing
        if keyframe and self._frames_after_keyframe is None:
            self._frames_after_keyframe = 0
        elif self._frames_after_keyframe is not None:
            self._frames_after_keyframe += 1
            if self._frames_after_keyframe >= SETTLE_AFTER_FRAMES:
                self.verdict = False

    def _has_b_slices(self, data: bytes) -> bool | None:
        """Whether the packet has B slices; None: no slice type of it could be read."""
        if self._codec != "hevc":
            return packet_has_b_slices(self._codec, data)
        judged = False
        for nal in split_annexb(data):
            if nal_type("hevc", nal) == H265_PPS:
                pps_id, extra_bits = h265_pps_extra_slice_header_bits(nal)
                self._extra_bits_by_pps[pps_id] = extra_bits
                continue
            slice_type = h265_slice_type(nal, self._extra_bits_by_pps)
            if slice_type == H265_B_SLICE:
                return True
            judged = judged or slice_type is not None
        return False if judged else None
