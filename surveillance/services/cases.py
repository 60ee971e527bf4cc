"""Builds the case service from the configuration: database, evidence store, footage."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from surveillance.cases.footage import FootageSource
from surveillance.cases.service import CaseService
from surveillance.cases.storage import EVIDENCE_DIR, LocalEvidenceStore
from surveillance.config.models import AppConfig


def evidence_store(config: AppConfig) -> LocalEvidenceStore:
    """In cluster mode one store under the shared directory, which every node reads."""
    return LocalEvidenceStore(config.shared_root() / EVIDENCE_DIR, shared=config.cluster.enabled)


def build_case_service(
    config: AppConfig,
    engine: Engine,
    footage: FootageSource,
    assignee_exists: Callable[[str], bool],
) -> CaseService:
    """Nothing is opened here: the engine connects, and migrations run, in ``open()``.
    ``assignee_exists`` tells whether a name is a user's (the case layer knows no users)."""
    cluster = config.cluster
    return CaseService(
        engine,
        evidence_store(config),
        footage,
        config.server.data_dir,
        assignee_exists,
        # In cluster mode the node signs under its id and publishes its public key in the
        # shared directory, where every node finds the keys that signed a case's entries.
        node_name=cluster.node_id if cluster.enabled else None,
        key_ring=cluster.shared_dir if cluster.enabled else None,
    )
