"""Request and response models of recorded footage: spans, gaps, recording state, holds,
and clips of several cameras at once for a case."""

from __future__ import annotations

from datetime import datetime

from pydantic import AliasChoices, Field

from surveillance.api.schemas.base import In, Out, UtcTime
from surveillance.api.schemas.cameras import RecordingStateOut
from surveillance.api.schemas.cases import MAX_CLIP_S, CaseErrorOut, ItemOut

CameraId = str
MAX_CLIP_CAMERAS = 16  # cameras in one several-camera clip request (a crossroads' worth)


class SpanOut(Out):
    start: UtcTime
    end: UtcTime
    stream: str


class GapOut(Out):
    start: UtcTime
    end: UtcTime | None = Field(description="null while the gap goes on")
    reason: str
    removed_at: UtcTime | None = Field(
        default=None,
        description="set when the window was recorded and then removed (retention, disk "
        "budget): the newest removal in it; null for a gap nothing was recorded in",
    )


class RecordingsOut(Out):
    camera_id: str
    from_: UtcTime = Field(serialization_alias="from", validation_alias="from_")
    to: UtcTime
    spans: list[SpanOut] = Field(description="Recorded footage; touching segments merged")
    gaps: list[GapOut]
    recording: RecordingStateOut | None = Field(description="null when the node records nothing")


class HoldIn(In):
    camera_id: CameraId = Field(validation_alias=AliasChoices("camera_id", "camera"))
    start: datetime = Field(description="ISO 8601 with a time zone")
    end: datetime = Field(description="ISO 8601 with a time zone; may lie ahead")


class HoldOut(Out):
    id: int
    case: str = Field(validation_alias=AliasChoices("case", "case_number"))
    camera_id: str
    start: UtcTime = Field(validation_alias=AliasChoices("start", "start_at"))
    end: UtcTime = Field(validation_alias=AliasChoices("end", "end_at"))
    created_by: str
    created_at: UtcTime
    released_at: UtcTime | None
    released_by: str | None


class ClipsIn(In):
    """The same window of several cameras; each camera's clip is attached on its own."""

    camera_ids: list[CameraId] = Field(min_length=1, max_length=MAX_CLIP_CAMERAS)
    at: datetime | None = Field(None, description="The moment (default: now); timezone needed")
    pre_s: float = Field(10.0, ge=0, le=MAX_CLIP_S, description="Seconds before `at`")
    post_s: float = Field(0.0, ge=0, le=MAX_CLIP_S, description="Seconds after `at`")


class ClipResultOut(Out):
    camera: str
    status: int = Field(description="201 when attached, else the error's status")
    item: ItemOut | None
    error: CaseErrorOut | None


class ClipsOut(Out):
    case: str
    results: list[ClipResultOut] = Field(description="One per camera, in the order asked")
