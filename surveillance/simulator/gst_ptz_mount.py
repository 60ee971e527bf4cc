"""The live picture of a simulated PTZ camera: a still scene, a view window, encoded live.

STANDALONE, like ``gst_server.py``, which imports it as a sibling module (it runs as a
script from this directory under Debian's system Python, with ``gi``); it imports nothing
from ``surveillance``. Where the window lies for a (pan, tilt, zoom) is decided on the
venv's side (``ptz_scene.view_crop``); this module only applies the borders it is given.

One pipeline per mount, shared by all its clients (a camera encodes once): the scene PNG
decoded once, repeated live by ``imagefreeze`` at the mount's frame rate, cut by
``videocrop`` (whose borders change at run time: the next frame shows the new view),
scaled to the mount's fixed size and encoded with a keyframe every second and no B-frames.
With no client watching, frames are dropped before the crop, so an unwatched mount costs
next to nothing.
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import tempfile
import threading
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstRtspServer, GstVideo  # noqa: E402

PAYLOAD_TYPE = 96
BORDERS = ("left", "right", "top", "bottom")
# Encoder bitrate in bits per pixel per second: ~0.9 Mbit/s at 640x360. A still view costs
# next to nothing whatever this is; it sets the keyframes' quality (and size), which must
# keep the picture close to the scene for the tests' comparisons.
BITS_PER_PIXEL_S = 4


def encoder(width: int, height: int, fps: int) -> str:
    """The launch fragment of the H.264 encoder: x264enc if installed, else openh264enc.

    Both: a keyframe every second (what a client joining waits for at most), no B-frames
    (openh264 makes Constrained Baseline only; x264enc is told), no look-ahead, so a new
    view leaves the encoder with the frame that shows it.
    """
    bitrate = BITS_PER_PIXEL_S * width * height
    if Gst.ElementFactory.find("x264enc") is not None:
        return (
            f"x264enc name=encoder tune=zerolatency speed-preset=ultrafast bframes=0 "
            f"key-int-max={fps} bitrate={max(1, bitrate // 1000)}"
        )
    if Gst.ElementFactory.find("openh264enc") is not None:
        # complexity=low, its fastest mode: a still or shifted scene needs no more. Encoding
        # takes ~2-4 ms a frame at 640x360: the encoder adds no lag worth a setting.
        return (
            f"openh264enc name=encoder gop-size={fps} bitrate={bitrate} "
            "rate-control=bitrate complexity=low"
        )
    raise RuntimeError(
        "a PTZ mount needs x264enc (gstreamer1.0-plugins-ugly) or openh264enc "
        "(gstreamer1.0-plugins-bad)"
    )


# The live mark: a light square wandering in a dark one at the view's bottom-right corner.
# Why: a real camera's picture always changes a little (sensor noise, a clock), and the
# service's video-quality diagnosis calls a picture that never changes frozen; a still
# scene alone raised "Picture frozen" for every simulated PTZ camera. The mark is small
# and the rest of the view stays still, so a still view still encodes to nearly nothing
# and picture_change (which leaves this corner out) still tells a moved view.
MARK_BOX = 1 / 6  # the dark square's side, of the picture's height
MARK_MARGIN = 1 / 36  # its distance from the picture's right and bottom edges
MARK_SIDE = 2 / 5  # the light square's side, of the dark one's
# Seconds for the light square to go across and back, horizontally and vertically: not
# multiples of each other or of whole seconds (keyframes are a second apart, and the
# diagnosis samples one every few seconds), so two pictures seconds apart differ.
MARK_PERIODS_S = (6.1, 8.9)


def live_mark_box(width: int, height: int) -> tuple[int, int, int]:
    """The dark square of the live mark: (left, top, side) in the picture's pixels."""
    side = max(8, round(height * MARK_BOX)) // 2 * 2
    margin = max(2, round(height * MARK_MARGIN)) // 2 * 2
    return width - side - margin, height - side - margin, side


def live_mark_launch(width: int, height: int) -> str:
    """Two overlays of one-colour pictures (mark_pictures): the dark square, fixed, and the
    light one, which move_mark moves for each frame."""
    dark, light = mark_pictures()
    left, top, side = live_mark_box(width, height)
    mark = max(2, round(side * MARK_SIDE))
    return (
        f"gdkpixbufoverlay location={dark} offset-x={left} offset-y={top} "
        f"overlay-width={side} overlay-height={side} "
        f"! gdkpixbufoverlay name=mark location={light} offset-x={left} offset-y={top} "
        f"overlay-width={mark} overlay-height={mark}"
    )


def move_mark(mark: Gst.Element, pts: int, size: tuple[int, int]) -> None:
    """Put the light square where it is at this frame's time (a path that never repeats)."""
    left, top, side = live_mark_box(*size)
    room = side - max(2, round(side * MARK_SIDE))
    seconds = pts / Gst.SECOND if pts != Gst.CLOCK_TIME_NONE else 0.0
    across, down = (0.5 - 0.5 * math.cos(2 * math.pi * seconds / p) for p in MARK_PERIODS_S)
    mark.set_property("offset-x", left + round(room * across))
    mark.set_property("offset-y", top + round(room * down))


_marks: tuple[str, str] | None = None
_marks_lock = threading.Lock()


def mark_pictures() -> tuple[str, str]:
    """The PNGs of the mark's two squares (dark, light), made once per server process in a
    directory that goes with it. gdkpixbufoverlay reads its picture from a file, and the
    server's Python has no GdkPixbuf bindings to hand it one in memory."""
    global _marks
    with _marks_lock:
        if _marks is None:
            folder = tempfile.mkdtemp(prefix="ptz-mark-")
            atexit.register(shutil.rmtree, folder, True)
            _marks = (
                _solid_png(os.path.join(folder, "dark.png"), 0x202020),
                _solid_png(os.path.join(folder, "light.png"), 0xE8E8E8),
            )
        return _marks


def _solid_png(path: str, rgb: int) -> str:
    pipeline = Gst.parse_launch(
        f"videotestsrc pattern=solid-color foreground-color={0xFF000000 | rgb} num-buffers=1 "
        "! video/x-raw,format=RGB,width=8,height=8 ! pngenc ! filesink name=file"
    )
    pipeline.get_by_name("file").set_property("location", path)
    pipeline.set_state(Gst.State.PLAYING)
    try:
        message = pipeline.get_bus().timed_pop_filtered(
            30 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR
        )
        if message is None or message.type != Gst.MessageType.EOS:
            raise RuntimeError(f"cannot make the PTZ live mark's picture {path}")
    finally:
        pipeline.set_state(Gst.State.NULL)
    return path


class PtzPicture:
    """One PTZ mount: its pipeline's launch line, its current view, the media playing it
    and the clients watching them."""

    def __init__(self, path: str, spec: dict[str, Any]) -> None:
        self.path = path
        self.scene = str(spec["scene"])
        self.scene_size = (int(spec["scene_width"]), int(spec["scene_height"]))
        self.size = (int(spec["width"]), int(spec["height"]))
        self.fps = int(spec["fps"])
        self._lock = threading.Lock()
        self._borders = check_borders(spec["crop"], self.scene_size)
        load_scene(self.scene)  # now: a scene that cannot be decoded fails the start
        self._media: list[GstRtspServer.RTSPMedia] = []
        # Per media once played: the clients playing it now (PyGObject wrappers, kept alive
        # here, so the same client is the same key).
        self._watchers: dict[GstRtspServer.RTSPMedia, set[GstRtspServer.RTSPClient]] = {}

    def launch(self) -> str:
        width, height = self.size
        return (
            # The scene, decoded once (load_scene), pushed once: imagefreeze repeats it.
            "( appsrc name=scene format=time max-buffers=0 max-bytes=0 max-time=0 "
            f"! imagefreeze is-live=true ! video/x-raw,framerate={self.fps}/1 "
            # Frames wait here for the encoder at most one deep, the oldest dropped: while
            # the server holds the stream (from DESCRIBE to PLAY) or the machine is slow,
            # frames are dropped, never queued to reach the client late; and each is cut
            # to the view as it leaves, right before it is encoded.
            "! queue leaky=downstream max-size-buffers=1 max-size-bytes=0 max-size-time=0 "
            "! videocrop name=crop ! videoscale add-borders=false "
            f"! video/x-raw,width={width},height={height},pixel-aspect-ratio=1/1 "
            f"! {live_mark_launch(width, height)} "
            f"! {encoder(width, height, self.fps)} ! h264parse "
            f"! rtph264pay name=pay0 pt={PAYLOAD_TYPE} config-interval=-1 )"
        )

    def configure(self, media: GstRtspServer.RTSPMedia) -> None:
        """A new media of this mount (the factory's media-configure, in a client's thread)."""
        element = media.get_element()
        caps, picture = load_scene(self.scene)
        source = element.get_by_name("scene")
        source.set_property("caps", caps)
        source.emit("push-buffer", picture)
        source.emit("end-of-stream")  # imagefreeze, having its picture, ignores it
        element.get_by_name("crop").get_static_pad("sink").add_probe(
            Gst.PadProbeType.BUFFER, self._on_frame, media
        )
        media.connect("unprepared", self._on_unprepared)
        with self._lock:
            self._media.append(media)
        self._apply(media)

    def _on_unprepared(self, media: GstRtspServer.RTSPMedia) -> None:
        with self._lock:
            self._media = [m for m in self._media if m is not media]
            self._watchers.pop(media, None)

    def _on_frame(
        self, _pad: Gst.Pad, info: Gst.PadProbeInfo, media: GstRtspServer.RTSPMedia
    ) -> Gst.PadProbeReturn:
        # The media stays prepared for the next client (see gst_server, _keep_prepared), so
        # with nobody watching its frames are dropped here, before they cost anything. Not
        # before its first PLAY: the server prepares a live media on the first buffer that
        # reaches its payloader.
        with self._lock:
            watchers = self._watchers.get(media)
            idle = watchers is not None and not watchers
        if idle:
            return Gst.PadProbeReturn.DROP
        move_mark(media.get_element().get_by_name("mark"), info.get_buffer().pts, self.size)
        return Gst.PadProbeReturn.OK

    def watch(self, media: GstRtspServer.RTSPMedia, client: GstRtspServer.RTSPClient) -> None:
        """A client plays the media (its play-request): frames flow, a keyframe first."""
        with self._lock:
            self._watchers.setdefault(media, set()).add(client)
        self.request_keyframe(media)

    def unwatch(self, client: GstRtspServer.RTSPClient) -> None:
        """The client tears down or goes away."""
        with self._lock:
            for watchers in self._watchers.values():
                watchers.discard(client)

    def media(self) -> list[GstRtspServer.RTSPMedia]:
        with self._lock:
            return list(self._media)

    def watching(self) -> int:
        """How many clients play the mount now (frames are encoded only while any do)."""
        with self._lock:
            return sum(len(watchers) for watchers in self._watchers.values())

    def borders(self) -> dict[str, int]:
        with self._lock:
            return dict(self._borders)

    def set_view(self, crop: Any) -> None:
        """New borders for every media of the mount now, and for those made later."""
        borders = check_borders(crop, self.scene_size)
        with self._lock:
            self._borders = borders
            media = list(self._media)
        for each in media:
            self._apply(each)

    def _apply(self, media: GstRtspServer.RTSPMedia) -> None:
        crop = media.get_element().get_by_name("crop")
        borders = self.borders()
        # videocrop takes new borders at once, thread-safe; its next frame renegotiates
        # the crop's size and videoscale brings it back to the mount's fixed size.
        for side in BORDERS:
            crop.set_property(side, borders[side])

    def request_keyframe(self, media: GstRtspServer.RTSPMedia) -> None:
        """Ask the encoder for a keyframe now: a client joining the shared pipeline starts
        at once instead of waiting for the next one (up to a second)."""
        event = GstVideo.video_event_new_upstream_force_key_unit(Gst.CLOCK_TIME_NONE, True, 0)
        media.get_element().get_by_name("encoder").send_event(event)


_scenes: dict[str, tuple[Gst.Caps, Gst.Buffer]] = {}
_scenes_lock = threading.Lock()


def load_scene(path: str) -> tuple[Gst.Caps, Gst.Buffer]:
    """A scene PNG decoded to I420, once per file for every mount and pipeline showing it:
    decoding a 2560x1440 PNG takes ~70 ms, and a fleet's forty mounts opened at once
    each paid that while their clients waited."""
    with _scenes_lock:
        if path not in _scenes:
            _scenes[path] = _decode_png(path)
        return _scenes[path]


def _decode_png(path: str) -> tuple[Gst.Caps, Gst.Buffer]:
    pipeline = Gst.parse_launch(
        # BT.601, as decoders assume for a stream that does not say (openh264 does not):
        # for a picture this size videoconvert would pick BT.709, and colours would shift.
        "filesrc name=file ! pngdec ! videoconvert "
        "! video/x-raw,format=I420,colorimetry=bt601 ! appsink name=sink sync=false"
    )
    pipeline.get_by_name("file").set_property("location", path)
    pipeline.set_state(Gst.State.PLAYING)
    try:
        sample = pipeline.get_by_name("sink").emit("try-pull-sample", 30 * Gst.SECOND)
        if sample is None:
            raise RuntimeError(f"cannot decode the PTZ scene {path}")
        buffer = sample.get_buffer()
        buffer.pts = buffer.dts = 0
        return sample.get_caps(), buffer
    finally:
        pipeline.set_state(Gst.State.NULL)


def check_borders(crop: Any, scene_size: tuple[int, int]) -> dict[str, int]:
    """The four borders, checked: whole numbers, even, leaving a window inside the scene."""
    if not isinstance(crop, dict) or set(crop) != set(BORDERS):
        raise ValueError(f"a crop has exactly the borders {', '.join(BORDERS)}")
    borders = {side: crop[side] for side in BORDERS}
    for side, value in borders.items():
        if type(value) is not int or value < 0 or value % 2:
            raise ValueError(f"crop {side} {value!r}: an even number of pixels, 0 or more")
    width = scene_size[0] - borders["left"] - borders["right"]
    height = scene_size[1] - borders["top"] - borders["bottom"]
    if width < 2 or height < 2:
        raise ValueError(f"crop {borders} leaves no picture of the {scene_size} scene")
    return borders
