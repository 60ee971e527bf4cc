"""The simulated cameras the phased benchmarks measure: their names and their mounts."""

from __future__ import annotations

from collections.abc import Sequence

from surveillance.simulator import ClipSpec, MountSpec


def camera_ids(count: int) -> list[str]:
    return [f"cam{i}" for i in range(1, count + 1)]


def staggered_mounts(cameras: Sequence[str], clip: ClipSpec) -> list[MountSpec]:
    """One mount per camera on the same clip, each starting at the next GOP of it, in turn.

    This varies the picture between cameras, not the keyframe timing: that follows each
    mount's first client, so keyframes of clients that connect together still coincide.
    """
    gops = max(1, round(clip.seconds / clip.gop_s))
    return [
        MountSpec(camera, clip, start_offset_s=(i % gops) * clip.gop_s)
        for i, camera in enumerate(cameras)
    ]
