"""The migration tests use the case tests' throwaway PostgreSQL."""

from __future__ import annotations

from tests.cases.conftest import postgres

__all__ = ["postgres"]
