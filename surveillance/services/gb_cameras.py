"""GB/T 28181 channels as cameras of the catalog: what a channel's camera looks like (name,
tags, location, URL), and keeping the runtime cameras, the stored channels and each
camera's reachability in step as catalogs, notifications and platform presence arrive.

A channel's camera is on demand (nobody watching: no INVITE), read over the ``gb28181``
ingest source; its recording policy is the platform's, applied by the recorder like any
platform's. Every method that changes the catalog runs on the event loop (the catalog
asserts it); the database work goes to a thread.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import replace

from surveillance.catalog import Camera, Catalog, Location, runtime_camera
from surveillance.config.models import (
    GbCoordinates,
    GbPlatformConfig,
    GbTagRuleConfig,
    GbTransport,
    IngestMode,
    Transport,
)
from surveillance.config.names import strip_bidi_controls
from surveillance.gb28181.coords import gcj02_to_wgs84
from surveillance.gb28181.ids import VIDEO_CHANNEL_TYPES, camera_id, is_gb_id, type_code
from surveillance.gb28181.manscdp import CatalogItem
from surveillance.gb28181.records import GbChannelRecord, GbOverride, GbPlatformRecord
from surveillance.gb28181.store import GbStore
from surveillance.services.ingest import IngestService

log = logging.getLogger(__name__)

NOT_REGISTERED = "the platform has not registered since the node started"
CHANNEL_OFF = "the platform reports the channel OFF"
# GB/T 28181-2016 Annex D: digits 1-8 of an id are the centre's administrative division code.
ID_CIVIL_CODE_DIGITS = 8


def is_video_channel(device_id: str) -> bool:
    """Cameras and IPCs (type 131/132, also when they are items under a DVR or NVR)."""
    return is_gb_id(device_id) and type_code(device_id) in VIDEO_CHANNEL_TYPES


def wgs84(
    system: GbCoordinates, lon: float | None, lat: float | None
) -> tuple[float | None, float | None]:
    """The position in WGS-84, or (None, None) for none, an invalid one or 0,0 (what many
    platforms send for "unknown")."""
    if lon is None or lat is None or not (math.isfinite(lon) and math.isfinite(lat)):
        return None, None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90) or (lon == 0 and lat == 0):
        return None, None
    if system is GbCoordinates.GCJ02:
        return gcj02_to_wgs84(lon, lat)
    return lon, lat


def _text(value: str | None) -> str | None:
    """Stripped, without bidirectional controls (a name from the network that reordered
    how it is drawn could pass for another camera's: config/names.py), or None if empty."""
    value = strip_bidi_controls(value).strip() if value else None
    return value or None


def channel_record(platform: GbPlatformConfig, item: CatalogItem, at: float) -> GbChannelRecord:
    lon, lat = wgs84(platform.coordinates, item.longitude, item.latitude)
    return GbChannelRecord(
        platform_id=platform.id,
        channel_id=item.device_id,
        name=_text(item.name) or item.device_id,
        status=item.status,
        civil_code=_text(item.civil_code),
        parent_id=_text(item.parent_id),
        business_group_id=_text(item.business_group_id),
        manufacturer=_text(item.manufacturer),
        model=_text(item.model),
        address=_text(item.address),
        longitude=lon,
        latitude=lat,
        raw_longitude=item.longitude,
        raw_latitude=item.latitude,
        ptz_type=item.ptz_type,
        updated_at=at,
    )


def rule_matches(rule: GbTagRuleConfig, channel: GbChannelRecord) -> bool:
    """Both conditions a rule has must hold: the channel's CivilCode (else the division code
    its id starts with) begins with ``civil_code``; ``business_group`` is its BusinessGroupID
    or one of its parents (ParentID, which some platforms send as a "/"-separated path)."""
    if rule.civil_code is not None:
        civil = channel.civil_code or channel.channel_id[:ID_CIVIL_CODE_DIGITS]
        if not civil.startswith(rule.civil_code):
            return False
    if rule.business_group is not None:
        parents = set((channel.parent_id or "").split("/"))
        if rule.business_group != channel.business_group_id and rule.business_group not in parents:
            return False
    return True


def channel_tags(platform: GbPlatformConfig, channel: GbChannelRecord) -> tuple[str, ...]:
    """The platform's tags, then those of every rule the channel meets, each once."""
    tags = list(platform.tags)
    for rule in platform.tag_rules:
        if rule_matches(rule, channel):
            tags += rule.tags
    return tuple(dict.fromkeys(tags))


def channel_camera(
    platform: GbPlatformConfig, channel: GbChannelRecord, override: GbOverride | None
) -> Camera:
    """The camera of a channel; an administrator's override wins over name and tags."""
    name = (override.name if override else None) or channel.name or channel.channel_id
    tags = override.tags if override and override.tags is not None else None
    location = None
    if channel.latitude is not None or channel.address:
        location = Location(channel.latitude, channel.longitude, channel.address)
    return runtime_camera(
        id=camera_id(platform.id, channel.channel_id),
        name=name,
        platform_id=platform.id,
        url=f"gb28181://{platform.id}/{channel.channel_id}",
        tags=tags if tags is not None else channel_tags(platform, channel),
        location=location,
        # What the platform is asked to send video over (tcp-passive and tcp-active: TCP).
        transport=Transport.UDP if platform.transport is GbTransport.UDP else Transport.TCP,
        mode=IngestMode.ON_DEMAND,
    )


class GbChannelCameras:
    """The channel cameras of every configured platform, their rows and reachability."""

    def __init__(
        self,
        platforms: Iterable[GbPlatformConfig],
        catalog: Catalog,
        ingest: IngestService,
        store: GbStore,
    ) -> None:
        self.platforms = {p.id: p for p in platforms}
        self._catalog = catalog
        self._ingest = ingest
        self._store = store
        self._channels: dict[str, dict[str, GbChannelRecord]] = {p: {} for p in self.platforms}
        self._overrides: dict[str, GbOverride] = {}
        # Why each platform's cameras cannot be reached now; None: it is online.
        self._platform_reason: dict[str, str | None] = dict.fromkeys(self.platforms, NOT_REGISTERED)
        self._applied: dict[str, str | None] = {}  # camera id -> reason given to the ingest
        # "platform (address)" for log lines; the registry sets its presence's.
        self.where: Callable[[str], str] = str
        # Which of the stored registrations the presence takes over at load, as still
        # valid (its own, set by it): their platforms' cameras are not "not registered".
        self.still_registered: Callable[[Sequence[GbPlatformRecord]], Collection[str]] = (
            lambda records: ()
        )

    # -- reading --------------------------------------------------------------------------
    def channel(self, camera_id_: str) -> tuple[GbPlatformConfig, GbChannelRecord] | None:
        platform_id, _, channel_id = camera_id_.partition(".")
        channel = self._channels.get(platform_id, {}).get(channel_id)
        return None if channel is None else (self.platforms[platform_id], channel)

    def channels(self, platform_id: str) -> list[GbChannelRecord]:
        return sorted(self._channels.get(platform_id, {}).values(), key=lambda c: c.channel_id)

    def counts(self, platform_id: str) -> tuple[int, int]:
        """The platform's channels, and those that can be played now."""
        channels = self._channels.get(platform_id, {})
        if self._platform_reason.get(platform_id) is not None:
            return len(channels), 0
        return len(channels), sum(1 for c in channels.values() if c.status != "OFF")

    # -- start ----------------------------------------------------------------------------
    async def load(self) -> None:
        """Every stored channel of a configured platform becomes a camera: layouts, cases
        and recordings naming it keep working. It is unreachable until its platform
        registers, unless the platform's registration from before the restart is still
        valid: a platform does not register again until its registration expires, so a
        node restart must not make its channels "down" (GB/T 28181-2016 s.9.1.2)."""
        channels, overrides, registrations = await asyncio.to_thread(
            lambda: (self._store.channels(), self._store.overrides(), self._store.platforms())
        )
        self._overrides = overrides
        known = [r for r in registrations if r.platform_id in self.platforms]
        for platform_id in self.still_registered(known):
            self._platform_reason[platform_id] = None
        for channel in channels:
            if channel.platform_id in self.platforms:
                self._channels[channel.platform_id][channel.channel_id] = channel
        self._publish([c for by_id in self._channels.values() for c in by_id.values()])

    # -- catalog changes ------------------------------------------------------------------
    async def replace(self, platform_id: str, items: Sequence[CatalogItem], at: float) -> int:
        """A platform's complete catalog: its channel cameras become exactly these."""
        records = self._records(platform_id, items, at, whole=True)
        await asyncio.to_thread(self._store.replace_channels, platform_id, records, at)
        wanted = {r.channel_id: r for r in records}
        gone = [c for c in self._channels[platform_id] if c not in wanted]
        self._channels[platform_id] = wanted
        self._drop(platform_id, gone)
        self._publish(records)
        return len(records)

    async def upsert(self, platform_id: str, items: Sequence[CatalogItem], at: float) -> None:
        """Channels added or changed (NOTIFY ADD/UPDATE, or a catalog that did not complete)."""
        records = self._records(platform_id, items, at)
        if not records:
            return
        await asyncio.to_thread(self._store.upsert_channels, platform_id, records)
        for record in records:
            self._channels[platform_id][record.channel_id] = record
        self._publish(records)

    async def remove(self, platform_id: str, channel_ids: Iterable[str]) -> None:
        gone = [c for c in channel_ids if c in self._channels.get(platform_id, {})]
        if not gone:
            return
        await asyncio.to_thread(self._store.delete_channels, platform_id, gone)
        for channel_id in gone:
            del self._channels[platform_id][channel_id]
        self._drop(platform_id, gone)

    async def set_status(self, platform_id: str, channel_ids: Iterable[str], status: str) -> None:
        """NOTIFY ON/OFF: the channel can be played, or not (GB/T 28181-2016 A.2.4.2)."""
        known = self._channels.get(platform_id, {})
        changed = [
            replace(known[c], status=status)
            for c in channel_ids
            if c in known and known[c].status != status
        ]
        if not changed:
            return
        await asyncio.to_thread(self._store.upsert_channels, platform_id, changed)
        for record in changed:
            known[record.channel_id] = record
        self._reach(changed)

    def _records(
        self, platform_id: str, items: Sequence[CatalogItem], at: float, *, whole: bool = False
    ) -> list[GbChannelRecord]:
        """The video channels among ``items``, at most the platform's ``max_channels`` with
        those kept (``whole``: the items are the whole catalog, nothing is kept)."""
        platform = self.platforms[platform_id]
        records = {
            i.device_id: channel_record(platform, i, at)
            for i in items
            if is_video_channel(i.device_id)
        }
        kept = {} if whole else self._channels[platform_id]
        new = [c for c in records if c not in kept]
        room = max(0, platform.max_channels - len(kept))
        if len(new) > room:
            log.warning(
                "GB platform %s: %d channels beyond its max_channels (%d) refused",
                self.where(platform_id),
                len(new) - room,
                platform.max_channels,
            )
            for channel_id in new[room:]:
                del records[channel_id]
        return list(records.values())

    # -- presence and overrides -----------------------------------------------------------
    def set_platform_reason(self, platform_id: str, reason: str | None) -> None:
        """Why the platform's cameras cannot be played (offline, unregistered); None: they
        can (each as its channel's status says)."""
        if platform_id not in self.platforms or self._platform_reason[platform_id] == reason:
            return
        self._platform_reason[platform_id] = reason
        self._reach(list(self._channels[platform_id].values()))

    async def set_override(
        self, camera_id_: str, *, name: str | None, tags: Sequence[str] | None, user: str, at: float
    ) -> GbOverride:
        override = await asyncio.to_thread(
            lambda: self._store.set_override(camera_id_, name=name, tags=tags, user=user, at=at)
        )
        self._overrides[camera_id_] = override
        self._republish(camera_id_)
        return override

    async def clear_override(self, camera_id_: str) -> GbOverride | None:
        cleared = await asyncio.to_thread(self._store.clear_override, camera_id_)
        self._overrides.pop(camera_id_, None)
        self._republish(camera_id_)
        return cleared

    def override(self, camera_id_: str) -> GbOverride | None:
        return self._overrides.get(camera_id_)

    def _republish(self, camera_id_: str) -> None:
        found = self.channel(camera_id_)
        if found is not None:
            self._publish([found[1]])

    # -- into the catalog and the ingest --------------------------------------------------
    def _publish(self, records: Sequence[GbChannelRecord]) -> None:
        cameras = [
            channel_camera(
                self.platforms[r.platform_id],
                r,
                self._overrides.get(camera_id(r.platform_id, r.channel_id)),
            )
            for r in records
        ]
        if cameras:
            self._catalog.upsert(cameras)
        self._reach(records)

    def _drop(self, platform_id: str, channel_ids: Sequence[str]) -> None:
        ids = [camera_id(platform_id, c) for c in channel_ids]
        if ids:
            self._catalog.remove(ids)
        for camera in ids:
            self._applied.pop(camera, None)

    def _reach(self, records: Sequence[GbChannelRecord]) -> None:
        for record in records:
            reason = self._platform_reason[record.platform_id]
            if reason is None and record.status == "OFF":
                reason = CHANNEL_OFF
            camera = camera_id(record.platform_id, record.channel_id)
            if self._applied.get(camera) != reason:
                self._applied[camera] = reason
                self._ingest.set_unreachable(camera, reason)
