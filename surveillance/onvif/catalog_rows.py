"""Cameras for the catalog from what discovery found: CSV rows or YAML entries that load as
they are (``surveillance.config.load_config``).

Everything in a row but the platform, tags and id prefix came from a device, so it is made
safe to load whatever the device said: names lose control and bidirectional characters and
any leading formula character (a spreadsheet would run ``=HYPERLINK(...)``), ids are made
from the name (or the address) within the Identifier rules and never repeat, and every
``$`` is doubled (the loader expands ``${VAR}``: a device named ``${DB_PASSWORD}`` would
otherwise put a secret into a camera name). No credentials: the platform's apply.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

from surveillance.config.loader import CSV_COLUMNS
from surveillance.config.names import strip_bidi_controls
from surveillance.onvif.records import DeviceReport

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")  # config.models Identifier
_PREFIX = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
_NOT_ID = re.compile(r"[^a-z0-9]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_FORMULA_STARTS = "=+-@'\t\r "  # OWASP "CSV Injection" (api/csv_export.py), and a stray '
_MAX_NAME = 200  # CameraConfig.name
_ID_CHARS = 64
_STREAM_SCHEMES = ("rtsp", "rtsps")


@dataclass(frozen=True)
class CatalogRow:
    id: str
    name: str
    platform: str
    url: str
    sub_url: str | None
    tags: tuple[str, ...]
    onvif: str  # the device service URL


def build_rows(
    reports: Iterable[DeviceReport],
    *,
    platform: str,
    tags: Sequence[str] = (),
    id_prefix: str = "",
    taken_ids: Iterable[str] = (),
) -> tuple[list[CatalogRow], list[tuple[str, str]]]:
    """Rows for the devices that gave a stream, and (device URL, why) for those that did
    not. ``taken_ids``: ids already in the catalog, never reused.

    Raises ValueError for a bad platform, tag or id prefix (they come from the person
    asking, not from a device)."""
    if not _ID.match(platform):
        raise ValueError(f"platform {platform!r} is not a valid id")
    for tag in tags:
        if not _ID.match(tag):
            raise ValueError(f"tag {tag!r} is not a valid id")
    if id_prefix and not _PREFIX.match(id_prefix):
        raise ValueError(
            f"id prefix {id_prefix!r}: lower-case letters, digits, '.', '_', '-'; at most 32"
        )
    used = set(taken_ids)
    rows: list[CatalogRow] = []
    skipped: list[tuple[str, str]] = []
    for report in reports:
        main = _stream(report.main_uri)
        if main is None:
            skipped.append((report.device_url, "it gave no RTSP stream"))
            continue
        if not _device_service(report.device_url):
            skipped.append((report.device_url, "its device service URL cannot be used"))
            continue
        host = urlsplit(report.device_url).hostname or "camera"
        name = display_name(report.name) or display_name(
            " ".join(p for p in (report.manufacturer, report.model, host) if p)
        )
        row_id = _unique_id(id_prefix, report.name or "", host, used)
        used.add(row_id)
        rows.append(
            CatalogRow(
                id=row_id,
                name=name or host,
                platform=platform,
                url=main,
                sub_url=_stream(report.sub_uri),
                tags=tuple(dict.fromkeys(tags)),
                onvif=report.device_url,
            )
        )
    return rows, skipped


def display_name(text: str | None) -> str:
    """A device-given name as a valid DisplayName: printable, no bidirectional controls, no
    leading formula character, at most 200 characters; "" if nothing is left."""
    if not text:
        return ""
    cleaned = " ".join(_CONTROL.sub(" ", strip_bidi_controls(text)).split())
    return cleaned.lstrip(_FORMULA_STARTS)[:_MAX_NAME].strip()


def to_csv(rows: Iterable[CatalogRow]) -> str:
    """A camera CSV file (``camera_files``), with the loader's columns."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({column: _escape(value) for column, value in _fields(row).items()})
    return out.getvalue()


def to_yaml(rows: Iterable[CatalogRow]) -> str:
    """A ``cameras:`` section for the configuration file."""
    cameras: list[dict[str, Any]] = []
    for row in rows:
        camera: dict[str, Any] = {
            "id": row.id,
            "name": _escape(row.name),
            "platform": row.platform,
            "url": _escape(row.url),
        }
        if row.sub_url:
            camera["sub_url"] = _escape(row.sub_url)
        if row.tags:
            camera["tags"] = list(row.tags)
        camera["onvif"] = {"url": _escape(row.onvif)}
        cameras.append(camera)
    return yaml.safe_dump({"cameras": cameras}, sort_keys=False, allow_unicode=True)


def _fields(row: CatalogRow) -> dict[str, str]:
    return {
        "id": row.id,
        "name": row.name,
        "platform": row.platform,
        "url": row.url,
        "sub_url": row.sub_url or "",
        "tags": ";".join(row.tags),
        "onvif": row.onvif,
    }


def _escape(text: str) -> str:
    """``$`` doubled: the loader reads ``$$`` as ``$`` and expands ``${...}``."""
    return text.replace("$", "$$")


def _stream(uri: str | None) -> str | None:
    """``uri`` if the loader accepts it as a camera stream (rtsp(s), a host, no
    credentials, no white space), else None."""
    if not uri or re.search(r"\s", uri):
        return None
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if parts.scheme.lower() not in _STREAM_SCHEMES or not parts.hostname:
        return None
    if parts.username or parts.password:
        return None
    return uri


def _device_service(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    return ok and not (parts.username or parts.password) and not re.search(r"\s", url)


def _unique_id(prefix: str, name: str, host: str, used: set[str]) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_ID.sub("-", folded.lower()).strip("-") or _NOT_ID.sub("-", host.lower()).strip("-")
    base = (prefix + (slug or "camera"))[:_ID_CHARS].rstrip("-._") or "camera"
    if not base[0].isalnum():
        base = "c" + base[: _ID_CHARS - 1]
    candidate, n = base, 2
    while candidate in used:
        suffix = f"-{n}"
        candidate = base[: _ID_CHARS - len(suffix)] + suffix
        n += 1
    return candidate
