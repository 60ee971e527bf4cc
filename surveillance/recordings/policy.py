"""Which cameras record, which stream, for how long: one policy per camera, field by field.

A camera's own ``recording`` wins, then its platform's, then its tags', then
``recording.default``; each field (mode, stream, retain_days) is resolved on its own, so a
platform can set the retention while a tag turns recording on. When several of a camera's
tags set the same field, the one that keeps more footage wins: continuous over off, main
over sub, the longest retain_days. A camera that is in two zones is recorded as the more
demanding zone asks, whatever order its tags are listed in.

Cameras added while the node runs (catalog.py's runtime cameras, GB/T 28181 channels) are
resolved the same way from what they carry (``recording``, ``tags``) and their platform's
``recording``, a ``gb28181.platforms`` entry's included.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from surveillance.config.models import (
    AppConfig,
    RecordingConfig,
    RecordingMode,
    RecordingPolicyConfig,
    RecordingStream,
)

DAY_S = 86400.0
T = TypeVar("T")

# Among tags, the value that keeps more footage: higher ranks win.
_MODE_RANK = {RecordingMode.OFF: 0, RecordingMode.CONTINUOUS: 1}
_STREAM_RANK = {RecordingStream.SUB: 0, RecordingStream.MAIN: 1}


@dataclass(frozen=True)
class CameraRecordingPolicy:
    mode: RecordingMode
    stream: RecordingStream
    retain_days: float

    @property
    def records(self) -> bool:
        return self.mode is RecordingMode.CONTINUOUS

    @property
    def retain_s(self) -> float:
        return self.retain_days * DAY_S


class RecordedCamera(Protocol):
    """What a policy is made of: a configured camera (``CameraConfig``) or a catalog one."""

    @property
    def tags(self) -> Sequence[str]: ...

    @property
    def recording(self) -> RecordingPolicyConfig | None: ...


def policy_for(
    recording: RecordingConfig,
    camera: RecordedCamera,
    platform: RecordingPolicyConfig | None = None,
) -> CameraRecordingPolicy:
    """``camera``'s policy; ``platform`` is the ``recording`` of the camera's platform."""
    tags = [recording.tags[tag] for tag in camera.tags if tag in recording.tags]
    levels = [p for p in (camera.recording, platform) if p is not None]
    mode = _first(p.mode for p in levels)
    if mode is None:
        mode = max((p.mode for p in tags if p.mode), key=_MODE_RANK.__getitem__, default=None)
    stream = _first(p.stream for p in levels)
    if stream is None:
        found = (p.stream for p in tags if p.stream)
        stream = max(found, key=_STREAM_RANK.__getitem__, default=None)
    retain_days = _first(p.retain_days for p in levels)
    if retain_days is None:
        retain_days = max((p.retain_days for p in tags if p.retain_days), default=None)
    default = recording.default
    return CameraRecordingPolicy(
        mode=mode or default.mode,
        stream=stream or default.stream,
        retain_days=retain_days or default.retain_days,
    )


def platform_recordings(config: AppConfig) -> dict[str, RecordingPolicyConfig | None]:
    """Each platform's ``recording``, by platform id: the RTSP platforms' and the GB/T 28181
    platforms' (their ids are one namespace, the loader checks)."""
    found: dict[str, RecordingPolicyConfig | None] = {p.id: p.recording for p in config.platforms}
    found.update((p.id, p.recording) for p in config.gb28181.platforms)
    return found


def policies(config: AppConfig) -> dict[str, CameraRecordingPolicy]:
    """Every configured camera's policy, by camera id."""
    platforms = platform_recordings(config)
    return {
        camera.id: policy_for(config.recording, camera, platforms.get(camera.platform))
        for camera in config.cameras
    }


def _first(values: Iterable[T | None]) -> T | None:
    return next((value for value in values if value is not None), None)
