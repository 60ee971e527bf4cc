"""Bodies of live video: delivery-path planning and WebRTC signalling (camera and mosaic)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from surveillance.api.schemas.base import In, Out

MAX_SDP_BYTES = 64_000


class CapsIn(In):
    webrtc_h264: bool = Field(description="RTCRtpReceiver reports H.264")
    mse_avc: bool = Field(description="MediaSource accepts avc1 (H.264) in MP4")
    mse_hevc: bool = Field(description="MediaSource accepts hvc1/hev1 (H.265) in MP4")


class PlanIn(In):
    camera: str
    stream: Literal["main", "sub"] = "main"
    caps: CapsIn
    avoid: list[Literal["webrtc", "mse"]] = Field(
        default_factory=list,
        max_length=2,
        description="Paths the page saw fail for this camera stream (its video did not "
        "advance there): planned as if the browser could not decode them",
    )
    purpose: Literal["grid", "single"] = Field(
        "single",
        description="grid: one tile of many, the cheapest path per viewer (fragmented MP4 "
        "where the browser plays it); single: one picture watched closely, the lowest "
        "latency (WebRTC where it works)",
    )


class PlanOut(Out):
    camera: str
    stream: str
    path: str = Field(description="webrtc, mse or transcode")
    reason: str
    codec: str
    b_frames: bool | None = Field(description="null while the stream has not shown it yet")
    codec_string: str | None
    mime: str | None
    width: int
    height: int
    node: str | None = Field(
        None, description="The node that holds the camera, when not the one asked (cluster)"
    )
    mse_url: str | None = Field(
        None,
        description="For path mse on another node: its WebSocket URL with a single-use "
        "ticket (30 s); the page connects there instead of to its own node",
    )


class OfferIn(In):
    camera: str
    stream: Literal["main", "sub"] = "main"
    sdp: str = Field(max_length=MAX_SDP_BYTES)
    transcode: bool = False


class MosaicOfferIn(In):
    sdp: str = Field(max_length=MAX_SDP_BYTES)


class AnswerOut(Out):
    type: Literal["answer"] = "answer"
    sdp: str
    viewer: str | None = Field(
        None,
        description="The viewer's id: DELETE /api/live/webrtc/{viewer} ends it at once "
        "(a page that leaves or replaces its player frees its transcode slot)",
    )
