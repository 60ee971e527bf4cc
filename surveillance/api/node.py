"""The running node's services, built and torn down by the app's lifespan."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from surveillance.catalog import Catalog
from surveillance.config.models import AppConfig
from surveillance.redact import Redactor
from surveillance.services.ingest import IngestService
from surveillance.services.live import LiveService
from surveillance.services.snapshots import SnapshotService


@dataclass
class Node:
    config: AppConfig
    catalog: Catalog
    redactor: Redactor
    ingest: IngestService
    snapshots: SnapshotService
    live: LiveService
    started_at: float = field(default_factory=time.time)

    @classmethod
    def build(cls, config: AppConfig, redactor: Redactor | None = None) -> Node:
        catalog = Catalog.from_config(config)
        redactor = redactor or Redactor()
        redactor.add(catalog.secrets())
        ingest = IngestService(catalog, config.ingest, redactor)
        return cls(
            config=config,
            catalog=catalog,
            redactor=redactor,
            ingest=ingest,
            snapshots=SnapshotService(ingest),
            live=LiveService(ingest),
        )

    async def start(self) -> None:
        await self.ingest.start()

    async def stop(self) -> None:
        await self.live.close()
        self.snapshots.close()
        await self.ingest.stop()
