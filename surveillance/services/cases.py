"""Builds the case service from the configuration: database, evidence store, footage."""

from __future__ import annotations

from sqlalchemy import Engine

from surveillance.cases.footage import FootageSource
from surveillance.cases.service import CaseService
from surveillance.cases.storage import EVIDENCE_DIR, LocalEvidenceStore
from surveillance.config.models import AppConfig


def evidence_store(config: AppConfig) -> LocalEvidenceStore:
    return LocalEvidenceStore(config.server.data_dir / EVIDENCE_DIR)


def build_case_service(config: AppConfig, engine: Engine, footage: FootageSource) -> CaseService:
    """Nothing is opened here: the engine connects, and migrations run, in ``open()``."""
    return CaseService(engine, evidence_store(config), footage, config.server.data_dir)
