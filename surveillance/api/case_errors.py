"""How case and evidence errors reach the client: one status per kind, the reason as text."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException

from surveillance.cases.errors import (
    CaseConflict,
    CaseNotFound,
    EvidenceMissing,
    EvidenceWriteError,
    FootageUnavailable,
    ItemNotFound,
)
from surveillance.errors import CameraNotFound, CameraUnavailable

CAMERA_RETRY_AFTER_S = 2


@contextmanager
def case_errors() -> Iterator[None]:
    try:
        yield
    except (CaseNotFound, ItemNotFound, CameraNotFound) as exc:
        raise HTTPException(404, str(exc)) from exc
    except CaseConflict as exc:
        raise HTTPException(409, str(exc)) from exc
    except FootageUnavailable as exc:
        raise HTTPException(409, f"{exc}; nothing was stored") from exc
    except CameraUnavailable as exc:
        raise HTTPException(
            503,
            f"{exc}; nothing was stored",
            headers={"Retry-After": str(CAMERA_RETRY_AFTER_S)},
        ) from exc
    except EvidenceMissing as exc:
        raise HTTPException(500, str(exc)) from exc
    except EvidenceWriteError as exc:
        status = 507 if exc.disk_full else 500
        raise HTTPException(status, f"{exc}; the case is unchanged") from exc
