"""Answers of the device, media and PTZ services, element by element as the ONVIF schemas
(onvif.xsd, devicemgmt.wsdl, media.wsdl, ptz.wsdl) order them: a client deserializing with
zeep in strict mode rejects an element out of order or a required one missing."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from lxml import etree  # type: ignore[import-untyped]

from surveillance.simulator.onvif_ptz import Position, Preset
from surveillance.simulator.onvif_soap import NS, el, xs_datetime
from surveillance.simulator.onvif_specs import OnvifDeviceSpec

SPACES = "http://www.onvif.org/ver10/tptz/"
PT_POSITION = SPACES + "PanTiltSpaces/PositionGenericSpace"
ZOOM_POSITION = SPACES + "ZoomSpaces/PositionGenericSpace"
PT_TRANSLATION = SPACES + "PanTiltSpaces/TranslationGenericSpace"
ZOOM_TRANSLATION = SPACES + "ZoomSpaces/TranslationGenericSpace"
PT_VELOCITY = SPACES + "PanTiltSpaces/VelocityGenericSpace"
ZOOM_VELOCITY = SPACES + "ZoomSpaces/VelocityGenericSpace"
PT_SPEED = SPACES + "PanTiltSpaces/GenericSpeedSpace"
ZOOM_SPEED = SPACES + "ZoomSpaces/ZoomGenericSpeedSpace"

PTZ_NODE = "PTZNode_1"
PTZ_CONFIG = "PTZConfig_1"
VIDEO_SOURCE = "VideoSource_1"
VIDEO_SOURCE_CONFIG = "VideoSourceConfig_1"
# (token, name, width, height) of the media profiles; Profile_2 only with a sub stream.
PROFILES = (("Profile_1", "main", 1280, 720), ("Profile_2", "sub", 640, 360))
MAIN_PROFILE = PROFILES[0][0]
MAX_PRESETS_ADVERTISED = 64


def _b(value: bool) -> str:
    return "true" if value else "false"


def _f(value: float) -> str:
    return f"{value:.6g}"


def service_paths(spec: OnvifDeviceSpec) -> dict[str, str]:
    """namespace -> service path, the services this device has."""
    paths = {NS["tds"]: "/onvif/device_service", NS["trt"]: "/onvif/media_service"}
    if spec.ptz:
        paths[NS["tptz"]] = "/onvif/ptz_service"
    if spec.events:
        paths[NS["tev"]] = "/onvif/events_service"
    return paths


def system_date_and_time(device_now: datetime) -> etree._Element:
    utc = device_now
    return el(
        "tds:GetSystemDateAndTimeResponse",
        el(
            "tds:SystemDateAndTime",
            el("tt:DateTimeType", "Manual"),
            el("tt:DaylightSavings", "false"),
            el("tt:TimeZone", el("tt:TZ", "UTC0")),
            el(
                "tt:UTCDateTime",
                el(
                    "tt:Time",
                    el("tt:Hour", str(utc.hour)),
                    el("tt:Minute", str(utc.minute)),
                    el("tt:Second", str(utc.second)),
                ),
                el(
                    "tt:Date",
                    el("tt:Year", str(utc.year)),
                    el("tt:Month", str(utc.month)),
                    el("tt:Day", str(utc.day)),
                ),
            ),
        ),
    )


def device_information(spec: OnvifDeviceSpec) -> etree._Element:
    return el(
        "tds:GetDeviceInformationResponse",
        el("tds:Manufacturer", spec.manufacturer),
        el("tds:Model", spec.model),
        el("tds:FirmwareVersion", spec.firmware),
        el("tds:SerialNumber", spec.serial),
        el("tds:HardwareId", f"{spec.model}-hw1"),
    )


def capabilities(spec: OnvifDeviceSpec) -> etree._Element:
    base = spec.base_url
    return el(
        "tds:GetCapabilitiesResponse",
        el(
            "tds:Capabilities",
            el("tt:Device", el("tt:XAddr", base + "/onvif/device_service")),
            el(
                "tt:Events",
                el("tt:XAddr", base + "/onvif/events_service"),
                el("tt:WSSubscriptionPolicySupport", "false"),
                el("tt:WSPullPointSupport", "true"),
                el("tt:WSPausableSubscriptionManagerInterfaceSupport", "false"),
            )
            if spec.events
            else None,
            el(
                "tt:Media",
                el("tt:XAddr", base + "/onvif/media_service"),
                el(
                    "tt:StreamingCapabilities",
                    el("tt:RTPMulticast", "false"),
                    el("tt:RTP_TCP", "true"),
                    el("tt:RTP_RTSP_TCP", "true"),
                ),
            ),
            el("tt:PTZ", el("tt:XAddr", base + "/onvif/ptz_service")) if spec.ptz else None,
        ),
    )


def services(spec: OnvifDeviceSpec) -> etree._Element:
    answer = el("tds:GetServicesResponse")
    versions = {NS["tptz"]: ("2", "60")}
    for namespace, path in service_paths(spec).items():
        major, minor = versions.get(namespace, ("2", "60"))
        answer.append(
            el(
                "tds:Service",
                el("tds:Namespace", namespace),
                el("tds:XAddr", spec.base_url + path),
                el("tds:Version", el("tt:Major", major), el("tt:Minor", minor)),
            )
        )
    return answer


def scope_items(spec: OnvifDeviceSpec) -> list[str]:
    """ONVIF Core 7.3.2.2 scope URIs (the same go into WS-Discovery ProbeMatches)."""
    base = "onvif://www.onvif.org/"
    return [
        base + "type/video_encoder",
        base + ("type/ptz" if spec.ptz else "type/Network_Video_Transmitter"),
        base + "name/" + quote(spec.name, safe=""),
        base + "hardware/" + quote(spec.model, safe=""),
        base + "location/" + quote(spec.location, safe=""),
    ]


def scopes(spec: OnvifDeviceSpec) -> etree._Element:
    answer = el("tds:GetScopesResponse")
    for item in scope_items(spec):
        answer.append(el("tds:Scopes", el("tt:ScopeDef", "Fixed"), el("tt:ScopeItem", item)))
    return answer


def hostname(spec: OnvifDeviceSpec) -> etree._Element:
    name = "sim-" + spec.address.replace(".", "-")
    return el(
        "tds:GetHostnameResponse",
        el("tds:HostnameInformation", el("tt:FromDHCP", "false"), el("tt:Name", name)),
    )


def profile_tokens(spec: OnvifDeviceSpec) -> list[str]:
    return [token for token, *_ in PROFILES[: 2 if spec.rtsp_sub is not None else 1]]


def _video_encoder(index: int, width: int, height: int) -> etree._Element:
    return el(
        "tt:VideoEncoderConfiguration",
        el("tt:Name", f"VideoEncoder_{index}"),
        el("tt:UseCount", "1"),
        el("tt:Encoding", "H264"),
        el("tt:Resolution", el("tt:Width", str(width)), el("tt:Height", str(height))),
        el("tt:Quality", "5"),
        el(
            "tt:RateControl",
            el("tt:FrameRateLimit", "10"),
            el("tt:EncodingInterval", "1"),
            el("tt:BitrateLimit", "2048" if index == 1 else "512"),
        ),
        el("tt:H264", el("tt:GovLength", "10"), el("tt:H264Profile", "Main")),
        el(
            "tt:Multicast",
            el("tt:Address", el("tt:Type", "IPv4"), el("tt:IPv4Address", "0.0.0.0")),
            el("tt:Port", "0"),
            el("tt:TTL", "1"),
            el("tt:AutoStart", "false"),
        ),
        el("tt:SessionTimeout", "PT60S"),
        token=f"VideoEncoder_{index}",
    )


def ptz_configuration(tag: str = "tt:PTZConfiguration") -> etree._Element:
    return el(
        tag,
        el("tt:Name", "PTZ"),
        el("tt:UseCount", "1"),
        el("tt:NodeToken", PTZ_NODE),
        el("tt:DefaultAbsolutePantTiltPositionSpace", PT_POSITION),
        el("tt:DefaultAbsoluteZoomPositionSpace", ZOOM_POSITION),
        el("tt:DefaultRelativePanTiltTranslationSpace", PT_TRANSLATION),
        el("tt:DefaultRelativeZoomTranslationSpace", ZOOM_TRANSLATION),
        el("tt:DefaultContinuousPanTiltVelocitySpace", PT_VELOCITY),
        el("tt:DefaultContinuousZoomVelocitySpace", ZOOM_VELOCITY),
        el("tt:DefaultPTZTimeout", "PT10S"),
        el("tt:PanTiltLimits", _space2d("tt:Range", PT_POSITION, -1, 1)),
        el("tt:ZoomLimits", _space1d("tt:Range", ZOOM_POSITION, 0, 1)),
        token=PTZ_CONFIG,
    )


def profiles(spec: OnvifDeviceSpec) -> etree._Element:
    answer = el("trt:GetProfilesResponse")
    for index, (token, name, width, height) in enumerate(PROFILES, start=1):
        if token not in profile_tokens(spec):
            continue
        answer.append(
            el(
                "trt:Profiles",
                el("tt:Name", name),
                el(
                    "tt:VideoSourceConfiguration",
                    el("tt:Name", "VideoSourceConfig_1"),
                    el("tt:UseCount", str(len(profile_tokens(spec)))),
                    el("tt:SourceToken", VIDEO_SOURCE),
                    el("tt:Bounds", x="0", y="0", width="1280", height="720"),
                    token=VIDEO_SOURCE_CONFIG,
                ),
                _video_encoder(index, width, height),
                ptz_configuration() if spec.ptz else None,
                token=token,
                fixed="true",
            )
        )
    return answer


def stream_uri(uri: str) -> etree._Element:
    return el(
        "trt:GetStreamUriResponse",
        el(
            "trt:MediaUri",
            el("tt:Uri", uri),
            el("tt:InvalidAfterConnect", "false"),
            el("tt:InvalidAfterReboot", "false"),
            el("tt:Timeout", "PT0S"),
        ),
    )


def video_sources() -> etree._Element:
    return el(
        "trt:GetVideoSourcesResponse",
        el(
            "trt:VideoSources",
            el("tt:Framerate", "10"),
            el("tt:Resolution", el("tt:Width", "1280"), el("tt:Height", "720")),
            token=VIDEO_SOURCE,
        ),
    )


def _space2d(tag: str, uri: str, low: float, high: float) -> etree._Element:
    return el(
        tag,
        el("tt:URI", uri),
        el("tt:XRange", el("tt:Min", _f(low)), el("tt:Max", _f(high))),
        el("tt:YRange", el("tt:Min", _f(low)), el("tt:Max", _f(high))),
    )


def _space1d(tag: str, uri: str, low: float, high: float) -> etree._Element:
    return el(
        tag, el("tt:URI", uri), el("tt:XRange", el("tt:Min", _f(low)), el("tt:Max", _f(high)))
    )


def nodes() -> etree._Element:
    return el(
        "tptz:GetNodesResponse",
        el(
            "tptz:PTZNode",
            el("tt:Name", "PTZ"),
            el(
                "tt:SupportedPTZSpaces",
                _space2d("tt:AbsolutePanTiltPositionSpace", PT_POSITION, -1, 1),
                _space1d("tt:AbsoluteZoomPositionSpace", ZOOM_POSITION, 0, 1),
                _space2d("tt:RelativePanTiltTranslationSpace", PT_TRANSLATION, -2, 2),
                _space1d("tt:RelativeZoomTranslationSpace", ZOOM_TRANSLATION, -1, 1),
                _space2d("tt:ContinuousPanTiltVelocitySpace", PT_VELOCITY, -1, 1),
                _space1d("tt:ContinuousZoomVelocitySpace", ZOOM_VELOCITY, -1, 1),
                _space1d("tt:PanTiltSpeedSpace", PT_SPEED, 0, 1),
                _space1d("tt:ZoomSpeedSpace", ZOOM_SPEED, 0, 1),
            ),
            el("tt:MaximumNumberOfPresets", str(MAX_PRESETS_ADVERTISED)),
            el("tt:HomeSupported", "true"),
            token=PTZ_NODE,
            FixedHomePosition="false",
        ),
    )


def configurations() -> etree._Element:
    return el("tptz:GetConfigurationsResponse", ptz_configuration("tptz:PTZConfiguration"))


def configuration() -> etree._Element:
    return el("tptz:GetConfigurationResponse", ptz_configuration("tptz:PTZConfiguration"))


def _vector(tag: str, position: Position) -> etree._Element:
    pan, tilt, zoom = position
    return el(
        tag,
        el("tt:PanTilt", x=_f(pan), y=_f(tilt), space=PT_POSITION),
        el("tt:Zoom", x=_f(zoom), space=ZOOM_POSITION),
    )


def status(position: Position, moving: bool, device_now: datetime) -> etree._Element:
    state = "MOVING" if moving else "IDLE"
    return el(
        "tptz:GetStatusResponse",
        el(
            "tptz:PTZStatus",
            _vector("tt:Position", position),
            el("tt:MoveStatus", el("tt:PanTilt", state), el("tt:Zoom", state)),
            el("tt:UtcTime", xs_datetime(device_now)),
        ),
    )


def presets(items: list[Preset]) -> etree._Element:
    answer = el("tptz:GetPresetsResponse")
    for preset in items:
        answer.append(
            el(
                "tptz:Preset",
                el("tt:Name", preset.name),
                _vector("tt:PTZPosition", preset.position),
                token=preset.token,
            )
        )
    return answer


def set_preset(token: str) -> etree._Element:
    return el("tptz:SetPresetResponse", el("tptz:PresetToken", token))


def empty(prefix: str, operation: str) -> etree._Element:
    """The answer of an operation that returns nothing (ContinuousMoveResponse, ...)."""
    return el(f"{prefix}:{operation}Response")
