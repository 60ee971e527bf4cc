"""One PTZ interface over ONVIF devices and GB/T 28181 channels, and which camera has which.

:class:`PtzControl` (services/ptz_control.py) steers every camera through a
:class:`PtzDriver`; :class:`PtzDrivers` says which driver a camera has, or why none:
an ONVIF camera (its ``onvif`` section) through :class:`OnvifPtzDriver`, a GB/T 28181
channel through :class:`GbPtzDriver` (the platform's DeviceControl, services/gb_control.py).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from typing import Literal, Protocol, TypeVar

from surveillance.catalog import Camera, OnvifEndpoint
from surveillance.errors import InvalidRequest
from surveillance.onvif.client import OnvifClient, safe_url
from surveillance.onvif.errors import (
    DeviceFault,
    DeviceTimeout,
    DeviceUnreachable,
    NoPtz,
    OnvifError,
)
from surveillance.onvif.ptz import OnvifPtz, Preset
from surveillance.services.gb_control import GbControl, NotControllable, PtzMove, PtzPreset

log = logging.getLogger(__name__)

T = TypeVar("T")
PtzKind = Literal["onvif", "gb28181"]
GB_PRESETS = range(1, 256)  # GB/T 28181-2016 A.3.5: preset numbers 1-255
GB_FIXED = 3  # catalog PTZType 3: a fixed camera (1 dome, 2 half-dome, 4 remote-controlled)
# A device that did not answer in time or could not be reached is not asked again for this
# long: every click on a wall would otherwise wait out the timeout once more.
FAILURE_MEMORY_S = 15.0
REMEMBERED = " (not asked again for {} s)"  # added to a remembered failure's reason


class PtzDriver(Protocol):
    """Steering one camera. Every method returns when the device (or platform) took the
    command; failures are OnvifError / GbControl errors with their HTTP status."""

    async def move(self, pan: float, tilt: float, zoom: float, timeout_s: float) -> None: ...
    async def stop(self) -> None: ...
    async def presets(self) -> list[Preset]: ...
    async def goto(self, token: str) -> None: ...
    async def save(self, name: str, token: str | None = None) -> Preset: ...
    async def remove(self, token: str) -> None: ...
    async def home(self) -> None: ...
    async def close(self) -> None: ...


class OnvifPtzDriver:
    """One ONVIF camera: one connected client, kept between commands (a wall refreshes a
    move every ~400 ms), dropped and made again after a failure of the connection. Commands
    run one at a time, in the order sent, so a stop never overtakes the move it ends.

    A command has one deadline, ``timeout_s``, for connecting again and the request both
    (once the driver connected a first time: that first connection may load the services'
    WSDLs, seconds of CPU at a busy start that are no device's delay; each of its requests
    is bounded all the same). A timeout or an unreachable device is remembered for
    :data:`FAILURE_MEMORY_S`: the commands meanwhile (and those queued behind the failing
    one) are refused at once with that reason instead of each waiting for the device
    again."""

    def __init__(
        self,
        camera_id: str,
        endpoint: OnvifEndpoint,
        timeout_s: float,
        failure_memory_s: float = FAILURE_MEMORY_S,
    ) -> None:
        self.endpoint = endpoint
        self._camera_id = camera_id
        self._timeout_s = timeout_s
        self._failure_memory_s = failure_memory_s
        self._lock = asyncio.Lock()
        self._client: OnvifClient | None = None
        self._ptz: OnvifPtz | None = None
        # Whether the device has PTZ: the configuration's word, else what it said.
        self.has_ptz: bool | None = endpoint.ptz
        self._failed: tuple[float, OnvifError] | None = None  # (monotonic end, why)
        self._deadline_s: float | None = None  # of a command; set once connected (above)

    async def move(self, pan: float, tilt: float, zoom: float, timeout_s: float) -> None:
        await self._run(lambda ptz: ptz.move(pan, tilt, zoom, timeout_s))

    async def stop(self) -> None:
        await self._run(lambda ptz: ptz.stop())

    async def presets(self) -> list[Preset]:
        return await self._run(lambda ptz: ptz.presets())

    async def goto(self, token: str, *, background: bool = False) -> None:
        await self._run(lambda ptz: ptz.goto(token), background=background)

    async def save(self, name: str, token: str | None = None) -> Preset:
        return await self._run(lambda ptz: ptz.save(name, token))

    async def remove(self, token: str) -> None:
        await self._run(lambda ptz: ptz.remove(token))

    async def home(self, *, background: bool = False) -> None:
        await self._run(lambda ptz: ptz.home(), background=background)

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

    async def probe(self) -> None:
        """Learn whether the device has PTZ without steering it (``has_ptz``): connect, read
        its profiles, disconnect. A failure is raised and remembered as a command's is."""
        async with self._lock:
            if self._ptz is not None:
                return  # connected for commands: it has PTZ
            try:
                await self._command(_nothing)
            except NoPtz:
                return  # has_ptz says so now
            finally:
                await self._drop()  # nobody steers it: no connection kept for it

    def remembered_failure(self) -> OnvifError | None:
        """The timeout or unreachable failure of the last attempt, while it is remembered:
        the error a command gets now without the device being asked."""
        if self._failed is None:
            return None
        until, error = self._failed
        left = until - time.monotonic()
        if left <= 0:
            return None
        return type(error)(f"{error}{REMEMBERED.format(math.ceil(left))}")

    async def _run(
        self, command: Callable[[OnvifPtz], Awaitable[T]], *, background: bool = False
    ) -> T:
        """``background``: a command nobody waits for (the idle return home, retried
        until the device answers): it asks the device even while a failure is
        remembered, and its own failure is not remembered, so an operator is never
        refused because of it; its success clears the remembered failure (the device
        answers again)."""
        if self.endpoint.ptz is False:
            raise NoPtz(
                f"camera {self._camera_id!r} cannot be steered: PTZ is turned off in its "
                "onvif section (ptz: false)"
            )
        if not background:
            self._raise_remembered()
        async with self._lock:
            if not background:
                self._raise_remembered()  # queued behind the command that failed
            return await self._command(command, remember=not background)

    def _raise_remembered(self) -> None:
        failure = self.remembered_failure()
        if failure is not None:
            raise failure

    async def _command(
        self, command: Callable[[OnvifPtz], Awaitable[T]], *, remember: bool = True
    ) -> T:
        """``command`` on the session (connected first if need be) within one deadline;
        what went wrong decides what is kept (the lock is held)."""
        try:
            try:
                async with asyncio.timeout(self._deadline_s):
                    result = await command(await self._session())
            except TimeoutError as late:  # connecting and the request took too long together
                where = safe_url(self.endpoint.url)
                raise DeviceTimeout(f"{where} did not answer in time") from late
        except NoPtz:
            self.has_ptz = False
            self._failed = None
            await self._drop()
            raise
        except DeviceFault:
            self._failed = None
            raise  # the device answered (no such preset...): the connection is fine
        except (DeviceTimeout, DeviceUnreachable) as error:
            if remember:
                self._failed = (time.monotonic() + self._failure_memory_s, error)
            await self._drop()  # the next command connects again
            raise
        except OnvifError:
            self._failed = None
            await self._drop()  # the next command connects again
            raise
        self._failed = None
        return result

    async def _session(self) -> OnvifPtz:
        if self._ptz is None:
            endpoint = self.endpoint
            client = OnvifClient(
                endpoint.url, endpoint.username, endpoint.password, timeout_s=self._timeout_s
            )
            await client.__aenter__()
            try:
                self._ptz = await OnvifPtz.open(client, f"camera {self._camera_id!r}")
            except BaseException:
                await client.__aexit__(None, None, None)
                raise
            self._client = client
            self.has_ptz = True
            self._deadline_s = self._timeout_s
        return self._ptz

    async def _drop(self) -> None:
        client, self._client, self._ptz = self._client, None, None
        if client is not None:
            try:
                await client.__aexit__(None, None, None)
            except Exception:  # a client that fails to close is gone all the same
                log.debug("ptz: closing the client of camera %s failed", self._camera_id)


class GbPtzDriver:
    """A GB/T 28181 channel, through its platform. Presets are numbers 1..255 (tokens
    "1".."255"); the platform keeps no names and lists none (GB/T 28181-2016 has no preset
    query every platform answers), and a channel has no home position. Moves carry no
    timeout: PtzControl's deadman sends the stop."""

    def __init__(self, control: GbControl, camera: Camera) -> None:
        self._control = control
        self._camera = camera

    async def move(self, pan: float, tilt: float, zoom: float, timeout_s: float) -> None:
        await self._control.ptz(self._camera, PtzMove(pan, tilt, zoom))

    async def stop(self) -> None:
        await self._control.ptz(self._camera, PtzMove(0.0, 0.0, 0.0))

    async def presets(self) -> list[Preset]:
        return []

    async def goto(self, token: str) -> None:
        await self._control.ptz(self._camera, PtzPreset("goto", _gb_number(token)))

    async def save(self, name: str, token: str | None = None) -> Preset:
        if token is None:
            raise InvalidRequest("preset: a GB/T 28181 channel's preset needs a number 1..255")
        number = _gb_number(token)
        await self._control.ptz(self._camera, PtzPreset("set", number))
        return Preset(str(number), f"Preset {number}")

    async def remove(self, token: str) -> None:
        await self._control.ptz(self._camera, PtzPreset("remove", _gb_number(token)))

    async def home(self) -> None:
        raise NoPtz(f"camera {self._camera.id!r}: a GB/T 28181 channel has no home position")

    async def close(self) -> None:
        return None


def plain_reason(error: Exception) -> str:
    """An error's reason without the countdown of a remembered failure: the same failure
    answered again reads the same (audited once, services/ptz_control.py)."""
    text = str(error)
    return re.sub(re.escape(REMEMBERED).replace(r"\{\}", r"\d+") + "$", "", text)


async def _nothing(ptz: OnvifPtz) -> None:
    """A probe's command: the session was made, which is what it asked."""


def _gb_number(token: str) -> int:
    if token.isascii() and token.isdigit() and int(token) in GB_PRESETS:
        return int(token)
    raise InvalidRequest("preset: a GB/T 28181 channel's presets are numbers 1..255")


class PtzDrivers:
    """Which driver steers a camera, kept per camera (an ONVIF camera's connection lives in
    its driver); a camera whose onvif section changed gets a new one."""

    def __init__(
        self,
        gb_control: GbControl,
        gb_ptz_type: Callable[[str], int | None],
        timeout_s: float,
        failure_memory_s: float = FAILURE_MEMORY_S,
    ) -> None:
        self._gb_control = gb_control
        self._gb_ptz_type = gb_ptz_type  # a channel's catalog PTZType, None: not said
        self._timeout_s = timeout_s
        self._failure_memory_s = failure_memory_s
        self._onvif: dict[str, OnvifPtzDriver] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def kind(self, camera: Camera) -> PtzKind | None:
        if camera.onvif is not None:
            return "onvif"
        try:
            self._gb_control.channel_of(camera)
        except NotControllable:
            return None
        return "gb28181"

    def controllable(self, camera: Camera) -> tuple[bool, str | None]:
        """Whether the camera can be steered as far as known now, and why not. Any
        thread; connects nothing (an ONVIF device not asked yet counts as steerable; the
        node holding it asks it soon after it starts: PtzControl's probe)."""
        if camera.onvif is not None:
            why = self._onvif_refusal(camera.id, camera.onvif)
            return why is None, why
        try:
            self.driver(camera)
        except NoPtz as no:
            return False, str(no)
        return True, None

    def _onvif_refusal(self, camera_id: str, endpoint: OnvifEndpoint) -> str | None:
        if endpoint.ptz is False:
            return f"camera {camera_id!r}: PTZ is turned off in its onvif section"
        known = self._onvif.get(camera_id)
        if known is not None and known.endpoint == endpoint and known.has_ptz is False:
            return f"camera {camera_id!r} cannot be steered: the device has no PTZ"
        return None

    def known(self, camera_id: str) -> bool | None:
        """Whether the camera's ONVIF device has PTZ as far as it said (None: not asked
        yet, no answer, or not an ONVIF camera). Any thread."""
        driver = self._onvif.get(camera_id)
        return None if driver is None else driver.has_ptz

    def driver(self, camera: Camera) -> PtzDriver:
        """The camera's driver; NoPtz (409) saying why it has none (an ONVIF device known
        to have no PTZ is not asked again: PtzControl's probe looks again now and then)."""
        kind = self.kind(camera)
        if kind == "onvif" and camera.onvif is not None:
            refusal = self._onvif_refusal(camera.id, camera.onvif)
            if refusal is not None:
                raise NoPtz(refusal)
            return self._onvif_driver(camera.id, camera.onvif)
        if kind == "gb28181":
            if self._gb_ptz_type(camera.id) == GB_FIXED:
                raise NoPtz(
                    f"camera {camera.id!r} cannot be steered: the GB/T 28181 channel is a "
                    "fixed camera (PTZType 3)"
                )
            return GbPtzDriver(self._gb_control, camera)
        raise NoPtz(
            f"camera {camera.id!r} cannot be steered: it has no onvif section and is not a "
            "GB/T 28181 channel"
        )

    def onvif_driver(self, camera: Camera) -> OnvifPtzDriver | None:
        if camera.onvif is None:
            return None
        return self._onvif_driver(camera.id, camera.onvif)

    def _onvif_driver(self, camera_id: str, endpoint: OnvifEndpoint) -> OnvifPtzDriver:
        driver = self._onvif.get(camera_id)
        if driver is None or driver.endpoint != endpoint:
            if driver is not None:  # its old connection closes in the background
                task = asyncio.get_running_loop().create_task(driver.close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
            driver = self._onvif[camera_id] = OnvifPtzDriver(
                camera_id, endpoint, self._timeout_s, self._failure_memory_s
            )
        return driver

    async def let_go(self, camera_id: str) -> None:
        """Close the camera's device connection (it went home: nobody steers it now; the
        next command connects again)."""
        driver = self._onvif.get(camera_id)
        if driver is not None:
            await driver.close()

    async def close(self) -> None:
        drivers = list(self._onvif.values())
        self._onvif.clear()
        for driver in drivers:
            await driver.close()
        if self._closing:
            await asyncio.wait(set(self._closing))
