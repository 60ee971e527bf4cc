"""PTZ bodies and answers: a move (or stop) or a preset command; the control's state and
leases as a wall shows them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from surveillance.api.schemas.base import In
from surveillance.config.names import DisplayName

PRESET_MAX = 255  # GB/T 28181-2016 A.3.5: preset numbers 1-255
PRESET_TEXT_MAX = 64


def _printable(value: str) -> str:
    if not value.isprintable() or value != value.strip():
        raise ValueError("use printable characters without leading or trailing spaces")
    return value


Token = Annotated[str, Field(min_length=1, max_length=PRESET_TEXT_MAX), AfterValidator(_printable)]
PresetName = Annotated[
    DisplayName, Field(min_length=1, max_length=PRESET_TEXT_MAX), AfterValidator(_printable)
]


class PresetIn(In):
    action: Literal["set", "goto", "remove"]
    token: Token | None = Field(None, description="The preset's token (as GET .../ptz lists)")
    number: int | None = Field(
        None, ge=1, le=PRESET_MAX, description="A preset number (GB/T 28181; token str(N))"
    )
    name: PresetName | None = Field(None, description="Name of the preset to save (set)")

    @model_validator(mode="after")
    def _names_one(self) -> PresetIn:
        if self.token is not None and self.number is not None:
            raise ValueError("give a token or a number, not both")
        if self.action != "set" and self.resolved_token is None:
            raise ValueError(f"{self.action}: give the preset's token (or number)")
        if self.action == "set" and self.resolved_token is None and self.name is None:
            raise ValueError("set: give a name (a new preset) or a token (to overwrite)")
        return self

    @property
    def resolved_token(self) -> str | None:
        return str(self.number) if self.number is not None else self.token


class PtzIn(In):
    """Either a move (pan, tilt, zoom; all 0 stops) or a preset, not both."""

    pan: float | None = Field(None, ge=-1, le=1, description="-1 left .. 1 right")
    tilt: float | None = Field(None, ge=-1, le=1, description="-1 down .. 1 up")
    zoom: float | None = Field(None, ge=-1, le=1, description="-1 out .. 1 in")
    preset: PresetIn | None = None

    @model_validator(mode="after")
    def _move_or_preset(self) -> PtzIn:
        moving = (self.pan, self.tilt, self.zoom) != (None, None, None)
        if moving == (self.preset is not None):
            raise ValueError("give pan, tilt and zoom (a move; all 0 stops) or a preset")
        return self


class LeaseIn(In):
    takeover: bool = Field(False, description="Take it from a holder of a lower role")


class LeaseOut(BaseModel):
    holder: str
    role: str
    expires_in_s: float
    mine: bool


class CameraLeaseOut(BaseModel):
    camera_id: str
    holder: str
    role: str
    expires_in_s: float


class PresetOut(BaseModel):
    token: str
    name: str


class PtzStateOut(BaseModel):
    camera_id: str
    controllable: bool
    kind: Literal["onvif", "gb28181"] | None
    reason: str | None = Field(description="Why it cannot be steered (or reached) now")
    lease: LeaseOut | None
    presets: list[PresetOut] = Field(description="Empty when unknown or unreachable")
    home_preset: str | None = Field(description="The preset it returns to; null: its home")
    idle_home_s: float = Field(description="Idle time before it returns home; 0: never")
    move_timeout_s: float = Field(description="A move stops this long after its last refresh")
