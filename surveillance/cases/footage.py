"""Footage as the case layer sees it: bytes plus facts, from a source it does not know.

The services layer implements :class:`FootageSource` with live snapshots and the packet
ring, or with recordings. Keeping it an interface keeps video code out of this
package and lets tests of the case workflow run without cameras.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class ItemKind(StrEnum):
    SNAPSHOT = "snapshot"
    CLIP = "clip"


@dataclass(frozen=True, kw_only=True)
class Capture:
    """What is known of footage besides its bytes. An evidence item keeps every one of
    these under the same name (:class:`~.records.ItemRecord` extends this class, the
    ``evidence_items`` table has these columns, the bundle manifest writes them), so a new
    fact is declared here, in the model and in a migration."""

    media_type: str  # image/jpeg, video/mp4
    camera_id: str
    platform_id: str | None
    captured_at: datetime  # when its first packet reached the server (server clock, UTC)
    stream_time_s: float | None  # the first frame's timestamp on the camera's media clock
    codec: str  # of the stored bytes: jpeg, h264, hevc
    width: int
    height: int
    duration_s: float | None
    frames: int
    note: str | None = None  # e.g. why a clip is shorter than asked
    # The camera's clock minus the server's when the item was made (its ONVIF device
    # clock, last read; None: unknown, or not an ONVIF camera): what a time burnt into the
    # picture is off by.
    camera_clock_offset_s: float | None = None


@dataclass(frozen=True, kw_only=True)
class Footage(Capture):
    kind: ItemKind
    data: bytes


class FootageSource(Protocol):
    async def snapshot(self, camera_id: str, at: datetime | None = None) -> Footage:
        """The camera's picture now, or the recorded one shown at ``at``. Raises
        CameraNotFound, CameraUnavailable, FootageUnavailable."""
        ...

    async def clip(
        self, camera_id: str, at: datetime | None, pre_s: float, post_s: float
    ) -> Footage:
        """From ``at - pre_s`` to ``at + post_s`` (``at`` defaults to now), waiting for
        the post-event seconds if needed. Raises CameraNotFound, CameraUnavailable,
        FootageUnavailable."""
        ...
