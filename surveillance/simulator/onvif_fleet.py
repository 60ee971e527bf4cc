"""Many simulated ONVIF cameras on one background thread and event loop, each on its own
loopback address (every 127.x.y.z is on ``lo``, so all can use the same ports), with their
WS-Discovery responder and the RTSP pictures their PTZ moves.

Pictures: one :class:`Simulator` (the GStreamer RTSP server) with two PTZ-picture mounts per
device, ``onvif/<address>/main`` (640x360) and ``.../sub`` (320x180), both at 10 fps; a PTZ
device's follow its position (``Simulator.view``), a fixed camera's show the scene's centre.
A mount encodes only while watched, so 20 devices are 40 cheap mounts of one still scene.
Fault devices get no mounts (nothing gets that far with them). ``pictures=False`` starts
the devices alone (quick tests of the SOAP side).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

from surveillance.simulator.onvif_device import SimulatedDevice
from surveillance.simulator.onvif_specs import OnvifDeviceSpec
from surveillance.simulator.onvif_wsd import WsdResponder
from surveillance.simulator.ptz_scene import write_scene
from surveillance.simulator.server import MountSpec, Simulator

MAIN_SIZE = (640, 360)
SUB_SIZE = (320, 180)
PICTURE_FPS = 10
SCENE_NAME = "onvif-scene-2560x1440-seed0.png"  # write_scene's default size and seed
START_TIMEOUT_S = 30.0


class OnvifFleetError(RuntimeError):
    pass


class OnvifFleet:
    """Context manager: starts the pictures, the devices and discovery; stops them all."""

    def __init__(
        self,
        specs: Sequence[OnvifDeviceSpec],
        *,
        interface: str = "127.0.0.1",
        scene_dir: Path | None = None,
        pictures: bool = True,
        discovery: bool = True,
    ) -> None:
        addresses = [spec.address for spec in specs]
        if len(set(addresses)) != len(addresses):
            raise OnvifFleetError("device addresses must be unique")
        self.interface = interface
        self._scene_dir = scene_dir  # None: a temporary directory, removed at stop
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._pictures = pictures
        self._discovery = discovery
        self._specs = list(specs)
        self.simulator: Simulator | None = None
        self.devices: list[SimulatedDevice] = []
        self.responder: WsdResponder | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def on_subnet(
        cls,
        subnet: str,
        count: int,
        *,
        first_host: int = 1,
        ptz: bool = True,
        faults: Mapping[int, str] = {},
        clock_offsets: Mapping[int, float] = {},
        http_port: int = 8080,
        scene_dir: Path | None = None,
        pictures: bool = True,
        discovery: bool = True,
        **spec_fields: Any,
    ) -> OnvifFleet:
        """``count`` devices at subnet.(first_host + i), i = 0..count-1; ``faults`` and
        ``clock_offsets`` are keyed by that i."""
        specs = []
        for i in range(count):
            host = first_host + i
            fields: dict[str, Any] = {"name": f"{'PTZ' if ptz else 'Fixed'} camera {host}"}
            fields.update(spec_fields)
            specs.append(
                OnvifDeviceSpec(
                    address=f"{subnet}.{host}",
                    http_port=http_port,
                    ptz=ptz,
                    fault=faults.get(i),
                    clock_offset_s=clock_offsets.get(i, 0.0),
                    **fields,
                )
            )
        return cls(specs, scene_dir=scene_dir, pictures=pictures, discovery=discovery)

    @property
    def specs(self) -> list[OnvifDeviceSpec]:
        """The specs as given (a copy; stream URIs are filled in on the devices' specs)."""
        return list(self._specs)

    def device(self, address: str) -> SimulatedDevice:
        for device in self.devices:
            if device.spec.address == address:
                return device
        raise KeyError(address)

    def __enter__(self) -> OnvifFleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- start and stop --------------------------------------------------------------------

    def start(self) -> None:
        try:
            specs = self._start_pictures() if self._pictures else self._specs
            self.devices = [SimulatedDevice(spec, self._view_callback(spec)) for spec in specs]
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="onvif-fleet", daemon=True
            )
            self._thread.start()
            self._run(self._start_devices())
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            try:
                self._run(self._stop_devices())
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(10)
                self._loop.close()
        self._loop = None
        self._thread = None
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    def _run(self, coroutine: Any) -> Any:
        assert self._loop is not None
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(START_TIMEOUT_S)

    async def _start_devices(self) -> None:
        for device in self.devices:
            await device.start()
        if self._discovery:
            self.responder = WsdResponder(self.devices, interface=self.interface)
            await self.responder.start()

    async def _stop_devices(self) -> None:
        if self.responder is not None:
            self.responder.stop()
            self.responder = None
        for device in self.devices:
            await device.stop()

    # -- pictures --------------------------------------------------------------------------

    def _start_pictures(self) -> list[OnvifDeviceSpec]:
        """Start the RTSP server with the PTZ devices' mounts; returns the specs with their
        stream URIs filled in (those that had none)."""
        served = [spec for spec in self._specs if spec.fault is None]
        if not served:
            return self._specs
        if self._scene_dir is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="onvif-scene-")
            self._scene_dir = Path(self._scratch.name)
        self._scene_dir.mkdir(parents=True, exist_ok=True)
        scene = self._scene_dir / SCENE_NAME
        if not scene.is_file():  # made once per directory: the same seed, the same picture
            partial = scene.with_name(f"{scene.stem}.{os.getpid()}.png")
            os.replace(write_scene(partial), scene)  # whole, even with two fleets at once
        mounts = [
            MountSpec(
                f"onvif/{spec.address}/{kind}", ptz_scene=scene, ptz_size=size, ptz_fps=PICTURE_FPS
            )
            for spec in served
            for kind, size in (("main", MAIN_SIZE), ("sub", SUB_SIZE))
        ]
        self.simulator = Simulator(mounts, clip_dir=self._scene_dir)
        self.simulator.start()
        with_uris = []
        for spec in self._specs:
            if spec in served and not spec.rtsp_main:
                main = self.simulator.url(f"onvif/{spec.address}/main", credentials=False)
                sub = self.simulator.url(f"onvif/{spec.address}/sub", credentials=False)
                spec = replace(spec, rtsp_main=main, rtsp_sub=spec.rtsp_sub or sub)
            with_uris.append(spec)
        return with_uris

    def _view_callback(self, spec: OnvifDeviceSpec) -> Any:
        simulator = self.simulator
        if simulator is None or not spec.ptz or spec.fault is not None:
            return None
        paths = (f"onvif/{spec.address}/main", f"onvif/{spec.address}/sub")

        def on_view(pan: float, tilt: float, zoom: float) -> None:
            for path in paths:
                simulator.view(path, pan, tilt, zoom)

        return on_view
