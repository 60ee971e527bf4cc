"""Exceptions shared across layers; each names what went wrong for the person who reads it.

Every error raised on purpose derives from :class:`SurveillanceError` and carries the HTTP
status it means (and ``Retry-After`` where waiting helps). The API maps them in one place,
its exception handlers; no route guesses a status from a built-in exception. Layers below
the API know nothing of HTTP beyond these two class attributes.
"""

from __future__ import annotations

from typing import ClassVar


class SurveillanceError(Exception):
    """Base class of every error this package raises on purpose."""

    status_code: ClassVar[int] = 500
    retry_after_s: ClassVar[int | None] = None


class NotFound(SurveillanceError):
    """Something named in the request does not exist (or is outside the caller's scope)."""

    status_code = 404


class Conflict(SurveillanceError):
    """The request is valid but the current state forbids it."""

    status_code = 409


class InvalidRequest(SurveillanceError):
    """The request is well-formed but its values do not make sense together."""

    status_code = 422


class BadRequest(SurveillanceError):
    """The request cannot be understood (for example an SDP offer that does not parse)."""

    status_code = 400


class Forbidden(SurveillanceError):
    """A signed-in user may not do this."""

    status_code = 403


class Unavailable(SurveillanceError):
    """Something needed is not available now; trying again later may work."""

    status_code = 503
    retry_after_s = 2


class TooBusy(SurveillanceError):
    """A limit on concurrent work is reached; trying again later may work."""

    status_code = 429
    retry_after_s = 5


class CameraNotFound(NotFound):
    def __init__(self, camera_id: str) -> None:
        super().__init__(f"no camera with id {camera_id!r}")
        self.camera_id = camera_id


class NoSubStream(NotFound):
    """The camera exists but has no sub-stream configured."""

    def __init__(self, camera_id: str) -> None:
        super().__init__(f"camera {camera_id!r} has no sub-stream; ask for the main stream")
        self.camera_id = camera_id


class CameraUnavailable(Unavailable):
    """The camera has no live picture right now (offline, stalled, connecting, disabled)."""

    def __init__(self, camera_id: str, state: str, reason: str | None) -> None:
        detail = f": {reason}" if reason else ""
        super().__init__(f"camera {camera_id!r} is {state}{detail}")
        self.camera_id = camera_id
        self.state = state
        self.reason = reason


class CameraElsewhere(CameraUnavailable):
    """Another node of the cluster holds the camera (its lease): this node does not connect
    it. A 503, like any camera without a live picture here; the API forwards to the owner."""

    def __init__(self, camera_id: str, node_id: str | None) -> None:
        where = f"node {node_id!r}" if node_id else "another node"
        super().__init__(camera_id, "elsewhere", f"held by {where}")
        self.node_id = node_id


class BadOffer(BadRequest):
    """A WebRTC offer this service cannot answer (malformed, or nothing it can send)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"bad offer: {reason}")
        self.reason = reason
