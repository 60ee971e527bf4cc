"""ONVIF discovery bodies and answers: a run's request, its progress and results, the
catalog rows asked for. No answer carries a password: the one a run is given stays in it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, SecretStr

from surveillance.api.schemas.base import In, Out

MAX_TARGETS = 64
TARGET_CHARS = 200

Target = Annotated[str, Field(min_length=1, max_length=TARGET_CHARS)]


class DiscoveryIn(In):
    targets: list[Target] = Field(
        default_factory=list,
        max_length=MAX_TARGETS,
        description="Addresses, networks (10.1.2.0/24), ranges (10.1.2.3-40) or host names, "
        "each with an optional :port of the device service.",
    )
    multicast: bool = Field(True, description="Also probe by WS-Discovery multicast.")
    username: str | None = Field(None, max_length=128, description="For inspecting devices.")
    password: SecretStr | None = Field(None, max_length=256, description="Used, never kept.")
    time_limit_s: float | None = Field(
        None, gt=0, description="At most the configured onvif.discovery.time_limit_s."
    )


class ProfileOut(Out):
    token: str
    name: str
    encoding: str | None
    width: int | None
    height: int | None
    stream_uri: str | None
    ptz: bool


class DeviceOut(Out):
    device_url: str
    outcome: str = Field(description='"ok", or why not: unreachable, timeout, unauthorized, ...')
    reason: str
    endpoint: str | None
    manufacturer: str | None
    model: str | None
    firmware: str | None
    serial: str | None
    name: str | None
    location: str | None
    main_uri: str | None
    sub_uri: str | None
    ptz: bool
    clock_offset_s: float | None
    found_by: str | None
    profiles: list[ProfileOut]
    catalog_status: str = Field(
        description='"new", "same" or "changed" against the catalog; for a device that could '
        "not be inspected, its outcome (nothing was compared)"
    )
    camera_id: str | None = Field(description="The catalog camera on the same host")
    changes: list[str]


class DroppedOut(Out):
    address: str
    reason: str


class DiscoveryRunOut(Out):
    id: str
    state: Literal["running", "done"]
    phase: Literal["probing", "inspecting", "done"]
    by: str
    targets: list[str]
    multicast: bool
    time_limit_s: float
    started_at: datetime
    elapsed_s: float
    probes_sent: int
    to_inspect: int
    silent: int = Field(
        description="Addresses of a network or range named with a port where nothing "
        "accepted a connection (not listed as devices)"
    )
    not_probed: int = Field(
        description="Named addresses the time limit came before (not probed: give more time "
        "or fewer addresses)"
    )
    devices: list[DeviceOut]
    gone: list[str] = Field(description="Catalog ONVIF cameras in reach that did not answer")
    dropped: list[DroppedOut]


class CatalogIn(In):
    devices: list[Annotated[str, Field(max_length=2048)]] = Field(min_length=1, max_length=4096)
    format: Literal["csv", "yaml"] = "csv"
    platform: str = Field(min_length=1, max_length=64)
    tags: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=32)
    id_prefix: str = Field("", max_length=32)
