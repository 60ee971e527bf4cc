"""Placeholder: events come next."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from surveillance.simulator.onvif_specs import OnvifDeviceSpec


class EventBroker:
    def __init__(self, spec: OnvifDeviceSpec) -> None:
        self.spec = spec

    def handlers(self) -> dict[tuple[str, str], Any]:
        return {}

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def close(self) -> None:
        pass

    def raise_event(self, kind: str, state: bool, device_now: datetime) -> None:
        pass
