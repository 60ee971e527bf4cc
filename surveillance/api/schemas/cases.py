"""Request and response models of the case and evidence API.

Everything here is data: names and text are returned as given and never interpreted as
markup; evidence is identified by id or SHA-256, never by a path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, Field, computed_field

from surveillance.api.schemas.base import In, Out
from surveillance.cases.records import CaseDetail
from surveillance.cases.states import CaseState

# A bound for the schema only: the node's recording.max_export_s limits a clip's window
# (checked with it, services/footage_times.py), and beyond the ring a clip is recorded.
MAX_CLIP_S = 86_400.0
MAX_CLIP_POST_S = 120.0  # a request waits this long at most for post-event footage

CameraId = str
TagId = str


class CaseIn(In):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=20_000)
    place: str | None = Field(None, max_length=200)
    tags: list[TagId] = Field(default_factory=list, max_length=32, description="Zone tags")
    cameras: list[CameraId] = Field(default_factory=list, max_length=256)
    assignee: str | None = Field(None, max_length=128)


class CasePatch(In):
    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=20_000)
    place: str | None = Field(None, max_length=200)
    assignee: str | None = Field(None, max_length=128)
    tags: list[TagId] | None = Field(None, max_length=32)
    cameras: list[CameraId] | None = Field(None, max_length=256)


class TransitionIn(In):
    to: CaseState
    comment: str | None = Field(None, max_length=20_000)
    assignee: str | None = Field(None, max_length=64, description="Set when dispatching")


class CommentIn(In):
    text: str = Field(min_length=1, max_length=20_000)


class SnapshotIn(In):
    camera: CameraId
    at: datetime | None = Field(
        None, description="A past moment: the recorded picture shown then (default: now)"
    )


class ClipIn(In):
    camera: CameraId
    pre_s: float = Field(10.0, ge=0, le=MAX_CLIP_S, description="Seconds before `at`")
    post_s: float = Field(0.0, ge=0, le=MAX_CLIP_S, description="Seconds after `at`")
    at: datetime | None = Field(
        None, description="The moment (default: now), anywhere inside retention; zoned"
    )


class CaseOut(Out):
    number: str
    title: str
    description: str
    place: str | None
    reporter: str
    assignee: str | None
    state: CaseState
    tags: list[str]
    cameras: list[str]
    created_at: datetime
    updated_at: datetime
    custody_entries: int = Field(validation_alias=AliasChoices("custody_entries", "custody_seq"))
    custody_head: str

    @computed_field(description="Reported up to feedback: takes evidence")  # type: ignore[prop-decorator]
    @property
    def open(self) -> bool:
        return self.state not in (CaseState.CLOSED, CaseState.ARCHIVED)


class TimelineOut(Out):
    id: int
    at: datetime
    actor: str
    kind: str = Field(description="created, comment, state, evidence or edit")
    text: str
    from_state: str | None
    to_state: str | None
    item_id: int | None


class CaseDetailOut(CaseOut):
    timeline: list[TimelineOut]
    items: int

    @classmethod
    def of(cls, detail: CaseDetail) -> CaseDetailOut:
        case = CaseOut.model_validate(detail.case)
        return cls(**dict(case), timeline=list(detail.timeline), items=detail.item_count)


class CasePageOut(Out):
    total: int
    limit: int
    offset: int
    cases: list[CaseOut]


class ItemOut(Out):
    id: int
    case: str = Field(validation_alias=AliasChoices("case", "case_number"))
    kind: str = Field(description="snapshot or clip")
    sha256: str
    size: int
    media_type: str
    camera: str = Field(validation_alias=AliasChoices("camera", "camera_id"))
    platform: str | None = Field(validation_alias=AliasChoices("platform", "platform_id"))
    captured_at: datetime = Field(description="When its first packet reached the server")
    stream_time_s: float | None = Field(description="First frame's time on the camera's clock")
    attached_at: datetime
    attached_by: str
    codec: str
    width: int
    height: int
    duration_s: float | None
    frames: int
    note: str | None
    camera_clock_offset_s: float | None = Field(
        description="The camera's clock minus the server's, in seconds, when the item was made "
        "(ONVIF cameras; null: not known)"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def content_url(self) -> str:
        return f"/api/cases/{self.case}/items/{self.id}/content"


class CustodyOut(Out):
    seq: int
    at: datetime
    actor: str
    action: str
    item_id: int | None
    detail: dict[str, Any]
    prev_hash: str
    entry_hash: str
    signature: str | None = Field(
        default=None, description="The node key's Ed25519 signature of entry_hash, base64"
    )


class StatesOut(Out):
    states: list[str]
    transitions: dict[str, list[str]]
    open_states: list[str]


class NodeKeyOut(Out):
    algorithm: str
    fingerprint: str = Field(description="sha256: and the hex SHA-256 of the raw public key")
    public_key: str = Field(description="Raw Ed25519 public key, base64")
    node: str


class CaseErrorOut(Out):
    detail: str
    case: str | None = None
    state: str | None = None
    camera: str | None = None
