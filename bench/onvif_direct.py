"""A simulated device steered straight with onvif-zeep-async, for ``bench.onvif``'s baselines.

No service in the path: what a PTZ command costs when this process talks ONVIF to the
device itself. The benchmark is synchronous (HTTP and WebSocket clients in threads), so the
client keeps an event loop of its own and runs each request to its end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from onvif import ONVIFCamera

T = TypeVar("T")


class DirectPtz:
    """One device's PTZ service over onvif-zeep-async; a context manager."""

    def __init__(self, device_url: str, username: str, password: str) -> None:
        self._url = urlsplit(device_url)
        self._credentials = (username, password)
        self._loop = asyncio.new_event_loop()
        self._camera: ONVIFCamera | None = None
        self._ptz: Any = None
        self._profile = ""

    def __enter__(self) -> DirectPtz:
        self._run(self._connect())
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._camera is not None:
                self._run(self._camera.close())
        finally:
            self._loop.close()

    async def _connect(self) -> None:
        # Made on the running loop: its aiohttp sessions belong to the loop they start on.
        user, password = self._credentials
        camera = ONVIFCamera(
            self._url.hostname or "", self._url.port or 80, user, password, adjust_time=True
        )
        self._camera = camera
        await camera.update_xaddrs()
        media = await camera.create_media_service()
        profiles = await media.GetProfiles()
        with_ptz = [p for p in profiles if getattr(p, "PTZConfiguration", None) is not None]
        self._profile = str((with_ptz or profiles)[0].token)
        self._ptz = await camera.create_ptz_service()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coroutine)

    def move(
        self, pan: float, tilt: float = 0.0, zoom: float = 0.0, timeout_s: float = 1.0
    ) -> None:
        """ContinuousMove, stopped by the device after ``timeout_s`` (xs:duration)."""
        self._run(
            self._ptz.ContinuousMove(
                {
                    "ProfileToken": self._profile,
                    "Velocity": {"PanTilt": {"x": pan, "y": tilt}, "Zoom": {"x": zoom}},
                    "Timeout": f"PT{timeout_s:g}S",
                }
            )
        )

    def stop(self) -> None:
        self._run(self._ptz.Stop({"ProfileToken": self._profile, "PanTilt": True, "Zoom": True}))

    def jump(self, pan: float, tilt: float = 0.0, zoom: float = 0.0) -> None:
        """AbsoluteMove: the simulated device is there at once (how trials start alike)."""
        self._run(
            self._ptz.AbsoluteMove(
                {
                    "ProfileToken": self._profile,
                    "Position": {"PanTilt": {"x": pan, "y": tilt}, "Zoom": {"x": zoom}},
                }
            )
        )
