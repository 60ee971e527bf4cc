"""Events tests run on both databases, every migration applied (tests/cases/conftest.py)."""

from __future__ import annotations

from tests.cases.conftest import engine, postgres

__all__ = ["engine", "postgres"]
