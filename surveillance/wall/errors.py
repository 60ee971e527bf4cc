"""Errors of the wall: layouts and tours that do not exist."""

from __future__ import annotations

from surveillance.errors import NotFound


class LayoutNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"no layout named {name!r}")
        self.name = name


class TourNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"no tour named {name!r}")
        self.name = name
