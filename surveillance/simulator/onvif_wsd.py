"""placeholder"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class WsdResponder:
    def __init__(self, devices: Sequence[Any], *, interface: str) -> None:
        self.devices = devices

    async def start(self) -> None:
        pass

    def stop(self) -> None:
        pass
