"""Whether a stream carries B-frames, judged from what it has sent since it connected.

WebRTC cannot reorder frames, so a B-frame source must take another browser path
(docs/architecture.md, "Browser delivery facts"). Looking at a sample of the ring when a
viewer asks is a lucky draw: right after a reconnect the ring may hold a keyframe and
nothing else, and a B-frame camera would pass as one without. So the ingest thread looks
at each connection's first frames itself: one B slice settles it (yes), and
``SETTLE_AFTER_FRAMES`` frames after the first keyframe without one settle it (no). Until
then the answer is "not known yet", and the delivery choice plays safe.

The cost is bounded: a slice-header read of at most ``SETTLE_AFTER_FRAMES`` packets per
connection, none after.
"""

from __future__ import annotations

from surveillance.media.bitstream import packet_has_b_slices

# Frames after the first keyframe without a B slice before a source counts as without
# B-frames. Encoders that use B-frames put one within the first few frames after every
# keyframe (x264 and camera SoCs use 1-3 consecutive B-frames); 12 is half a second at 25 fps.
SETTLE_AFTER_FRAMES = 12


class BFrameWatch:
    """The B-frame verdict of one connection (one :class:`StreamInfo`)."""

    def __init__(self, codec: str) -> None:
        self._codec = codec
        self._frames_after_keyframe: int | None = None  # None: no keyframe seen yet
        self.verdict: bool | None = None if codec == "h264" else False

    def feed(self, data: bytes, keyframe: bool) -> None:
        if self.verdict is not None:
            return
        if packet_has_b_slices(self._codec, data):
            self.verdict = True
            return
        if keyframe and self._frames_after_keyframe is None:
            self._frames_after_keyframe = 0
        elif self._frames_after_keyframe is not None:
            self._frames_after_keyframe += 1
            if self._frames_after_keyframe >= SETTLE_AFTER_FRAMES:
                self.verdict = False
