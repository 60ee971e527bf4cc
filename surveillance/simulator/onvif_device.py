"""One simulated ONVIF camera: an aiohttp server speaking the device, media, PTZ and events
services (ONVIF Core, Media, PTZ and Event Service specifications) with WS-Security digest
authentication checked against the device's own clock.

The device runs on an asyncio loop (the fleet's thread); its public methods (position,
commands, raise_event, set_fault) may be called from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiohttp import web
from lxml import etree  # type: ignore[import-untyped]

from surveillance.simulator import onvif_answers as answers
from surveillance.simulator import onvif_faults as faults
from surveillance.simulator.onvif_events import EventBroker
from surveillance.simulator.onvif_ptz import Position, PresetsFull, PtzMechanics, ViewCallback
from surveillance.simulator.onvif_soap import (
    MAX_REQUEST_BYTES,
    NS,
    SoapFault,
    SoapRequest,
    SoapRequestError,
    envelope,
    fault,
    find,
    float_attr,
    invalid,
    parse_request,
    text,
    username_token_ok,
    xs_duration_s,
)
from surveillance.simulator.onvif_specs import (
    DEVICE_FAULTS,
    SLOW_ANSWER_S,
    DeviceCommand,
    OnvifDeviceSpec,
)

TICK_S = 0.05  # 20 Hz, the PTZ ticker's period while a continuous move lasts
# ONVIF Core 5.9.1: these may be answered before authentication (the client needs the clock
# to sign its requests, and the service addresses to find the others).
PRE_AUTH = frozenset({"GetSystemDateAndTime", "GetServices", "GetCapabilities"})
COMMANDS_KEPT = 10_000
SERVICE_PATHS = {
    "device_service": "tds",
    "media_service": "trt",
    "ptz_service": "tptz",
    "events_service": "tev",
}
# Which request namespaces each path takes: a pull point also takes WS-BaseNotification's
# Renew and Unsubscribe.
PATH_PREFIXES = {"tds": {"tds"}, "trt": {"trt"}, "tptz": {"tptz"}, "tev": {"tev"}}
PULLPOINT_PREFIXES = {"tev", "wsnt"}
PREFIX_OF = {namespace: prefix for prefix, namespace in NS.items()}

Handler = Callable[[SoapRequest], "etree._Element | Awaitable[etree._Element]"]


class SimulatedDevice:
    def __init__(self, spec: OnvifDeviceSpec, on_view: ViewCallback | None = None) -> None:
        self.spec = spec
        self.url = spec.url
        self._ptz = PtzMechanics(on_view)
        self._lock = threading.Lock()
        self._commands: deque[DeviceCommand] = deque(maxlen=COMMANDS_KEPT)
        self._fault = spec.fault
        self.slow_answer_s = SLOW_ANSWER_S  # how late the "slow" fault answers (tests lower it)
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._move_started = asyncio.Event()
        self.events = EventBroker(spec, self.device_now)
        self._handlers: dict[tuple[str, str], Handler] = {
            **self._device_handlers(),
            **self._media_handlers(),
            **(self._ptz_handlers() if spec.ptz else {}),
            **(self.events.handlers() if spec.events else {}),
        }

    # -- public API (any thread) -----------------------------------------------------------

    def position(self) -> Position:
        return self._ptz.position()

    def moving(self) -> bool:
        return self._ptz.moving()

    def presets(self) -> dict[str, str]:
        return {preset.token: preset.name for preset in self._ptz.presets()}

    def commands(self) -> list[DeviceCommand]:
        with self._lock:
            return list(self._commands)

    def raise_event(self, kind: Literal["motion", "tamper"], state: bool) -> None:
        self.events.raise_event(kind, state)

    def set_fault(self, fault_name: str | None) -> None:
        if fault_name is not None and fault_name not in DEVICE_FAULTS:
            raise ValueError(f"unknown device fault {fault_name!r}")
        with self._lock:
            self._fault = fault_name

    @property
    def fault(self) -> str | None:
        with self._lock:
            return self._fault

    def device_now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.spec.clock_offset_s)

    # -- life (the device's loop) ----------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app.router.add_post("/onvif/{service}", self._handle)
        app.router.add_post("/onvif/pullpoint/{number}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.spec.address, self.spec.http_port, reuse_address=True)
        await site.start()
        self.events.attach(asyncio.get_running_loop())
        self._ticker = asyncio.create_task(self._tick(), name=f"ptz-{self.spec.address}")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        self.events.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _tick(self) -> None:
        while True:
            if not self._ptz.moving():
                self._move_started.clear()
                await self._move_started.wait()
            await asyncio.sleep(TICK_S)
            self._ptz.advance()

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        fault_name = self.fault
        if fault_name == "hang":
            await asyncio.Event().wait()  # until the server shuts down
        if fault_name == "slow":
            await asyncio.sleep(self.slow_answer_s)
        if fault_name == "huge":
            return await faults.stream_huge(request)
        status, body = await self._answer(request)
        if fault_name == "hostile-xml":
            body = faults.hostile(body)
        elif fault_name == "malformed":
            body = faults.malformed(body)
        elif fault_name == "not-onvif":
            status, body = 200, faults.NOT_ONVIF
        return web.Response(status=status, body=body, content_type="application/soap+xml")

    async def _answer(self, request: web.Request) -> tuple[int, bytes]:
        try:
            soap = parse_request(await request.read())
            prefix = PREFIX_OF.get(soap.namespace, "")
            if prefix not in self._prefixes_of(request):
                raise SoapFault(400, "env:Sender", "ter:InvalidArgVal", "wrong service")
            if soap.name not in PRE_AUTH and not username_token_ok(
                soap.header, self.spec.username, self.spec.password, self.device_now()
            ):
                raise SoapFault(400, "env:Sender", "ter:NotAuthorized", "Sender not Authorized")
            handler = self._handlers.get((prefix, soap.name))
            if handler is None:
                raise SoapFault(
                    500, "env:Receiver", "ter:ActionNotSupported", f"{soap.name} not supported"
                )
            if "number" in request.match_info:
                soap = SoapRequest(soap.header, soap.operation, request.match_info["number"])
            answer = handler(soap)
            if isinstance(answer, Awaitable):
                answer = await answer
            return 200, envelope(answer)
        except SoapRequestError as exc:
            return 400, fault("env:Sender", "ter:WellFormed", str(exc))
        except web.HTTPRequestEntityTooLarge:
            return 413, fault("env:Sender", "ter:WellFormed", "request too large")
        except SoapFault as exc:
            return exc.status, fault(exc.code, exc.subcode, exc.reason)

    def _prefixes_of(self, request: web.Request) -> set[str]:
        if "number" in request.match_info:
            if not self.spec.events:
                raise web.HTTPNotFound()
            return PULLPOINT_PREFIXES
        service = SERVICE_PATHS.get(request.match_info["service"])
        if service is None or (service == "tptz" and not self.spec.ptz):
            raise web.HTTPNotFound()
        if service == "tev" and not self.spec.events:
            raise web.HTTPNotFound()
        return PATH_PREFIXES[service]

    def _record(self, operation: str, **args: Any) -> None:
        with self._lock:
            self._commands.append(DeviceCommand(time.monotonic(), operation, args))

    # -- device and media ------------------------------------------------------------------

    def _device_handlers(self) -> dict[tuple[str, str], Handler]:
        spec = self.spec
        return {
            ("tds", "GetSystemDateAndTime"): lambda _: answers.system_date_and_time(
                self.device_now()
            ),
            ("tds", "GetDeviceInformation"): lambda _: answers.device_information(spec),
            ("tds", "GetCapabilities"): lambda _: answers.capabilities(spec),
            ("tds", "GetServices"): lambda _: answers.services(spec),
            ("tds", "GetScopes"): lambda _: answers.scopes(spec),
            ("tds", "GetHostname"): lambda _: answers.hostname(spec),
        }

    def _profile(self, soap: SoapRequest) -> str:
        found = soap.operation.find(f"{{{soap.namespace}}}ProfileToken")
        token = None if found is None or found.text is None else str(found.text).strip()
        if token not in answers.profile_tokens(self.spec):
            raise SoapFault(400, "env:Sender", "ter:InvalidArgVal/ter:NoProfile", "no such profile")
        return token

    def _stream_uri(self, soap: SoapRequest) -> etree._Element:
        token = self._profile(soap)
        uri = self.spec.rtsp_main if token == answers.MAIN_PROFILE else (self.spec.rtsp_sub or "")
        self._record("GetStreamUri", profile=token)
        return answers.stream_uri(uri)

    def _media_handlers(self) -> dict[tuple[str, str], Handler]:
        return {
            ("trt", "GetProfiles"): lambda _: answers.profiles(self.spec),
            ("trt", "GetStreamUri"): self._stream_uri,
            ("trt", "GetVideoSources"): lambda _: answers.video_sources(),
        }

    # -- PTZ -------------------------------------------------------------------------------

    def _ptz_handlers(self) -> dict[tuple[str, str], Handler]:
        return {
            ("tptz", "GetNodes"): lambda _: answers.nodes(),
            ("tptz", "GetConfigurations"): lambda _: answers.configurations(),
            ("tptz", "GetConfiguration"): self._get_configuration,
            ("tptz", "GetStatus"): self._status,
            ("tptz", "ContinuousMove"): self._continuous_move,
            ("tptz", "Stop"): self._stop,
            ("tptz", "AbsoluteMove"): self._absolute_move,
            ("tptz", "RelativeMove"): self._relative_move,
            ("tptz", "GetPresets"): self._presets,
            ("tptz", "SetPreset"): self._set_preset,
            ("tptz", "GotoPreset"): self._goto_preset,
            ("tptz", "RemovePreset"): self._remove_preset,
            ("tptz", "GotoHomePosition"): self._goto_home,
            ("tptz", "SetHomePosition"): self._set_home,
        }

    def _get_configuration(self, soap: SoapRequest) -> etree._Element:
        if text(soap.operation, "tptz:PTZConfigurationToken") != answers.PTZ_CONFIG:
            raise SoapFault(400, "env:Sender", "ter:InvalidArgVal/ter:NoEntity", "no such config")
        return answers.configuration()

    def _status(self, soap: SoapRequest) -> etree._Element:
        self._profile(soap)
        return answers.status(self._ptz.position(), self._ptz.moving(), self.device_now())

    def _vector(
        self, soap: SoapRequest, name: str
    ) -> tuple[float | None, float | None, float | None]:
        vector = find(soap.operation, f"tptz:{name}")
        pan_tilt = find(vector, "tt:PanTilt")
        return (
            float_attr(pan_tilt, "x"),
            float_attr(pan_tilt, "y"),
            float_attr(find(vector, "tt:Zoom"), "x"),
        )

    def _continuous_move(self, soap: SoapRequest) -> etree._Element:
        profile = self._profile(soap)
        pan, tilt, zoom = self._vector(soap, "Velocity")
        timeout_text = text(soap.operation, "tptz:Timeout")
        timeout_s = xs_duration_s(timeout_text)
        if timeout_text is not None and timeout_s is None:
            raise invalid("Timeout is not an xs:duration")
        self._ptz.continuous(pan or 0.0, tilt or 0.0, zoom or 0.0, timeout_s)
        self._move_started.set()
        self._record(
            "ContinuousMove", profile=profile, pan=pan, tilt=tilt, zoom=zoom, timeout_s=timeout_s
        )
        return answers.empty("tptz", "ContinuousMove")

    def _stop(self, soap: SoapRequest) -> etree._Element:
        profile = self._profile(soap)
        pan_tilt = text(soap.operation, "tptz:PanTilt") != "false"
        zoom = text(soap.operation, "tptz:Zoom") != "false"
        self._ptz.advance()
        self._ptz.stop(pan_tilt, zoom)
        self._record("Stop", profile=profile, pan_tilt=pan_tilt, zoom=zoom)
        return answers.empty("tptz", "Stop")

    def _absolute_move(self, soap: SoapRequest) -> etree._Element:
        profile = self._profile(soap)
        pan, tilt, zoom = self._vector(soap, "Position")
        now = self._ptz.position()
        target = (
            now[0] if pan is None else pan,
            now[1] if tilt is None else tilt,
            now[2] if zoom is None else zoom,
        )
        self._ptz.jump(*target)
        self._record("AbsoluteMove", profile=profile, pan=pan, tilt=tilt, zoom=zoom)
        return answers.empty("tptz", "AbsoluteMove")

    def _relative_move(self, soap: SoapRequest) -> etree._Element:
        profile = self._profile(soap)
        pan, tilt, zoom = self._vector(soap, "Translation")
        self._ptz.relative(pan or 0.0, tilt or 0.0, zoom or 0.0)
        self._record("RelativeMove", profile=profile, pan=pan, tilt=tilt, zoom=zoom)
        return answers.empty("tptz", "RelativeMove")

    def _presets(self, soap: SoapRequest) -> etree._Element:
        self._profile(soap)
        return answers.presets(self._ptz.presets())

    def _set_preset(self, soap: SoapRequest) -> etree._Element:
        profile = self._profile(soap)
        name = text(soap.operation, "tptz:PresetName")
        token = text(soap.operation, "tptz:PresetToken")
        if token is not None and self._ptz.preset(token) is None:
            raise SoapFault(400, "env:Sender", "ter:InvalidArgVal/ter:NoToken", "no such preset")
        try:
            token = self._ptz.set_preset(name, token)
        except PresetsFull:
            raise SoapFault(
                500, "env:Receiver", "ter:Action/ter:TooManyPresets", "presets full"
            ) from None
        self._record("SetPreset", profile=profile, name=name, token=token)
        return answers.set_preset(token)

    def _goto_preset(self, soap: SoapRequest) -> etree._Element:
        profile = self._profile(soap)
        token = text(soap.operation, "tptz:PresetToken") or ""
        preset = self._ptz.preset(token)
        if preset is None:
            raise SoapFault(400, "env:Sender", "ter:InvalidArgVal/ter:NoToken", "no such preset")
        self._ptz.jump(*preset.position)
        self._record("GotoPreset", profile=profile, token=token)
        return answers.empty("tptz", "GotoPreset")

    def _remove_preset(self, soap: SoapRequest) -> etree._Element:
        profile = self._profile(soap)
        token = text(soap.operation, "tptz:PresetToken") or ""
        if not self._ptz.remove_preset(token):
            raise SoapFault(400, "env:Sender", "ter:InvalidArgVal/ter:NoToken", "no such preset")
        self._record("RemovePreset", profile=profile, token=token)
        return answers.empty("tptz", "RemovePreset")

    def _goto_home(self, soap: SoapRequest) -> etree._Element:
        profile = self._profile(soap)
        self._ptz.home()
        self._record("GotoHomePosition", profile=profile)
        return answers.empty("tptz", "GotoHomePosition")

    def _set_home(self, soap: SoapRequest) -> etree._Element:
        profile = self._profile(soap)
        self._ptz.set_home()
        self._record("SetHomePosition", profile=profile)
        return answers.empty("tptz", "SetHomePosition")
