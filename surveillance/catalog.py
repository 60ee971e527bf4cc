"""The camera catalog: platforms, cameras and zone tags as the rest of the service sees them.

Built once from a validated :class:`~surveillance.config.AppConfig`. Each camera carries
its effective stream URLs with credentials resolved (camera over platform), and these stay
private: :meth:`Camera.display_url` is the only form that may leave the server.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from surveillance.config.models import (
    BUILTIN_TAGS,
    AppConfig,
    CameraConfig,
    IngestMode,
    PlatformConfig,
    Transport,
)
from surveillance.redact import redact_url, url_credentials, url_secrets, with_credentials


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


def _effective_url(url: str, camera: CameraConfig, platform: PlatformConfig | None) -> str:
    in_url_user, in_url_password = url_credentials(url)
    username = camera.username or in_url_user or (platform.username if platform else None)
    password: str | None = None
    if camera.password is not None:
        password = camera.password.get_secret_value()
    elif in_url_password:
        password = in_url_password
    elif platform and platform.password is not None:
        password = platform.password.get_secret_value()
    return with_credentials(url, username, password)


class Catalog:
    def __init__(
        self, platforms: Iterable[Platform], cameras: Iterable[Camera], tags: Iterable[Tag]
    ) -> None:
        self.platforms = {p.id: p for p in platforms}
        self.cameras = {c.id: c for c in cameras}
        self.tags = {t.id: t for t in tags}

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
                )
            )
        platforms = [Platform(p.id, p.name, p.vendor) for p in config.platforms]
        return cls(platforms, cameras, tags)

    def secrets(self) -> set[str]:
        """Every password, user name and token in use, in userinfo or query string, for the
        log and error redactor."""
        found: set[str] = set()
        for camera in self.cameras.values():
            for sub in (False, True) if camera.has_sub_stream else (False,):
                found |= url_secrets(camera.stream_url(sub))
        return found

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
