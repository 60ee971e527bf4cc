"""One ONVIF device, asked through onvif-zeep-async with every answer bounded and every
failure named.

:class:`OnvifClient` connects (reads the device clock so a skewed clock still
authenticates, then the services' addresses), calls operations by service and name within
``timeout_s`` each, and turns whatever goes wrong into an
:class:`~surveillance.onvif.errors.OnvifError` whose message names the device URL and never
a credential. :func:`translate_errors` does the same for code that drives the library's
objects itself (``OnvifClient.camera``: pull-point managers).

onvif-zeep-async is imported when the first client connects, not with this module: its
import calls ``logging.basicConfig``, which must not run before the service has set up its
own logging.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import zeep.exceptions

from surveillance.onvif.answers import AnswerRefused, harden
from surveillance.onvif.errors import (
    BadAnswer,
    DeviceFault,
    DeviceTimeout,
    DeviceUnreachable,
    NoPtz,
    NotAuthorized,
    OnvifError,
)
from surveillance.onvif.records import MediaProfile

if TYPE_CHECKING:
    from onvif import ONVIFCamera

SERVICES = ("devicemgmt", "media", "ptz", "events", "imaging", "deviceio")
# A device's own words (a fault reason) are shown to an administrator: one line, short.
_REASON_CHARS = 160
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_STREAM_SETUP = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}


def safe_url(url: str) -> str:
    """``url`` without user name or password (a URL someone typed may carry them)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparsable URL)"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def device_words(text: object) -> str:
    """A device-chosen text made one short printable line."""
    words = " ".join(_CONTROL.sub(" ", str(text)).split())
    return words if len(words) <= _REASON_CHARS else words[: _REASON_CHARS - 1] + "…"


def _is_auth_fault(fault: zeep.exceptions.Fault) -> bool:
    codes = [str(getattr(code, "localname", code)) for code in fault.subcodes or ()]
    codes.append(str(fault.code or ""))
    if any(code.rsplit(":", 1)[-1] in ("NotAuthorized", "FailedAuthentication") for code in codes):
        return True
    return "not authorized" in str(fault.message or "").lower()


def _translate(url: str, exc: BaseException) -> OnvifError | None:
    """The OnvifError ``exc`` means, or None for an exception no device causes (a bug)."""
    if isinstance(exc, OnvifError):
        return exc
    where = safe_url(url)
    if isinstance(exc, AnswerRefused):
        return BadAnswer(f"{where}: {exc.why}")
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return DeviceTimeout(f"{where} did not answer in time")
    if isinstance(exc, zeep.exceptions.Fault):
        if _is_auth_fault(exc):
            return NotAuthorized(f"{where} refused the user name and password")
        return DeviceFault(f"{where} refused the request: {device_words(exc.message)}")
    if isinstance(exc, zeep.exceptions.TransportError):
        if exc.status_code in (401, 403):
            return NotAuthorized(f"{where} refused the user name and password")
        if exc.status_code == 200:
            return BadAnswer(f"{where}: its answer is not valid XML")
        return BadAnswer(f"{where} answered HTTP {exc.status_code} without a SOAP envelope")
    forbidden = (
        zeep.exceptions.DTDForbidden,
        zeep.exceptions.EntitiesForbidden,
        zeep.exceptions.ExternalReferenceForbidden,
    )
    if isinstance(exc, forbidden):
        return BadAnswer(f"{where}: its answer declares a DTD or entities (refused unread)")
    if isinstance(exc, zeep.exceptions.Error):
        return BadAnswer(f"{where}: its answer is not what ONVIF describes")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return DeviceUnreachable(f"{where} closed the connection without answering")
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ClientOSError | OSError):
        return DeviceUnreachable(f"{where} cannot be reached ({type(exc).__name__})")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return BadAnswer(f"{where}: its answer could not be read ({type(exc).__name__})")
    if isinstance(exc, aiohttp.ClientError):
        return OnvifError(f"{where}: {type(exc).__name__}")
    if type(exc).__module__.startswith("onvif"):
        # onvif-zeep-async's ONVIFError wraps the real cause ("raise ONVIFError(err) from
        # err"); its own messages ("Device doesn't support service ...") have none.
        cause = exc.__cause__
        if cause is not None and cause is not exc:
            return _translate(url, cause)
        if type(exc).__name__ == "ONVIFAuthError":
            return NotAuthorized(f"{where} refused the user name and password")
        if type(exc).__name__ == "ONVIFTimeoutError":
            return DeviceTimeout(f"{where} did not answer in time")
        return OnvifError(f"{where}: {device_words(exc)}")
    return None


@asynccontextmanager
async def _translating(url: str) -> AsyncIterator[None]:
    try:
        yield
    except Exception as exc:
        mapped = _translate(url, exc)
        if mapped is None or mapped is exc:
            raise
        raise mapped from exc


def translate_errors(url: str) -> AbstractAsyncContextManager[None]:
    """Inside it, aiohttp, zeep, lxml, onvif-zeep-async and timeout exceptions become
    OnvifError subclasses naming ``url`` (without credentials); anything else (a bug) goes
    through unchanged."""
    return _translating(url)


@functools.cache
def _camera_class() -> type[ONVIFCamera]:
    """ONVIFCamera that asks the device service at its exact URL (the library assumes
    ``/onvif/device_service`` on the given port) and hardens every service it creates."""
    from onvif import ONVIFCamera  # see the module's docstring

    class HardenedCamera(ONVIFCamera):  # type: ignore[misc]
        device_url: str = ""

        def get_definition(self, name: str, port_type: str | None = None) -> Any:
            xaddr, wsdl, binding = super().get_definition(name, port_type)
            if name == "devicemgmt":
                xaddr = self.device_url
            return xaddr, wsdl, binding

        async def create_onvif_service(self, name: str, *args: Any, **kwargs: Any) -> Any:
            service = await super().create_onvif_service(name, *args, **kwargs)
            harden(service, authenticated=self.user is not None)
            return service

    return HardenedCamera


class OnvifClient:
    """One device; async context manager. Connects (update_xaddrs with adjust_time=True so a
    skewed device clock still authenticates), maps every failure to an OnvifError subclass
    with a reason naming the device URL (never credentials)."""

    def __init__(
        self, url: str, username: str | None, password: str | None, *, timeout_s: float
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadAnswer(f"{safe_url(url)} is not an http(s) device service URL")
        self.url = safe_url(url)
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._username = username or None
        self._password = password if username else None
        self._timeout_s = timeout_s
        self._camera: ONVIFCamera | None = None

    @property
    def camera(self) -> ONVIFCamera:
        """The connected library object, for what this class does not wrap (pull points).
        Calls on it are not bounded by ``timeout_s``: wrap them in :func:`translate_errors`
        and a timeout."""
        if self._camera is None:
            raise RuntimeError("OnvifClient used outside 'async with'")
        return self._camera

    async def __aenter__(self) -> OnvifClient:
        camera = _camera_class()(
            self._host,
            self._port,
            self._username,
            self._password,
            no_cache=True,  # the WSDLs load from the package; no cache file in $HOME
            adjust_time=True,
        )
        camera.device_url = self.url
        self._camera = camera
        try:
            # Not timed: building a service reads and parses its WSDL from the package
            # (the first time in a process: a second or more of CPU), no device involved.
            async with translate_errors(self.url):
                await camera.create_devicemgmt_service()
            async with self._bounded():
                try:
                    await camera.update_xaddrs()
                except (AttributeError, KeyError, TypeError, ValueError) as exc:
                    # The library reads the clock and services answers itself: a field
                    # missing there means a body ONVIF does not describe.
                    raise BadAnswer(f"{self.url}: its answer is not what ONVIF describes") from exc
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            # Closing the sessions of a dead device: nothing is left to release.
            with contextlib.suppress(TimeoutError, aiohttp.ClientError, OSError):
                await asyncio.wait_for(camera.close(), timeout=self._timeout_s)

    @asynccontextmanager
    async def _bounded(self) -> AsyncIterator[None]:
        async with translate_errors(self.url):
            async with asyncio.timeout(self._timeout_s):
                yield

    def offers(self, service: str) -> bool:
        """Whether the device gave an address for ``service`` (one of :data:`SERVICES`)."""
        from onvif.definition import SERVICES as LIBRARY_SERVICES  # see the module docstring

        if service not in SERVICES:
            raise ValueError(f"unknown ONVIF service {service!r}")
        return service == "devicemgmt" or LIBRARY_SERVICES[service]["ns"] in self.camera.xaddrs

    async def _service(self, service: str) -> Any:
        camera = self.camera
        if not self.offers(service):
            if service == "ptz":
                raise NoPtz(f"{self.url} has no PTZ service")
            raise DeviceFault(f"{self.url} does not offer the {service} service")
        async with translate_errors(self.url):  # not timed: see __aenter__
            return await camera.create_onvif_service(service)

    async def call(self, service: str, operation: str, params: dict[str, Any] | None = None) -> Any:
        """``service``: "devicemgmt" | "media" | "ptz" | "events"; returns the zeep object."""
        proxy = await self._service(service)
        async with self._bounded():
            return await getattr(proxy, operation)(params)

    async def clock_offset_s(self) -> float:
        """Device UTC minus server UTC, taken at the request's midpoint (ONVIF gives whole
        seconds, so the reading is good to about a second plus half the round trip)."""
        proxy = await self._service("devicemgmt")
        async with self._bounded():
            sent = time.time()
            answer = await proxy.authless_GetSystemDateAndTime()
            received = time.time()
        try:
            utc = answer.UTCDateTime
            device = datetime(
                utc.Date.Year,
                utc.Date.Month,
                utc.Date.Day,
                utc.Time.Hour,
                utc.Time.Minute,
                utc.Time.Second,
                tzinfo=UTC,
            )
        except (AttributeError, TypeError, ValueError) as exc:
            raise BadAnswer(f"{self.url}: its clock reading has no valid UTC time") from exc
        return device.timestamp() - (sent + received) / 2

    async def profiles(self) -> tuple[MediaProfile, ...]:
        """Its media profiles with their RTSP stream URIs (credentials removed)."""
        answer = await self.call("media", "GetProfiles")
        found: list[MediaProfile] = []
        for profile in answer or ():
            token = getattr(profile, "token", None)
            if not token:
                continue
            encoder = getattr(profile, "VideoEncoderConfiguration", None)
            resolution = getattr(encoder, "Resolution", None)
            found.append(
                MediaProfile(
                    token=str(token),
                    name=device_words(getattr(profile, "Name", "") or token),
                    encoding=_text(getattr(encoder, "Encoding", None)),
                    width=_int(getattr(resolution, "Width", None)),
                    height=_int(getattr(resolution, "Height", None)),
                    stream_uri=await self._stream_uri(str(token)),
                    ptz=getattr(profile, "PTZConfiguration", None) is not None,
                )
            )
        return tuple(found)

    async def _stream_uri(self, token: str) -> str | None:
        try:
            answer = await self.call(
                "media", "GetStreamUri", {"StreamSetup": _STREAM_SETUP, "ProfileToken": token}
            )
        except DeviceFault:
            return None  # a profile without an RTSP stream (a metadata-only profile)
        uri = getattr(answer, "Uri", None)
        return safe_url(str(uri)) if uri else None


def _text(value: object) -> str | None:
    return None if value is None else device_words(value)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
