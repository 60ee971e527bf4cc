"""The PTZ tests use the case tests' engines: SQLite, and a throwaway PostgreSQL."""

from __future__ import annotations

from tests.cases.conftest import engine, postgres

__all__ = ["engine", "postgres"]
