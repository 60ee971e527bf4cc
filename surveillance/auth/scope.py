"""Which cameras a user may see: all of them, or those of some platforms and some cameras."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    platforms: frozenset[str] = frozenset()
    cameras: frozenset[str] = frozenset()

    @classmethod
    def of(cls, platforms: Iterable[str] = (), cameras: Iterable[str] = ()) -> Scope:
        return cls(frozenset(platforms), frozenset(cameras))

    @property
    def limited(self) -> bool:
        return bool(self.platforms or self.cameras)

    def allows(self, camera_id: str, platform_id: str) -> bool:
        if not self.limited:
            return True
        return platform_id in self.platforms or camera_id in self.cameras
