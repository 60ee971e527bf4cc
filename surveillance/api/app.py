"""The app factory: nothing starts at import; the lifespan starts and stops the node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp

from surveillance import __version__
from surveillance.api import errors, pages
from surveillance.api.forward import socket_origins
from surveillance.api.guards import ensure_every_route_guarded, requires
from surveillance.api.hosts import HostCheck, allowed_hosts
from surveillance.api.node import Node
from surveillance.api.routes import (
    admin,
    auth,
    cameras,
    cluster,
    events,
    gb,
    holds,
    live,
    metrics,
    mosaic,
    onvif,
    platforms,
    ptz,
    quality,
    recordings,
    reports,
    wall,
)
from surveillance.api.routes import cases as case_routes
from surveillance.api.routes import evidence as evidence_routes
from surveillance.api.routes import zones as zone_routes
from surveillance.api.schemas.base import DEFAULT_BODY_BYTES
from surveillance.api.security_headers import SecurityHeaders
from surveillance.config.models import AppConfig
from surveillance.redact import Redactor


class _App(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside FastAPI's own outer layers (the 413 of the body cap, the 500 of an
        # unhandled error), which no app middleware sees: every answer gets the headers.
        # In cluster mode the wall opens fMP4 sockets on the nodes holding its cameras.
        return SecurityHeaders(
            super().build_middleware_stack(),
            lambda: socket_origins(self.state.node),
        )


def create_app(config: AppConfig, *, redactor: Redactor | None = None) -> FastAPI:
    node = Node.build(config, redactor)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await node.start()
        try:
            yield
        finally:
            await node.stop()

    app = _App(
        title="surveillance",
        version=__version__,
        description="Command-room video integration: cameras, health, live snapshots.",
        lifespan=lifespan,
        # The schema is served below to signed-in users only; no interactive docs page
        # (it would load its script from a CDN, which the pages' CSP forbids).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        # Every route's body is capped; a route may set its own (sign-in: smaller).
        max_body_size=DEFAULT_BODY_BYTES,
    )
    app.state.node = node
    # Before routing: nothing, the origin check included, may trust a Host not allowed.
    app.add_middleware(HostCheck, hosts=allowed_hosts(config.server))
    errors.install(app)

    @app.get("/api/openapi.json", include_in_schema=False, dependencies=[requires()])
    def openapi_schema() -> dict[str, Any]:
        return app.openapi()

    app.include_router(auth.router)
    app.include_router(admin.router)
    app.include_router(cameras.router)
    app.include_router(events.router)
    app.include_router(platforms.router)
    app.include_router(metrics.router)
    app.include_router(live.router)
    app.include_router(case_routes.router)
    app.include_router(evidence_routes.router)
    app.include_router(holds.router)
    app.include_router(recordings.router)
    app.include_router(wall.router)
    app.include_router(mosaic.router)
    app.include_router(quality.router)
    app.include_router(zone_routes.router)
    app.include_router(reports.router)
    app.include_router(gb.router)
    app.include_router(ptz.router)
    app.include_router(onvif.router)
    app.include_router(cluster.router)
    pages.install(app)
    ensure_every_route_guarded(app)
    return app
