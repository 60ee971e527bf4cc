"""Errors of the case layer; each derives from the base that carries its HTTP status."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import TYPE_CHECKING

from surveillance.errors import (
    CameraUnavailable,
    Conflict,
    InvalidRequest,
    NotFound,
    SurveillanceError,
)

if TYPE_CHECKING:
    from surveillance.cases.records import ItemRecord


class CaseNotFound(NotFound):
    def __init__(self, number: str) -> None:
        super().__init__(f"no case {number!r}")
        self.number = number


class ItemNotFound(NotFound):
    def __init__(self, number: str, ref: str) -> None:
        super().__init__(f"case {number!r} has no evidence item {ref!r}")


class UnknownAssignee(InvalidRequest):
    """A case cannot be assigned to someone who has no account on this node."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no user {name!r} to assign the case to; nothing was changed")
        self.name = name


class CaseConflict(Conflict):
    """The case's state forbids the request (closed, archived, not a valid transition)."""

    def __init__(self, number: str, state: str, reason: str) -> None:
        super().__init__(f"case {number} is {state}: {reason}")
        self.number = number
        self.state = state
        self.reason = reason


class FootageUnavailable(Conflict):
    """The camera is up but has nothing for the requested window (or no picture yet)."""

    def __init__(self, camera_id: str, reason: str) -> None:
        super().__init__(f"camera {camera_id!r}: {reason}; nothing was stored")
        self.camera_id = camera_id
        self.reason = reason


class EvidenceWriteError(SurveillanceError):
    """The evidence store could not write an item; nothing was stored.

    507 Insufficient Storage when the disk is full (an operator can free space and retry),
    500 otherwise."""

    def __init__(self, reason: str, *, disk_full: bool) -> None:
        super().__init__(f"evidence not stored: {reason}; the case is unchanged")
        self.reason = reason
        self.disk_full = disk_full
        self.status_code = 507 if disk_full else 500  # type: ignore[misc]


class EvidenceMissing(SurveillanceError):
    """A recorded item's bytes are not in the evidence store (see ``surveillance verify``).

    500: the node lost data it recorded, nothing the client can change; the message says
    which file and which item."""

    def __init__(self, sha256: str, item: str | None = None, item_id: int | None = None) -> None:
        of = f" ({item})" if item else ""
        super().__init__(
            f"evidence file {sha256}{of} is missing from the store; run `surveillance verify`"
        )
        self.sha256 = sha256
        self.item_id = item_id

    @classmethod
    def of(cls, item: ItemRecord) -> EvidenceMissing:
        label = f"case {item.case_number} item {item.id}, {item.kind} from {item.camera_id}"
        return cls(item.sha256, label, item.id)


class ExportFailed(SurveillanceError):
    """A bundle could not be written; the custody log records the failure, not an export.

    507 when the disk under the temporary bundle is full, 500 otherwise."""

    def __init__(
        self, number: str, reason: str, *, disk_full: bool = False, item_id: int | None = None
    ) -> None:
        super().__init__(f"case {number} was not exported: {reason}")
        self.reason = reason
        self.item_id = item_id  # the item it failed on, if one
        self.status_code = 507 if disk_full else 500  # type: ignore[misc]


class NodeKeyWriteError(SurveillanceError):
    """The node's signing key could not be written; no key file was left.

    507 Insufficient Storage when the disk is full (free space and retry), 500 otherwise."""

    def __init__(self, path: Path, exc: OSError) -> None:
        disk_full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        reason = "the disk is full" if disk_full else (exc.strerror or str(exc))
        super().__init__(f"the node's signing key {path} could not be written: {reason}")
        self.reason = reason
        self.status_code = 507 if disk_full else 500  # type: ignore[misc]


class NodeKeyBroken(SurveillanceError):
    """The key file exists but holds no usable key; the node signs nothing until an
    operator restores it (it is never replaced: it may be the key earlier bundles name).

    500: nothing the client can change; the message names the file and what to do."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"the node's signing key {path} cannot be used: {reason}; restore it from a "
            "backup (moving it away makes the node create a new key with a new fingerprint)"
        )
        self.path = path
        self.reason = reason


class ExportOutdated(Conflict):
    """The case's custody log moved on each time while its bundle was being written."""

    retry_after_s = 1

    def __init__(self, number: str) -> None:
        super().__init__(
            f"case {number} changed while its bundle was written; nothing was exported, try again"
        )


class AttachCameraUnavailable(CameraUnavailable):
    """The camera had no picture when an attach asked for one; nothing was stored."""

    def __init__(self, cause: CameraUnavailable) -> None:
        super().__init__(cause.camera_id, cause.state, cause.reason)
        self.args = (f"{cause}; nothing was stored",)
