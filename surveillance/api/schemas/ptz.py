"""PTZ bodies: a continuous move (or stop), or a preset to set, go to or remove."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from surveillance.api.schemas.base import In

PRESET_MAX = 255  # GB/T 28181-2016 A.3.5: preset numbers 1-255


class PresetIn(In):
    action: Literal["set", "goto", "remove"]
    number: int = Field(ge=1, le=PRESET_MAX)


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
