"""GB/T 28181 bodies: platforms' registration status, their channels, name and tag overrides."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from surveillance.api.schemas.base import In, Out, UtcTime
from surveillance.config.models import Identifier
from surveillance.config.names import refuse_bidi_controls
from surveillance.gb28181.tables import NAME_LENGTH

MAX_OVERRIDE_TAGS = 20  # as many as a configured camera may have
CHANNEL_PAGE_MAX = 1000

OverrideName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_LENGTH),
    AfterValidator(refuse_bidi_controls),
]


class GbPlatformOut(Out):
    platform_id: str
    name: str
    device_id: str
    online: bool
    reason: str | None = Field(description="Why it is not online")
    host: str | None = Field(description="The address its SIP came from last")
    port: int | None
    transport: str | None = Field(description="SIP transport: udp or tcp")
    registered_at: UtcTime | None
    expires_at: UtcTime | None
    last_keepalive_at: UtcTime | None
    channels: int
    channels_online: int
    streams: int = Field(description="Channel streams being played now")


class GbOverrideIn(In):
    name: OverrideName | None = Field(None, description="None: the channel's own name")
    tags: list[Identifier] | None = Field(
        None, max_length=MAX_OVERRIDE_TAGS, description="None: the tags its rules give"
    )


class GbOverrideOut(Out):
    camera_id: str
    name: str | None
    tags: list[str] | None
    updated_by: str
    updated_at: UtcTime


class GbChannelOut(Out):
    camera_id: str
    channel_id: str
    name: str = Field(description="The camera's name (an override's, else the channel's)")
    channel_name: str
    tags: list[str]
    status: str | None
    civil_code: str | None
    parent_id: str | None
    business_group_id: str | None
    manufacturer: str | None
    model: str | None
    address: str | None
    longitude: float | None = Field(description="WGS-84")
    latitude: float | None
    ptz_type: int | None
    override: GbOverrideOut | None


class GbChannelPageOut(Out):
    total: int
    offset: int
    limit: int
    channels: list[GbChannelOut]
