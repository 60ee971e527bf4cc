"""Generate camera-like test clips with PyAV, and read back the frame number drawn into them.

A clip shows a scene (simulator/scenes.py): by default ``pan``, a moving, textured picture
(so the encoder has real work and the bitrate is realistic, unlike a flat test pattern), or
one of the faults a camera shows. Most scenes carry the frame number, drawn as seven-segment
digits in the top-left corner. The digits are big, axis-aligned blocks of black and white, so they
survive lossy compression and :func:`read_frame_number` can recover the number from any
decoded frame without OCR or OpenCV (which is not guaranteed to be installed).

Clips are cached by :meth:`ClipSpec.key`: a test or a demo asks for a spec and gets the same
file every time, written once, atomically.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np
import numpy.typing as npt
from av.video.stream import VideoStream

from surveillance.simulator.scenes import SCENES, SceneGeometry, pictures

# Bump when the picture or the encoder settings change, so cached clips are regenerated.
GENERATOR_VERSION = 2

DIGITS = 6  # frame numbers up to 999999 (11 hours at 25 fps)

Codec = Literal["h264", "h265"]
Profile = Literal["baseline", "main", "high"]
U8Array = npt.NDArray[np.uint8]

# Segments a..g of a seven-segment digit, as (row, col) cells of a 5-wide, 9-high grid.
_SEGMENT_CELLS: tuple[tuple[tuple[int, int], ...], ...] = (
    ((0, 1), (0, 2), (0, 3)),  # a: top
    ((1, 4), (2, 4), (3, 4)),  # b: top right
    ((5, 4), (6, 4), (7, 4)),  # c: bottom right
    ((8, 1), (8, 2), (8, 3)),  # d: bottom
    ((5, 0), (6, 0), (7, 0)),  # e: bottom left
    ((1, 0), (2, 0), (3, 0)),  # f: top left
    ((4, 1), (4, 2), (4, 3)),  # g: middle
)
_DIGIT_SEGMENTS: tuple[str, ...] = (
    "abcdef",  # 0
    "bc",  # 1
    "abdeg",  # 2
    "abcdg",  # 3
    "bcfg",  # 4
    "acdfg",  # 5
    "acdefg",  # 6
    "abc",  # 7
    "abcdefg",  # 8
    "abcdfg",  # 9
)
_PATTERN_TO_DIGIT = {
    tuple(s in segments for s in "abcdefg"): digit for digit, segments in enumerate(_DIGIT_SEGMENTS)
}
_CELL_COLS, _CELL_ROWS, _DIGIT_GAP = 5, 9, 2  # in units; the gap separates adjacent digits


class ClipError(RuntimeError):
    """A clip cannot be generated here (missing encoder, invalid spec)."""


@dataclass(frozen=True)
class ClipSpec:
    """What a generated clip looks like to a client: codec, profile, size, rate, GOP."""

    codec: Codec = "h264"
    profile: Profile = "high"  # H.264 only; H.265 clips are Main profile
    width: int = 1280
    height: int = 720
    fps: int = 25
    bitrate_kbps: int = 2000
    gop_s: float = 2.0
    bframes: int = 0
    seconds: float = 10.0
    scene: str = "pan"  # what the picture shows: a name in simulator/scenes.py SCENES
    event_at_s: float = 0.0  # when a scene's event (a fault, an intruder) begins, into the clip

    def __post_init__(self) -> None:
        if self.scene not in SCENES:
            raise ClipError(f"unknown scene {self.scene!r}; known: {', '.join(SCENES)}")
        if not 0 <= self.event_at_s <= self.seconds:
            raise ClipError("event_at_s must be within the clip (0..seconds)")
        if self.width % 2 or self.height % 2 or self.width < 64 or self.height < 64:
            raise ClipError(
                f"width and height must be even and >= 64, got {self.width}x{self.height}"
            )
        if self.fps <= 0 or self.bitrate_kbps <= 0 or self.gop_s <= 0 or self.seconds <= 0:
            raise ClipError("fps, bitrate_kbps, gop_s and seconds must be positive")
        if self.bframes < 0:
            raise ClipError("bframes must be >= 0")

    @property
    def gop_frames(self) -> int:
        return max(1, round(self.fps * self.gop_s))

    @property
    def frame_count(self) -> int:
        return max(1, round(self.fps * self.seconds))

    @property
    def effective_bframes(self) -> int:
        # Constrained Baseline has no B-frames at all; asking for them is ignored, not an error,
        # so a demo can set bframes once for a whole set of cameras.
        return 0 if self.codec == "h264" and self.profile == "baseline" else self.bframes

    def key(self) -> str:
        """A stable, file-name-safe name for this spec (also encodes the generator version)."""
        profile = self.profile if self.codec == "h264" else "main"
        gop = f"{self.gop_s:g}".replace(".", "p")
        seconds = f"{self.seconds:g}".replace(".", "p")
        # The scene only when it is not the plain pan, so clips cached before scenes existed
        # keep their names.
        scene = ""
        if self.scene != "pan":
            scene = f"-{self.scene}" + f"-at{self.event_at_s:g}s".replace(".", "p")
        return (
            f"{self.codec}-{profile}-{self.width}x{self.height}-{self.fps}fps-"
            f"{self.bitrate_kbps}k-gop{gop}s-bf{self.effective_bframes}-{seconds}s{scene}"
            f"-v{GENERATOR_VERSION}"
        )


def ensure_clip(spec: ClipSpec, cache_dir: Path) -> Path:
    """Return ``<cache_dir>/<spec.key()>.mp4``, generating it first if it is not there yet.

    The file is written under a temporary name and renamed into place, so a crash or a
    concurrent generator never leaves a half-written clip under the final name.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{spec.key()}.mp4"
    if path.exists():
        return path
    tmp = cache_dir / f".{spec.key()}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp.mp4"
    try:
        _encode(spec, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _encoder_options(spec: ClipSpec) -> tuple[str, dict[str, str]]:
    gop = spec.gop_frames
    bframes = spec.effective_bframes
    kbps = spec.bitrate_kbps
    if spec.codec == "h264":
        # veryfast, not ultrafast: ultrafast turns CABAC and 8x8 transforms off, and x264 then
        # signals Constrained Baseline whatever profile was asked for.
        return "libx264", {
            "preset": "veryfast",
            "profile": spec.profile,
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",  # no scene-cut keyframes: a fixed GOP like a real camera
            "bf": str(bframes),
            "maxrate": f"{kbps}k",
            "bufsize": f"{kbps}k",
            "x264-params": "open-gop=0",
        }
    if "libx265" not in av.codecs_available:
        raise ClipError("this PyAV build has no libx265 encoder; H.265 clips cannot be generated")
    params = [
        f"keyint={gop}",
        f"min-keyint={gop}",
        "scenecut=0",
        "open-gop=0",
        f"bframes={bframes}",
        f"vbv-maxrate={kbps}",
        f"vbv-bufsize={kbps}",
        "log-level=error",
    ]
    return "libx265", {"preset": "ultrafast", "x265-params": ":".join(params)}


def _encode(spec: ClipSpec, path: Path) -> None:
    codec_name, options = _encoder_options(spec)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(codec_name, rate=spec.fps, options=options)
        assert isinstance(stream, VideoStream)
        stream.width = spec.width
        stream.height = spec.height
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = spec.bitrate_kbps * 1000
        # Frame threads, not PyAV's default slice threads: slice threading splits every picture
        # into one slice per thread, and RTSP clients then see several packets per frame.
        stream.codec_context.thread_type = "FRAME"
        time_base = Fraction(1, spec.fps)
        geometry = SceneGeometry(
            spec.width, spec.height, spec.frame_count, spec.fps, event_at_s=spec.event_at_s
        )
        for index, (yuv, number) in enumerate(pictures(spec.scene, geometry)):
            if number is not None:
                draw_frame_number(yuv, spec.height, number)
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = index
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _unit(height: int) -> int:
    """Size in pixels of one cell of a digit; whole 16-pixel-ish blocks survive compression."""
    return max(3, height // 90)


def _digit_origin(height: int, position: int) -> tuple[int, int]:
    u = _unit(height)
    return 2 * u, 2 * u + position * (_CELL_COLS + _DIGIT_GAP) * u


def _box(height: int) -> tuple[int, int]:
    u = _unit(height)
    return (_CELL_ROWS + 4) * u, (DIGITS * (_CELL_COLS + _DIGIT_GAP) - _DIGIT_GAP + 4) * u


def draw_frame_number(yuv: U8Array, height: int, number: int) -> None:
    """Draw ``number`` (mod 10**DIGITS) as white digits on black into a planar YUV 4:2:0 frame."""
    u = _unit(height)
    box_h, box_w = _box(height)
    width = yuv.shape[1]
    if box_w > width or box_h > height:
        raise ClipError(f"a {width}x{height} picture is too small for the frame counter")
    yuv[:box_h, :box_w] = 16
    # Neutral chroma under the box, so the digits are pure luma whatever the colour conversion.
    chroma = yuv[height:].reshape(2, height // 2, width // 2)
    chroma[:, : (box_h + 1) // 2, : (box_w + 1) // 2] = 128
    text = f"{number % 10**DIGITS:0{DIGITS}d}"
    for position, char in enumerate(text):
        top, left = _digit_origin(height, position)
        for segment in _DIGIT_SEGMENTS[int(char)]:
            for row, col in _SEGMENT_CELLS["abcdefg".index(segment)]:
                y, x = top + row * u, left + col * u
                yuv[y : y + u, x : x + u] = 235


def read_frame_number(bgr: npt.NDArray[Any]) -> int | None:
    """The frame number drawn by this module into a decoded BGR picture, or None if unreadable."""
    if bgr.ndim != 3 or bgr.shape[2] != 3:
        return None
    height = bgr.shape[0]
    u = _unit(height)
    box_h, box_w = _box(height)
    if box_h > height or box_w > bgr.shape[1]:
        return None
    gray = bgr[:box_h, :box_w].mean(axis=2)
    inset = max(1, u // 4)  # sample cell centres only: edges are blurred by the codec
    digits: list[str] = []
    for position in range(DIGITS):
        top, left = _digit_origin(height, position)
        lit: list[bool] = []
        for cells in _SEGMENT_CELLS:
            row, col = cells[1]
            y, x = top + row * u, left + col * u
            lit.append(
                float(gray[y + inset : y + u - inset, x + inset : x + u - inset].mean()) > 128
            )
        digit = _PATTERN_TO_DIGIT.get(tuple(lit))
        if digit is None:
            return None
        digits.append(str(digit))
    return int("".join(digits))
