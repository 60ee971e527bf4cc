"""The ingest's "gb28181" source: channel cameras read by GbIngestWorker through the player,
and the player's place in a node whose SIP server runs."""

from __future__ import annotations

from collections.abc import Callable

from surveillance.catalog import Camera
from surveillance.config.models import Gb28181Config
from surveillance.media.gb_worker import GbIngestWorker
from surveillance.media.stream import Stream
from surveillance.services.gb_play import GbPlayer
from surveillance.services.gb_registry import GbRegistry
from surveillance.services.ingest import IngestService, WorkerFactory


def gb_source_factory(
    player: GbPlayer, ingest: IngestService, redact: Callable[[str], str]
) -> WorkerFactory:
    """The ingest's "gb28181" source (``IngestService.register_source``): a channel
    camera's stream is a GbIngestWorker opening its feeds through the player. GB channels
    have no sub-stream (one INVITE, one stream)."""

    def make(stream: Stream, camera: Camera, sub: bool) -> GbIngestWorker:
        options = ingest.source_options(camera)
        return GbIngestWorker(stream, camera.id, player, options, ingest.backoff(), redact)

    return make


def build_gb_player(
    config: Gb28181Config,
    registry: GbRegistry | None,
    ingest: IngestService,
    redact: Callable[[str], str],
) -> GbPlayer | None:
    """The player of a node whose SIP server runs: it takes the registry's BYEs, and the
    ingest reads "gb28181" cameras through it. None without a registry."""
    if registry is None:
        return None
    player = GbPlayer(config, registry, registry.store)
    registry.on_bye = player.on_bye
    ingest.register_source("gb28181", gb_source_factory(player, ingest, redact))
    return player
