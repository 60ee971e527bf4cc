"""A varied, realistic set of simulated cameras for demos: what a real town's platforms serve."""

from __future__ import annotations

from dataclasses import replace

from surveillance.simulator.clips import ClipSpec
from surveillance.simulator.server import MountSpec

CLIP_SECONDS = 10.0  # every demo clip loops after this long
GOP_S = 2.0

# Each distinct spec is encoded once (a few seconds each on 2 cores); cameras share them and
# differ by start offset, so the whole demo set generates in well under a minute.
MAIN_STREAM = ClipSpec(profile="high", bitrate_kbps=2000, seconds=CLIP_SECONDS, gop_s=GOP_S)
SUB_STREAM = ClipSpec(
    profile="main", width=640, height=360, bitrate_kbps=512, seconds=CLIP_SECONDS, gop_s=GOP_S
)
BASELINE = ClipSpec(profile="baseline", bitrate_kbps=2000, seconds=CLIP_SECONDS, gop_s=GOP_S)
B_FRAMES = ClipSpec(profile="main", bframes=2, bitrate_kbps=2000, seconds=CLIP_SECONDS, gop_s=GOP_S)
HEVC = ClipSpec(codec="h265", bitrate_kbps=1500, seconds=CLIP_SECONDS, gop_s=GOP_S)
# A camera whose picture froze, so the demo's wall shows a video-quality flag.
FROZEN = replace(MAIN_STREAM, scene="frozen")
FROZEN_SUB = replace(SUB_STREAM, scene="frozen")
FROZEN_CAMERA = 6  # camera number modulo 10

# Camera number modulo 10 -> (clip, parameter sets only in the SDP); the rest are MAIN_STREAM.
_QUIRKS: dict[int, tuple[ClipSpec, bool]] = {
    2: (BASELINE, False),
    3: (B_FRAMES, False),
    4: (HEVC, False),
    5: (MAIN_STREAM, True),
    FROZEN_CAMERA: (FROZEN, False),
}


def demo_mounts(count: int, *, shared: bool = False) -> list[MountSpec]:
    """``count`` cameras ``cam1..camN``, each with a 360p sub-stream ``camN-sub``.

    Most main streams are 720p High H.264 at 2 Mbit/s; camera 2 is Constrained Baseline,
    camera 3 has B-frames, camera 4 is H.265 and camera 5 sends its parameter sets only in
    the SDP, the quirks that need a different delivery path; camera 6's picture is frozen
    (main and sub), for video-quality diagnosis to flag; the pattern repeats every ten
    cameras. ``shared`` serves them as shared mounts: cheaper for many cameras, but no
    camera can then be stalled alone.
    """
    mounts: list[MountSpec] = []
    for number in range(1, count + 1):
        clip, sdp_only = _QUIRKS.get(number % 10, (MAIN_STREAM, False))
        # Different start points so that cameras do not all begin on the same picture.
        offset = ((number - 1) * GOP_S) % CLIP_SECONDS
        path = f"cam{number}"
        mounts.append(
            MountSpec(path, clip, params_in_sdp_only=sdp_only, start_offset_s=offset, shared=shared)
        )
        sub = FROZEN_SUB if number % 10 == FROZEN_CAMERA else SUB_STREAM
        mounts.append(MountSpec(f"{path}-sub", sub, start_offset_s=offset, shared=shared))
    return mounts
