"""Exceptions shared across layers; each names what went wrong for the person who reads it."""


class SurveillanceError(Exception):
    """Base class of every error this package raises on purpose."""


class CameraNotFound(SurveillanceError):
    def __init__(self, camera_id: str) -> None:
        super().__init__(f"no camera with id {camera_id!r}")
        self.camera_id = camera_id


class CameraUnavailable(SurveillanceError):
    """The camera has no live picture right now (offline, stalled, connecting, disabled)."""

    def __init__(self, camera_id: str, state: str, reason: str | None) -> None:
        detail = f": {reason}" if reason else ""
        super().__init__(f"camera {camera_id!r} is {state}{detail}")
        self.camera_id = camera_id
        self.state = state
        self.reason = reason
