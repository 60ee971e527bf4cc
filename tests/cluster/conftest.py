"""The cluster tests use the case tests' throwaway PostgreSQL (cluster mode is PostgreSQL
only)."""

from __future__ import annotations

from tests.cases.conftest import postgres

__all__ = ["postgres"]
