"""The camera catalog: platforms, cameras and zone tags as the rest of the service sees them.

Built from a validated :class:`~surveillance.config.AppConfig`. Each camera carries its
effective stream URLs with credentials resolved (camera over platform), and these stay
private: :meth:`Camera.display_url` is the only form that may leave the server.

Cameras may also come and go while the node runs (a GB/T 28181 platform's channels):
:meth:`Catalog.upsert` and :meth:`Catalog.remove` change those *runtime* cameras, never the
configured ones. Each mutation builds a new dict and swaps it in (copy-on-write), on the
event loop thread only, so a thread iterating ``catalog.cameras`` keeps the dict it started
with and never sees it change under it; listeners (:meth:`Catalog.on_change`) then hear of
the change, synchronously, on that thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from surveillance.config.models import (
    BUILTIN_TAGS,
    AppConfig,
    CameraConfig,
    IngestMode,
    PlatformConfig,
    RecordingPolicyConfig,
    Transport,
)
from surveillance.redact import redact_url, url_credentials, url_secrets, with_credentials

log = logging.getLogger(__name__)

GB28181_VENDOR = "GB/T 28181"  # the vendor of every platform of the gb28181 section
# URL schemes by the ingest source that reads them (services/ingest.py picks the worker).
_SOURCE_KINDS = {"rtsp": "rtsp", "rtsps": "rtsp"}


@dataclass(frozen=True)
class Tag:
    id: str
    name: str
    color: str
    builtin: bool


@dataclass(frozen=True)
class Platform:
    id: str
    name: str
    vendor: str | None


@dataclass(frozen=True)
class Location:
    lat: float | None
    lon: float | None
    place: str | None


@dataclass(frozen=True)
class OnvifEndpoint:
    """A camera's ONVIF device service, with the credentials to speak to it (the camera's,
    over its platform's, as for its stream). Keep them private: never show or log them."""

    url: str
    username: str | None = field(repr=False)
    password: str | None = field(repr=False)
    ptz: bool | None = None  # None: as the device's capabilities say
    home_preset: str | None = None  # None: the device's home position
    events: bool = True


@dataclass(frozen=True)
class Camera:
    id: str
    name: str
    platform_id: str
    tags: tuple[str, ...]
    location: Location | None
    transport: Transport
    mode: IngestMode
    enabled: bool
    # Effective URLs with credentials: for the ingest worker only.
    _main_url: str = field(repr=False)
    _sub_url: str | None = field(repr=False)
    # The camera's own recording policy (a configured camera's comes from the config, which
    # the recorder reads; a runtime camera may carry one here).
    recording: RecordingPolicyConfig | None = None
    runtime: bool = False  # added while the node runs (a GB/T 28181 channel), not configured
    onvif: OnvifEndpoint | None = None  # its ONVIF device service, if it has one

    @property
    def source_kind(self) -> str:
        """Which ingest source reads the camera: its URL's scheme, "rtsp" for rtsp and
        rtsps ("gb28181" for a GB/T 28181 channel)."""
        scheme = urlsplit(self._main_url).scheme.lower()
        return _SOURCE_KINDS.get(scheme, scheme)

    @property
    def has_sub_stream(self) -> bool:
        return self._sub_url is not None

    def stream_url(self, sub: bool = False) -> str:
        """The URL to connect to, credentials included. Never show or log it."""
        url = self._sub_url if sub else self._main_url
        if url is None:
            raise ValueError(f"camera {self.id!r} has no sub-stream")
        return url

    def display_url(self, sub: bool = False) -> str | None:
        """The URL with its credentials (userinfo and query parameters) replaced by ``***``."""
        url = self._sub_url if sub else self._main_url
        return None if url is None else redact_url(url)


def runtime_camera(
    *,
    id: str,
    name: str,
    platform_id: str,
    url: str,
    sub_url: str | None = None,
    tags: Iterable[str] = (),
    location: Location | None = None,
    transport: Transport = Transport.TCP,
    mode: IngestMode = IngestMode.ON_DEMAND,
    enabled: bool = True,
    recording: RecordingPolicyConfig | None = None,
) -> Camera:
    """A camera to :meth:`Catalog.upsert` while the node runs. ``url`` is used as given
    (credentials, if any, in it): keep it private like a configured camera's."""
    return Camera(
        id=id,
        name=name,
        platform_id=platform_id,
        tags=tuple(tags),
        location=location,
        transport=transport,
        mode=mode,
        enabled=enabled,
        _main_url=url,
        _sub_url=sub_url,
        recording=recording,
        runtime=True,
    )


@dataclass(frozen=True)
class CatalogChange:
    """What one mutation did; a camera whose fields changed is in ``updated`` (the new one)."""

    added: tuple[Camera, ...] = ()
    removed: tuple[Camera, ...] = ()
    updated: tuple[Camera, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.updated)


CatalogListener = Callable[[CatalogChange], None]


def camera_secrets(cameras: Iterable[Camera]) -> set[str]:
    """The passwords, user names and tokens in the cameras' URLs (userinfo or query)."""
    found: set[str] = set()
    for camera in cameras:
        for sub in (False, True) if camera.has_sub_stream else (False,):
            found |= url_secrets(camera.stream_url(sub))
        if camera.onvif is not None:
            found |= {s for s in (camera.onvif.username, camera.onvif.password) if s}
    return found


def _credentials(
    url: str, camera: CameraConfig, platform: PlatformConfig | None
) -> tuple[str | None, str | None]:
    """User name and password for the camera: its own, else those in the URL, else its
    platform's."""
    in_url_user, in_url_password = url_credentials(url)
    username = camera.username or in_url_user or (platform.username if platform else None)
    password: str | None = None
    if camera.password is not None:
        password = camera.password.get_secret_value()
    elif in_url_password:
        password = in_url_password
    elif platform and platform.password is not None:
        password = platform.password.get_secret_value()
    return username, password


def _effective_url(url: str, camera: CameraConfig, platform: PlatformConfig | None) -> str:
    return with_credentials(url, *_credentials(url, camera, platform))


def _onvif_endpoint(camera: CameraConfig, platform: PlatformConfig | None) -> OnvifEndpoint | None:
    """The camera's device service with the same credentials as its main stream."""
    if camera.onvif is None:
        return None
    username, password = _credentials(camera.url, camera, platform)
    return OnvifEndpoint(
        url=camera.onvif.url,
        username=username,
        password=password,
        ptz=camera.onvif.ptz,
        home_preset=camera.onvif.home_preset,
        events=camera.onvif.events,
    )


class Catalog:
    def __init__(
        self, platforms: Iterable[Platform], cameras: Iterable[Camera], tags: Iterable[Tag]
    ) -> None:
        # Replaced whole on every change (copy-on-write), never changed in place.
        self.platforms: dict[str, Platform] = {p.id: p for p in platforms}
        self.cameras: dict[str, Camera] = {c.id: c for c in cameras}
        self.tags = {t.id: t for t in tags}
        self._listeners: list[CatalogListener] = []
        self._owner: int | None = None  # the thread of the loop that mutates, once known

    @classmethod
    def from_config(cls, config: AppConfig) -> Catalog:
        platform_configs = {p.id: p for p in config.platforms}
        tags = [Tag(i, n, c, True) for i, (n, c) in BUILTIN_TAGS.items()]
        tags += [Tag(t.id, t.name, t.color, False) for t in config.tags]
        cameras = []
        for cam in config.cameras:
            platform = platform_configs.get(cam.platform)
            location = (
                Location(cam.location.lat, cam.location.lon, cam.location.place)
                if cam.location
                else None
            )
            cameras.append(
                Camera(
                    id=cam.id,
                    name=cam.name,
                    platform_id=cam.platform,
                    tags=tuple(cam.tags),
                    location=location,
                    transport=cam.transport,
                    mode=cam.mode,
                    enabled=cam.enabled,
                    _main_url=_effective_url(cam.url, cam, platform),
                    _sub_url=_effective_url(cam.sub_url, cam, platform) if cam.sub_url else None,
                    recording=cam.recording,
                    onvif=_onvif_endpoint(cam, platform),
                )
            )
        platforms = [Platform(p.id, p.name, p.vendor) for p in config.platforms]
        # A GB/T 28181 platform's channels become runtime cameras of it once it registers;
        # the platform is known from the start, so roll-ups, scopes and reports name it.
        platforms += [Platform(p.id, p.name, GB28181_VENDOR) for p in config.gb28181.platforms]
        return cls(platforms, cameras, tags)

    # -- changes while the node runs ------------------------------------------------------
    def on_change(self, listener: CatalogListener) -> None:
        """Call ``listener`` after every change of the cameras, on the event loop thread,
        right after the new dict is in place. It must not block; an exception it raises is
        logged and the other listeners still run."""
        self._listeners.append(listener)

    def upsert(self, cameras: Iterable[Camera]) -> CatalogChange:
        """Add runtime cameras, or replace those with the same id. Raises ValueError, and
        changes nothing, for a camera that is not ``runtime``, whose id is a configured
        camera's, or that names an unknown platform or tag."""
        self._check_thread()
        incoming = {camera.id: camera for camera in cameras}
        current = self.cameras
        for camera in incoming.values():
            self._check_runtime_camera(camera, current.get(camera.id))
        added = tuple(c for c in incoming.values() if c.id not in current)
        updated = tuple(c for c in incoming.values() if c.id in current and current[c.id] != c)
        if not added and not updated:
            return CatalogChange()
        self.cameras = {**current, **{c.id: c for c in added + updated}}
        return self._announce(CatalogChange(added=added, updated=updated))

    def remove(self, camera_ids: Iterable[str]) -> CatalogChange:
        """Remove runtime cameras; unknown ids are ignored. Raises ValueError, and changes
        nothing, for a configured camera's id."""
        self._check_thread()
        current = self.cameras
        gone = {i: current[i] for i in dict.fromkeys(camera_ids) if i in current}
        configured = sorted(i for i, camera in gone.items() if not camera.runtime)
        if configured:
            raise ValueError(f"configured cameras cannot be removed: {', '.join(configured)}")
        if not gone:
            return CatalogChange()
        self.cameras = {i: c for i, c in current.items() if i not in gone}
        return self._announce(CatalogChange(removed=tuple(gone.values())))

    def add_platform(self, platform: Platform) -> None:
        """Add a platform, or replace the one with its id."""
        self._check_thread()
        self.platforms = {**self.platforms, platform.id: platform}

    def _check_runtime_camera(self, camera: Camera, existing: Camera | None) -> None:
        if existing is not None and not existing.runtime:
            raise ValueError(f"camera {camera.id!r} is configured: it cannot be replaced")
        if not camera.runtime:
            raise ValueError(f"camera {camera.id!r} is not a runtime camera")
        if camera.platform_id not in self.platforms:
            raise ValueError(f"camera {camera.id!r}: unknown platform {camera.platform_id!r}")
        unknown = [t for t in camera.tags if t not in self.tags]
        if unknown:
            raise ValueError(f"camera {camera.id!r}: unknown tags {', '.join(unknown)}")

    def _check_thread(self) -> None:
        """Mutations come from one event loop's thread: listeners (ingest, recorder) then
        never race each other, and readers in other threads only ever see whole dicts."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("the catalog changes on the event loop thread only") from None
        me = threading.get_ident()
        if self._owner is None:
            self._owner = me
        elif self._owner != me:
            raise RuntimeError("the catalog changes on one event loop thread only")

    def _announce(self, change: CatalogChange) -> CatalogChange:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:  # one listener's bug must not keep the others uninformed
                log.exception("catalog listener %r failed", listener)
        return change

    def secrets(self) -> set[str]:
        """Every password, user name and token in use, in userinfo or query string, for the
        log and error redactor."""
        return camera_secrets(self.cameras.values())

    def camera(self, camera_id: str) -> Camera | None:
        return self.cameras.get(camera_id)

    def unknown(self, platforms: Iterable[str] = (), cameras: Iterable[str] = ()) -> list[str]:
        """The ids that name no platform or camera, as "platform 'x'" / "camera 'y'"."""
        missing = [f"platform {p!r}" for p in platforms if p not in self.platforms]
        return missing + [f"camera {c!r}" for c in cameras if c not in self.cameras]

    def select(
        self,
        *,
        platform: str | None = None,
        tags_all: Iterable[str] = (),
        tags_any: Iterable[str] = (),
        text: str | None = None,
    ) -> list[Camera]:
        """Cameras matching every given filter, in catalog order."""
        need_all = set(tags_all)
        need_any = set(tags_any)
        needle = text.casefold() if text else None
        result = []
        for camera in self.cameras.values():
            if platform and camera.platform_id != platform:
                continue
            tags = set(camera.tags)
            if need_all and not need_all <= tags:
                continue
            if need_any and not need_any & tags:
                continue
            if needle and needle not in camera.name.casefold() and needle not in camera.id:
                continue
            result.append(camera)
        return result
