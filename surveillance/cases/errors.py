"""Errors of the case layer; the API maps each to one HTTP status."""

from __future__ import annotations

from surveillance.errors import SurveillanceError


class CaseNotFound(SurveillanceError):
    def __init__(self, number: str) -> None:
        super().__init__(f"no case {number!r}")
        self.number = number


class ItemNotFound(SurveillanceError):
    def __init__(self, number: str, ref: str) -> None:
        super().__init__(f"case {number!r} has no evidence item {ref!r}")


class CaseConflict(SurveillanceError):
    """The case's state forbids the request (closed, archived, not a valid transition)."""

    def __init__(self, number: str, state: str, reason: str) -> None:
        super().__init__(f"case {number} is {state}: {reason}")
        self.number = number
        self.state = state
        self.reason = reason


class FootageUnavailable(SurveillanceError):
    """The camera is up but has nothing for the requested window (or no picture yet)."""

    def __init__(self, camera_id: str, reason: str) -> None:
        super().__init__(f"camera {camera_id!r}: {reason}")
        self.camera_id = camera_id
        self.reason = reason


class EvidenceWriteError(SurveillanceError):
    """The evidence store could not write an item; nothing was stored."""

    def __init__(self, reason: str, *, disk_full: bool) -> None:
        super().__init__(f"evidence not stored: {reason}")
        self.reason = reason
        self.disk_full = disk_full


class EvidenceMissing(SurveillanceError):
    """A recorded item's bytes are not in the evidence store (see ``surveillance verify``)."""

    def __init__(self, sha256: str) -> None:
        super().__init__(
            f"evidence file {sha256} is missing from the store; run `surveillance verify`"
        )
