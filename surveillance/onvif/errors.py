"""What goes wrong speaking to an ONVIF device, each with the outcome a discovery result
names and the HTTP status an API answer carries."""

from __future__ import annotations

from typing import ClassVar

from surveillance.errors import SurveillanceError


class OnvifError(SurveillanceError):
    """A device could not be asked or did not answer usefully. ``outcome`` is the short word
    a discovery result shows; the message says why, for a person, without credentials."""

    status_code = 502
    outcome: ClassVar[str] = "error"


class DeviceUnreachable(OnvifError):
    """No connection: refused, no route, name unknown."""

    status_code = 503
    outcome = "unreachable"


class DeviceTimeout(OnvifError):
    """The device took too long to answer (or to finish answering)."""

    status_code = 504
    outcome = "timeout"


class NotAuthorized(OnvifError):
    """The device refused the user name and password (a SOAP NotAuthorized fault or 401)."""

    status_code = 502
    outcome = "unauthorized"


class BadAnswer(OnvifError):
    """The answer is not ONVIF: malformed XML, a DTD or entities (refused unread), a body the
    WSDL does not describe, a huge answer."""

    status_code = 502
    outcome = "malformed"


class DeviceFault(OnvifError):
    """The device answered with a SOAP fault other than NotAuthorized (it refused the
    request: unknown preset, no PTZ on this profile...)."""

    status_code = 502
    outcome = "refused"


class NoPtz(OnvifError):
    """The device (or this camera's configuration) has no PTZ."""

    status_code = 409
    outcome = "no-ptz"
