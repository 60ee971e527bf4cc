"""Response models of a camera's video-quality state and its reference picture."""

from __future__ import annotations

from pydantic import Field

from surveillance.api.schemas.base import Out, UtcTime


class CheckOut(Out):
    check: str = Field(
        description="frozen, dark, bright, covered, defocus, one_colour, moved or frame_rate"
    )
    event_type: str = Field(description="The type of the event the check raises")
    active: bool = Field(description="The check failed long enough: its event is active")


class FiguresOut(Out):
    """What the last analysed keyframe measured (small, full-range luma 0..255)."""

    mean: float = Field(description="Mean luma")
    contrast: float = Field(description="Standard deviation of luma")
    sharpness: float = Field(description="Mean |Laplacian| per unit of contrast")
    colour_share: float = Field(description="Share of the picture near its median colour")
    saturation: float = Field(description="The median colour's distance from grey")
    change: float | None = Field(
        description="Largest blurred block's change since the last keyframe"
    )
    similarity: float | None = Field(description="Match with the reference picture, -1..1")


class PacketFiguresOut(Out):
    """What the packets of the last interval said, without decoding."""

    frame_rate: float | None = Field(
        description="Frames per second as they arrived (not by timestamps)"
    )
    usual_frame_rate: float | None = Field(description="The camera's running baseline")
    p_median_bytes: float | None = Field(description="Median P-frame size")
    usual_p_bytes: float | None = Field(description="The camera's running baseline")
    keyframe_share: float | None = Field(description="Median keyframe size / the usual one")


class ReferenceOut(Out):
    set_by: str
    set_at: UtcTime
    width: int = Field(description="Width of the analysed reference picture, in pixels")
    height: int


class QualityOut(Out):
    camera_id: str
    diagnosed: bool = Field(
        description="false: the camera is not diagnosed (disabled, "
        "on demand, or diagnosis turned off for it)"
    )
    settling: bool = Field(description="Just (re)connected: no verdicts yet")
    measured_at: UtcTime | None = Field(description="When the last sample was judged")
    checks: list[CheckOut]
    figures: FiguresOut | None
    packets: PacketFiguresOut | None
    thresholds: dict[str, float] = Field(description="This camera's thresholds (tags applied)")
    hold_s: float
    clear_s: float
    interval_s: float
    reference: ReferenceOut | None
