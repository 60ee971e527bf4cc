"""Asking one device what it is: its clock, maker, model, firmware, profiles and streams.

:func:`inspect` never raises for anything the device does: a refused password, a hostile
or broken answer, a hang, all end as a :class:`DeviceReport` with the outcome and the reason,
keeping what was learnt before (a device that refuses the password still told its clock and
its name in its WS-Discovery scopes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from surveillance.onvif.client import OnvifClient, device_words
from surveillance.onvif.errors import DeviceTimeout, OnvifError
from surveillance.onvif.records import DeviceReport, DiscoveredDevice, MediaProfile

log = logging.getLogger(__name__)

_SCOPE_PREFIX = "onvif://www.onvif.org/"
# Requests one inspection makes: connect (clock, services), clock, information, profiles
# and a stream URI each. The whole is bounded by this many single-request timeouts.
_INSPECTION_BUDGET = 3


def scope_value(scopes: Iterable[str], kind: str) -> str | None:
    """The value of an ONVIF scope (``name``, ``location``, ``hardware``), percent-decoded
    and made one short printable line; None if the device did not give one."""
    prefix = f"{_SCOPE_PREFIX}{kind}/"
    for scope in scopes:
        if scope.startswith(prefix):
            value = device_words(unquote(scope[len(prefix) :]))
            if value:
                return value
    return None


def main_and_sub(profiles: Iterable[MediaProfile]) -> tuple[str | None, str | None]:
    """The largest picture's stream and the smallest other one (None if there is one)."""
    with_uri = [p for p in profiles if p.stream_uri]
    if not with_uri:
        return None, None
    by_size = sorted(with_uri, key=lambda p: (p.width or 0) * (p.height or 0), reverse=True)
    main = by_size[0].stream_uri
    others = [p.stream_uri for p in by_size[1:] if p.stream_uri != main]
    return main, (others[-1] if others else None)


async def inspect(
    device_url: str,
    username: str | None,
    password: str | None,
    *,
    timeout_s: float,
    discovered: DiscoveredDevice | None = None,
) -> DeviceReport:
    """What the device at ``device_url`` says of itself; ``discovered``: its ProbeMatch, if
    WS-Discovery found it (endpoint, scopes and how it was found)."""
    scopes = discovered.scopes if discovered is not None else ()
    report = DeviceReport(
        device_url=device_url,
        outcome="ok",
        endpoint=discovered.endpoint if discovered is not None else None,
        name=scope_value(scopes, "name"),
        location=scope_value(scopes, "location"),
        found_by=discovered.found_by if discovered is not None else None,
        extra=_hardware(scopes),
    )
    learnt: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout_s * _INSPECTION_BUDGET):
            await _ask(device_url, username, password, timeout_s, learnt, scopes)
    except TimeoutError:
        failure: OnvifError = DeviceTimeout(f"{device_url} did not finish answering in time")
        return dataclasses.replace(report, outcome=failure.outcome, reason=str(failure), **learnt)
    except OnvifError as exc:
        return dataclasses.replace(report, outcome=exc.outcome, reason=str(exc), **learnt)
    except Exception:
        # A device answer this code did not foresee: reported, never fatal to the run.
        log.exception("inspecting %s failed unexpectedly", device_url)
        reason = f"{device_url}: its answers could not be understood"
        return dataclasses.replace(report, outcome="error", reason=reason, **learnt)
    return dataclasses.replace(report, **learnt)


async def _ask(
    url: str,
    username: str | None,
    password: str | None,
    timeout_s: float,
    learnt: dict[str, Any],
    scopes: tuple[str, ...],
) -> None:
    """Fills ``learnt`` (DeviceReport fields) as answers come, so a failure keeps them."""
    async with OnvifClient(url, username, password, timeout_s=timeout_s) as client:
        learnt["clock_offset_s"] = round(await client.clock_offset_s(), 3)
        info = await client.call("devicemgmt", "GetDeviceInformation")
        learnt["manufacturer"] = _field(info, "Manufacturer")
        learnt["model"] = _field(info, "Model")
        learnt["firmware"] = _field(info, "FirmwareVersion")
        learnt["serial"] = _field(info, "SerialNumber")
        if not scopes:  # named directly, not found by WS-Discovery: ask for its scopes
            asked = await _scopes(client)
            if asked:
                learnt["name"] = scope_value(asked, "name")
                learnt["location"] = scope_value(asked, "location")
                learnt["extra"] = _hardware(asked)
        profiles = await client.profiles()
        learnt["profiles"] = profiles
        learnt["main_uri"], learnt["sub_uri"] = main_and_sub(profiles)
        learnt["ptz"] = any(p.ptz for p in profiles) and client.offers("ptz")


async def _scopes(client: OnvifClient) -> tuple[str, ...]:
    try:
        answer = await client.call("devicemgmt", "GetScopes")
    except OnvifError as exc:
        if exc.outcome in ("refused", "malformed"):
            return ()  # scopes are a nicety: a device without them is still inspected
        raise
    found = (getattr(item, "ScopeItem", None) for item in answer or ())
    return tuple(str(scope) for scope in found if scope)


def _field(answer: Any, name: str) -> str | None:
    value = getattr(answer, name, None)
    return device_words(value) if value not in (None, "") else None


def _hardware(scopes: Iterable[str]) -> dict[str, str]:
    hardware = scope_value(scopes, "hardware")
    return {"hardware": hardware} if hardware else {}
