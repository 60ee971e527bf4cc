"""PTZ requests to one connected ONVIF device (ONVIF PTZ Service Specification, ver20).

Every request names a media profile; the one used is the first profile carrying a PTZ
configuration (a device without one has no PTZ: :class:`~.errors.NoPtz`). Moves are
continuous (ContinuousMove with a Timeout, so a device left alone stops by itself even if
this node goes away), in the generic velocity spaces: pan and tilt in -1..1 (tilt 1 is up),
zoom in -1..1 (1 zooms in). Preset names and tokens come from the device: they are cut to
printable text of bounded length before anyone sees them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from surveillance.onvif.errors import BadAnswer, NoPtz

PRESET_TEXT_MAX = 64  # a preset's token and name as shown (the API takes no longer)
MAX_PRESETS = 512  # a device listing more is answered with its first ones
MAX_PROFILES = 64  # profiles looked at for a PTZ configuration (cameras have a handful)


class OnvifCalls(Protocol):
    """What of :class:`~surveillance.onvif.client.OnvifClient` PTZ needs."""

    async def call(
        self, service: str, operation: str, params: dict[str, Any] | None = None
    ) -> Any: ...


@dataclass(frozen=True)
class Preset:
    token: str
    name: str


def shown_text(value: object) -> str:
    """A device's free text made safe to show: printable, one line, bounded."""
    text = "" if value is None else str(value)
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(cleaned.split())[:PRESET_TEXT_MAX]


class OnvifPtz:
    """PTZ on one device through ``client`` (connected by the caller, who closes it)."""

    def __init__(self, client: OnvifCalls, profile_token: str) -> None:
        self._client = client
        self.profile_token = profile_token

    @classmethod
    async def open(cls, client: OnvifCalls, where: str) -> OnvifPtz:
        """The device's PTZ on its first profile with a PTZ configuration; NoPtz naming
        ``where`` when it has none. One request (GetProfiles; not the stream URIs a
        discovery reads too): connecting again after a failure costs as little as it can."""
        for profile in list(await client.call("media", "GetProfiles") or [])[:MAX_PROFILES]:
            token = _field(profile, "token")  # sent back as the device wrote it
            if token and _field(profile, "PTZConfiguration") is not None:
                return cls(client, str(token))
        raise NoPtz(f"{where}: the device has no PTZ (no media profile with a PTZ configuration)")

    async def move(self, pan: float, tilt: float, zoom: float, timeout_s: float) -> None:
        """Move at these velocities; the device stops by itself ``timeout_s`` after."""
        await self._ptz(
            "ContinuousMove",
            Velocity={"PanTilt": {"x": pan, "y": tilt}, "Zoom": {"x": zoom}},
            Timeout=timedelta(seconds=timeout_s),
        )

    async def stop(self) -> None:
        await self._ptz("Stop", PanTilt=True, Zoom=True)

    async def presets(self) -> list[Preset]:
        answer = await self._ptz("GetPresets")
        found = []
        for item in list(answer or [])[:MAX_PRESETS]:
            token = shown_text(_field(item, "token"))
            if token:
                found.append(Preset(token, shown_text(_field(item, "Name")) or token))
        return found

    async def goto(self, token: str) -> None:
        await self._ptz("GotoPreset", PresetToken=token)

    async def save(self, name: str, token: str | None = None) -> Preset:
        """Store the current position as preset ``name`` (over ``token`` when given)."""
        params: dict[str, Any] = {"PresetName": name}
        if token is not None:
            params["PresetToken"] = token
        answer = await self._ptz("SetPreset", **params)
        # zeep unwraps a response of one element to its value; some devices add more.
        saved = shown_text(answer if isinstance(answer, str) else _field(answer, "PresetToken"))
        if not saved:
            raise BadAnswer("the device saved the preset but named no token for it")
        return Preset(saved, name)

    async def remove(self, token: str) -> None:
        await self._ptz("RemovePreset", PresetToken=token)

    async def home(self) -> None:
        await self._ptz("GotoHomePosition")

    async def _ptz(self, operation: str, **params: Any) -> Any:
        return await self._client.call(
            "ptz", operation, {"ProfileToken": self.profile_token, **params}
        )


def _field(item: object, name: str) -> object:
    """A field of a zeep object (attribute) or of a plain mapping."""
    if isinstance(item, dict):
        return item.get(name)
    return getattr(item, name, None)
