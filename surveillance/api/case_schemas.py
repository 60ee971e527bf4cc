"""Request and response models of the case and evidence API.

Everything here is data: names and text are returned as given and never interpreted as
markup; evidence is identified by id or SHA-256, never by a path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from surveillance.cases.records import (
    CaseDetail,
    CaseRecord,
    CustodyRecord,
    ItemRecord,
    TimelineRecord,
)
from surveillance.cases.states import CaseState

MAX_CLIP_PRE_S = 600.0  # cannot exceed what the ring may hold (ingest.ring_seconds <= 600)
MAX_CLIP_POST_S = 120.0  # a request waits this long at most for post-event footage

CameraId = str
TagId = str


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseIn(_In):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=20_000)
    place: str | None = Field(None, max_length=200)
    tags: list[TagId] = Field(default_factory=list, max_length=32, description="Zone tags")
    cameras: list[CameraId] = Field(default_factory=list, max_length=256)
    assignee: str | None = Field(None, max_length=128)


class CasePatch(_In):
    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=20_000)
    place: str | None = Field(None, max_length=200)
    assignee: str | None = Field(None, max_length=128)
    tags: list[TagId] | None = Field(None, max_length=32)
    cameras: list[CameraId] | None = Field(None, max_length=256)


class TransitionIn(_In):
    to: CaseState
    comment: str | None = Field(None, max_length=20_000)
    assignee: str | None = Field(None, max_length=64, description="Set when dispatching")


class CommentIn(_In):
    text: str = Field(min_length=1, max_length=20_000)


class SnapshotIn(_In):
    camera: CameraId


class ClipIn(_In):
    camera: CameraId
    pre_s: float = Field(10.0, ge=0, le=MAX_CLIP_PRE_S, description="Seconds before `at`")
    post_s: float = Field(0.0, ge=0, le=MAX_CLIP_POST_S, description="Seconds after `at`")
    at: datetime | None = Field(None, description="The moment (default: now); timezone needed")


class CaseOut(BaseModel):
    number: str
    title: str
    description: str
    place: str | None
    reporter: str
    assignee: str | None
    state: CaseState
    open: bool = Field(description="Reported up to feedback: takes evidence")
    tags: list[str]
    cameras: list[str]
    created_at: datetime
    updated_at: datetime
    custody_entries: int
    custody_head: str

    @classmethod
    def of(cls, case: CaseRecord) -> CaseOut:
        return cls(
            number=case.number,
            title=case.title,
            description=case.description,
            place=case.place,
            reporter=case.reporter,
            assignee=case.assignee,
            state=case.state,
            open=case.state not in (CaseState.CLOSED, CaseState.ARCHIVED),
            tags=list(case.tags),
            cameras=list(case.cameras),
            created_at=case.created_at,
            updated_at=case.updated_at,
            custody_entries=case.custody_seq,
            custody_head=case.custody_head,
        )


class TimelineOut(BaseModel):
    id: int
    at: datetime
    actor: str
    kind: str = Field(description="created, comment, state, evidence or edit")
    text: str
    from_state: str | None
    to_state: str | None
    item_id: int | None

    @classmethod
    def of(cls, entry: TimelineRecord) -> TimelineOut:
        return cls(**entry.__dict__)


class CaseDetailOut(CaseOut):
    timeline: list[TimelineOut]
    items: int

    @classmethod
    def of_detail(cls, detail: CaseDetail) -> CaseDetailOut:
        base = CaseOut.of(detail.case).model_dump()
        return cls(
            **base,
            timeline=[TimelineOut.of(t) for t in detail.timeline],
            items=detail.item_count,
        )


class CasePageOut(BaseModel):
    total: int
    limit: int
    offset: int
    cases: list[CaseOut]


class ItemOut(BaseModel):
    id: int
    case: str
    kind: str = Field(description="snapshot or clip")
    sha256: str
    size: int
    media_type: str
    camera: str
    platform: str | None
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
    content_url: str

    @classmethod
    def of(cls, item: ItemRecord) -> ItemOut:
        return cls(
            id=item.id,
            case=item.case_number,
            kind=item.kind,
            sha256=item.sha256,
            size=item.size,
            media_type=item.media_type,
            camera=item.camera_id,
            platform=item.platform_id,
            captured_at=item.captured_at,
            stream_time_s=item.stream_time_s,
            attached_at=item.attached_at,
            attached_by=item.attached_by,
            codec=item.codec,
            width=item.width,
            height=item.height,
            duration_s=item.duration_s,
            frames=item.frames,
            note=item.note,
            content_url=f"/api/cases/{item.case_number}/items/{item.id}/content",
        )


class CustodyOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    item_id: int | None
    detail: dict[str, Any]
    prev_hash: str
    entry_hash: str

    @classmethod
    def of(cls, entry: CustodyRecord) -> CustodyOut:
        return cls(**entry.__dict__)


class StatesOut(BaseModel):
    states: list[str]
    transitions: dict[str, list[str]]
    open_states: list[str]


class NodeKeyOut(BaseModel):
    algorithm: str
    fingerprint: str = Field(description="sha256: and the hex SHA-256 of the raw public key")
    public_key: str = Field(description="Raw Ed25519 public key, base64")
    node: str


class CaseErrorOut(BaseModel):
    detail: str
    case: str | None = None
    state: str | None = None
    camera: str | None = None
