"""Builds the case service from the configuration: database, evidence store, footage."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from surveillance.cases.footage import FootageSource
from surveillance.cases.service import CaseService
from surveillance.cases.storage import EVIDENCE_DIR, LocalEvidenceStore
from surveillance.config.models import AppConfig


def evidence_store(config: AppConfig) -> LocalEvidenceStore:
    return LocalEvidenceStore(config.server.data_dir / EVIDENCE_DIR)


def build_case_service(
    config: AppConfig,
    engine: Engine,
    footage: FootageSource,
    assignee_exists: Callable[[str], bool],
) -> CaseService:
    """Nothing is opened here: the engine connects, and migrations run, in ``open()``.
    ``assignee_exists`` tells whether a name is a user's (the case layer knows no users)."""
    return CaseService(
        engine, evidence_store(config), footage, config.server.data_dir, assignee_exists
    )
